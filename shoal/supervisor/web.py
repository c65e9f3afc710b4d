"""The host's one HTTP endpoint, served by the supervisor with aiohttp.

It runs in a daemon thread with an event loop of its own: a scrape or a probe never waits
for the supervisor's loop, and a busy loop never delays them. What it serves:

- ``/metrics``: the workers' and the supervisor's series (Prometheus text format);
- ``/status``: the supervisor's status as JSON, the data of ``clusterctl status``;
- ``/livez``: 200 while the supervisor's loop has ticked in the last ``LIVE_WITHIN`` seconds
  (a process manager or a Kubernetes liveness probe restarts it otherwise);
- ``/readyz``: 200 once every worker runs and none is recovering its tables; else 503 with
  ``Retry-After`` and the reasons;
- the app's pages and the built-in ``/table`` and ``/router`` views
  (:mod:`shoal.supervisor.webviews`), each request answered by the worker that owns its key.

The supervisor hands in each second's status with :meth:`HostWeb.publish` (a reference
swap: the server thread reads whichever status was published last).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shoal.supervisor.status import SupervisorStatus

#: Adds more routes (the app's pages: shoal.supervisor.webviews) and returns their paths.
AddRoutes = Callable[[web.Application], list[str]]
ROUTES = web.AppKey("routes", list[str])

log = logging.getLogger(__name__)

#: /livez fails when the supervisor's loop has published nothing for this long (seconds).
LIVE_WITHIN = 10.0
#: What /readyz asks a prober to wait before it asks again (seconds).
RETRY_AFTER = 2
BUILT_IN = ["/metrics", "/status", "/livez", "/readyz"]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def readiness(status: SupervisorStatus | None) -> list[str]:
    """Why the host is not ready (empty: it is): workers not running, or recovering."""
    if status is None:
        return ["the supervisor has not published its status yet"]
    waiting = []
    for worker in status.workers:
        if worker.state != "running":
            waiting.append(f"worker {worker.index} is {worker.state}")
        elif worker.recovering:
            waiting.append(
                f"worker {worker.index} is recovering its tables "
                f"({worker.recovering} changelog records left)"
            )
    if not status.workers:
        waiting.append("no workers")
    return waiting


class HostWeb:
    """The server and its thread; :meth:`start` binds (port 0: any free one)."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, views: AddRoutes | None = None
    ) -> None:
        self.host = host
        self.port = port
        self._registry = registry
        self._views = views
        self._status: SupervisorStatus | None = None
        self._published = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- what the supervisor hands in --------------------------------------------------------

    def publish(self, status: SupervisorStatus) -> None:
        self._status = status
        self._published = time.monotonic()

    # -- the routes --------------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _status_view(self, request: web.Request) -> web.Response:
        if self._status is None:
            return _json({"error": "no status published yet"}, 503, _retry())
        return _json(self._status)

    async def _livez(self, request: web.Request) -> web.Response:
        age = time.monotonic() - self._published
        if age > LIVE_WITHIN:
            return _json({"live": False, "loop_silent_for": round(age, 1)}, 503)
        return _json({"live": True, "loop_silent_for": round(age, 1)})

    async def _readyz(self, request: web.Request) -> web.Response:
        waiting = readiness(self._status)
        if waiting:
            return _json({"ready": False, "waiting": waiting}, 503, _retry())
        return _json({"ready": True})

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[_errors_as_json])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/status", self._status_view)
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        paths = self._views(app) if self._views is not None else []
        app[ROUTES] = [*BUILT_IN, *paths]
        return app

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve from a daemon thread; raises OSError when the port is taken."""
        started: threading.Event = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._bind())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._unbind())
            loop.close()

        self._thread = threading.Thread(target=run, name="shoal-web", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]

    async def _bind(self) -> None:
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        server = site._server  # the bound socket: the real port when asked for 0
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def _unbind(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        self._thread = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def _retry() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER)}


@web.middleware
async def _errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """A wrong path or method gets a JSON error naming what exists, not an HTML page; a bug
    of ours a 500 naming it (and its traceback in the log)."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except Exception as exc:
        if isinstance(exc, web.HTTPException):
            return _http_error(request, exc)
        log.exception("the web server failed on %s %s", request.method, request.path)
        return _json({"error": f"internal error: {type(exc).__name__}: {exc}"}, 500)


def _http_error(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400:
        raise exc
    return _json(
        {
            "error": f"{exc.reason}: {request.method} {request.path}",
            "routes": request.app.get(ROUTES, BUILT_IN),
        },
        exc.status,
    )

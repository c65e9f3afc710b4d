"""A shoal app in an ASGI framework (FastAPI, Starlette, Quart, Django...), as
``faust.contrib.asgi`` has it, and the app's web views mounted into one.

Run the app in the ASGI server's process, started and stopped with the server (Faust's
names, so only the import line changes)::

    from shoal.contrib.asgi import faust_lifespan

    api = FastAPI(lifespan=faust_lifespan(app))      # uvicorn myapp:api

    @api.post('/greet')
    async def greet(text: str):
        await greetings.send(value=text)
        return {'ok': True}

Mount the app's pages (``@app.page``) and the built-in ``/table`` and ``/router`` views::

    api.mount('/shoal', views(app))

When the app runs in this process (the lifespan above), a page is answered here, by the
partitions this process owns (others get a 503). Otherwise each request goes to the cluster:
to the host that owns a table key's partition for ``/table/{name}/{key}``, to any live host
for the rest (which routes it on to the worker that owns its key): the hosts' addresses come
from the app's metadata topic. Nothing here imports FastAPI or Starlette.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from shoal.app import App
from shoal.ipc.messages import WebRequest, WebResponse
from shoal.kafka.metadata import HOST_EVERY, Metadata, read_metadata
from shoal.supervisor.webrouter import error, web_error
from shoal.web.exceptions import WebError
from shoal.web.routes import Page, route_of
from shoal.worker import web as worker_web

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

__all__ = [
    "FaustLifespanMiddleware",
    "app_running",
    "faust_app_running",
    "faust_lifespan",
    "lifespan",
    "views",
]


@asynccontextmanager
async def app_running(app: App, *, stop_timeout: float | None = None) -> AsyncIterator[App]:
    """Start ``app`` on the running loop (a worker of its own, in the app's consumer group)
    and stop it on exit; an app started already is left to whoever started it."""
    started = not app.started
    if started:
        await app.start()
    try:
        yield app
    finally:
        if started:
            await app.stop(flush_timeout=stop_timeout or 30.0)


def lifespan(app: App, **kwargs: Any) -> Callable[..., Any]:
    """An ASGI ``lifespan`` handler that runs ``app``: ``FastAPI(lifespan=lifespan(app))``."""

    @asynccontextmanager
    async def handler(*args: Any) -> AsyncIterator[None]:
        async with app_running(app, **kwargs):
            yield  # None: Starlette would merge a mapping into the scope's state

    return handler


faust_app_running = app_running
faust_lifespan = lifespan


class FaustLifespanMiddleware:
    """Start and stop ``app`` with an ASGI application that has no lifespan hook (Django)."""

    def __init__(self, asgi_app: Any, app: App, **kwargs: Any) -> None:
        self.asgi_app = asgi_app
        self.app = app
        self.options = kwargs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.asgi_app(scope, receive, send)
            return
        phase = "startup"
        try:
            await receive()
            async with app_running(self.app, **self.options):
                await send({"type": "lifespan.startup.complete"})
                phase = "shutdown"
                await receive()
        except Exception as exc:
            await send({"type": f"lifespan.{phase}.failed", "message": str(exc)})
        else:
            await send({"type": "lifespan.shutdown.complete"})


def views(app: App, *, timeout: float | None = None) -> Views:
    """An ASGI application serving ``app``'s pages and built-in views (see the docstring)."""
    return Views(app, timeout or app.conf.ask_timeout)


def _pattern(path: str) -> re.Pattern[str]:
    """aiohttp's ``/count/{word}/`` (or ``{word:regex}``) as a regular expression."""
    out, pos = [], 0
    for match in re.finditer(r"\{(\w+)(?::([^{}]+))?\}", path):
        out.append(re.escape(path[pos : match.start()]))
        out.append(f"(?P<{match[1]}>{match[2] or '[^{}/]+'})")
        pos = match.end()
    out.append(re.escape(path[pos:]))
    return re.compile("".join(out) + "$")


class Views:
    """See :func:`views`."""

    def __init__(self, app: App, timeout: float) -> None:
        self.app = app
        self.timeout = timeout
        self._pages = [(_pattern(page.path), page) for page in app.pages]
        self._metadata = Metadata()
        self._read_at = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._turn = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # Starlette >= 0.33 keeps the mount's prefix
            path = path[len(root) :] or "/"
        query = scope.get("query_string", b"").decode()
        headers = [(k.decode(), v.decode()) for k, v in scope.get("headers", [])]
        if self.app.started:
            response = await self._here(scope["method"], path, query, headers, body)
        else:
            response = await self._cluster(scope["method"], path, query, headers, body)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (k.lower().encode(), v.encode())
                    for k, v in {**response.headers, "Content-Type": response.content_type}.items()
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def close(self) -> None:
        """Close the connections to the cluster's hosts (the ASGI lifespan's shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- the app runs in this process --------------------------------------------------------

    async def _here(
        self, method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes
    ) -> WebResponse:
        found = self._match(path)
        if found is None:
            return error(404, f"no page at {path}", pages=[p.path for _, p in self._pages])
        page, match_info = found
        partition = None
        route = route_of(page.view, method)
        if route is not None:
            try:
                text = route.key_text(match_info, dict(urllib.parse.parse_qsl(query)))
                partition = route.partition(text)
            except WebError as exc:
                return web_error(exc)
        request = WebRequest(
            0, page.name, method, path, query, headers, body, match_info, partition
        )
        return await worker_web.answer(self.app, request)

    def _match(self, path: str) -> tuple[Page, dict[str, str]] | None:
        for pattern, page in self._pages:
            match = pattern.match(path)
            if match:
                return page, match.groupdict()
        return None

    # -- the app runs in a cluster -----------------------------------------------------------

    async def _hosts(self, refresh: bool) -> Metadata:
        if refresh or time.monotonic() - self._read_at > HOST_EVERY:
            conf = self.app.conf
            self._metadata = await asyncio.to_thread(
                read_metadata, conf.bootstrap_servers, self.app.id, self.timeout
            )
            self._read_at = time.monotonic()
        return self._metadata

    def _url(self, metadata: Metadata, path: str) -> str | None:
        hosts = metadata.live_hosts()
        if not hosts:
            return None
        parts = path.strip("/").split("/")
        info = metadata.tables.get(parts[1]) if len(parts) == 3 and parts[0] == "table" else None
        if info is not None and not info.is_global:
            space = info.keyspace()
            try:
                owner = metadata.owner(space.partition(space.key(urllib.parse.unquote(parts[2]))))
            except ValueError:
                owner = None  # the host answers the 400
            if owner is not None:
                return owner.url
        return hosts[next(self._turn) % len(hosts)].url

    async def _cluster(
        self, method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes
    ) -> WebResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        problem = "no host of the app has published its web address"
        for attempt in range(2):  # the second time with the hosts read again
            url = self._url(await self._hosts(refresh=attempt > 0), path)
            if url is None:
                continue
            target = f"{url}{path}" + (f"?{query}" if query else "")
            passed = {k: v for k, v in headers if k.lower() in ("content-type", "accept")}
            try:
                async with self._session.request(
                    method, target, data=body, headers=passed
                ) as reply:
                    data = await reply.read()
                    kept = {k: v for k, v in reply.headers.items() if k == "Retry-After"}
                    content_type = reply.headers.get("Content-Type", "application/json")
                    return WebResponse(0, reply.status, data, content_type, kept)
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{url} did not answer: {type(exc).__name__}: {exc}"
        return error(503, problem)

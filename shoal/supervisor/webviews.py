"""The app's pages and the built-in views, on the host's web server (its thread, its loop).

Each request becomes a :class:`~shoal.ipc.messages.WebRequest` with the partition its key
belongs to (computed here, from the app's declarations), is dispatched on the supervisor's
loop (:class:`~shoal.supervisor.webrouter.WebRouter`) to the worker that owns the partition,
and, when another host owns it, forwarded to that host with one HTTP request of our own
(why forwarding and not a redirect: docs/web.md). Built in:

- ``/table``: the app's tables; ``/table/{name}/{key}``: a table's value by key, as JSON;
- ``/router``: which host and worker owns which partition; ``/router/{table}/{key}``: who
  owns a key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from shoal.app import App
from shoal.ipc.messages import WebRequest, WebResponse
from shoal.supervisor.webrouter import WEB_TIMEOUT, Forward, WebRouter, error, web_error
from shoal.web.exceptions import WebError
from shoal.web.routes import Page, route_of, text_partition, unknown_table
from shoal.worker.web import TABLE_VIEW

#: The header a forwarded request carries (the host it came from): it is not forwarded again.
FORWARDED = "X-Shoal-Forwarded"
_PASSED_ON = ("Content-Type", "Accept", "Authorization", "Cookie", "User-Agent")


def _to_http(response: WebResponse) -> web.Response:
    headers = {**response.headers, "Content-Type": response.content_type}
    return web.Response(body=response.body, status=response.status, headers=headers)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return _to_http(error(status, message, **extra))


class AppViews:
    """Adds the app's routes to the host's aiohttp application; see the module docstring."""

    def __init__(self, app: App, router: WebRouter, loop: asyncio.AbstractEventLoop) -> None:
        self._app = app
        self._router = router
        self._loop = loop  # the supervisor's
        self._session: aiohttp.ClientSession | None = None
        conf = app.conf
        self.paths: list[str] = []
        self._tables_enabled = conf.web_tables_enabled
        self._router_enabled = conf.web_router_enabled

    def add_routes(self, web_app: web.Application) -> list[str]:
        """Add the routes to ``web_app``; returns their paths."""
        add = web_app.router.add_route
        if self._tables_enabled:
            add("GET", "/table", self._tables)
            add("GET", "/table/{name}/{key}", self._table_value)
            self.paths += ["/table", "/table/{name}/{key}"]
        if self._router_enabled:
            add("GET", "/router", self._router_view)
            add("GET", "/router/{name}/{key}", self._key_owner)
            self.paths += ["/router", "/router/{name}/{key}"]
        for page in self._app.pages:
            add("*", page.path, self._page_handler(page), name=page.name)
            self.paths.append(page.path)
        web_app.on_cleanup.append(self._close)
        return self.paths

    async def _close(self, web_app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    # -- on the supervisor's loop ------------------------------------------------------------

    async def _on_supervisor(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the supervisor's loop; TimeoutError when it does not answer in
        time or has stopped (the supervisor is shutting down)."""
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:  # its loop is closed
            coro.close()
            raise TimeoutError("the supervisor is stopping") from None
        return await asyncio.wait_for(asyncio.wrap_future(future), WEB_TIMEOUT + 5)

    async def _dispatch(
        self, request: web.Request, page: str, partition: int | None
    ) -> web.Response:
        call = WebRequest(
            id=0,
            page=page,
            method=request.method,
            path=request.path,
            query_string=request.query_string,
            headers=[(str(k), v) for k, v in request.headers.items()],
            body=await request.read(),
            match_info=dict(request.match_info),
            partition=partition,
        )
        forwarded = FORWARDED in request.headers
        try:
            answer = await self._on_supervisor(self._router.dispatch(call, forwarded))
        except TimeoutError:
            return _error(503, "the supervisor did not route the request in time (stopping?)")
        if isinstance(answer, Forward):
            return await self._forward(request, call.body, answer)
        return _to_http(answer)

    async def _forward(self, request: web.Request, body: bytes, to: Forward) -> web.Response:
        """Ask the host that owns the partition, once, and pass its answer on."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=WEB_TIMEOUT + 5, connect=3.0)
            self._session = aiohttp.ClientSession(timeout=timeout)
        headers = {k: v for k, v in request.headers.items() if k in _PASSED_ON}
        headers[FORWARDED] = self._router.hosts.id
        try:
            async with self._session.request(
                request.method, to.url + request.path_qs, data=body, headers=headers
            ) as reply:
                data = await reply.read()
                passed = {"Content-Type": reply.headers.get("Content-Type", "application/json")}
                if "Retry-After" in reply.headers:
                    passed["Retry-After"] = reply.headers["Retry-After"]
                return web.Response(body=data, status=reply.status, headers=passed)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _error(
                503,
                f"host {to.host} at {to.url}, which owns partition {to.partition}, did not "
                f"answer: {type(exc).__name__}: {exc}",
                partition=to.partition,
            )

    # -- the app's pages ---------------------------------------------------------------------

    def _page_handler(self, page: Page) -> Any:
        view = page.view
        allowed = view.get_methods()

        async def handle(request: web.Request) -> web.Response:
            if request.method not in allowed:
                return _error(
                    405,
                    f"method {request.method} not allowed on {page.path}",
                    allowed=sorted(allowed),
                )
            route = route_of(view, request.method)
            partition = None
            if route is not None:
                try:
                    text = route.key_text(request.match_info, request.query)
                    partition = route.partition(text)
                except WebError as exc:
                    return _to_http(web_error(exc))
            return await self._dispatch(request, page.name, partition)

        return handle

    # -- built in ----------------------------------------------------------------------------

    def _table_partition(self, name: str, text: str) -> int | None:
        tables = self._app.tables.tables
        table = tables.get(name)
        if table is None:
            raise unknown_table(name, tables)
        return None if table.is_global else text_partition(table.keyspace(), text)

    async def _tables(self, request: web.Request) -> web.Response:
        infos = [t.info() for t in self._app.tables.values()]
        return web.json_response(body=msgspec.json.encode(infos))

    async def _table_value(self, request: web.Request) -> web.Response:
        info = request.match_info
        try:
            partition = self._table_partition(info["name"], info["key"])
        except WebError as exc:
            return _to_http(web_error(exc))
        return await self._dispatch(request, TABLE_VIEW, partition)

    async def _routes(self) -> dict[str, Any] | web.Response:
        try:
            data: dict[str, Any] = await self._on_supervisor(_call(self._router.router))
        except TimeoutError:
            return _error(503, "the supervisor did not answer in time (stopping?)")
        return data

    async def _router_view(self, request: web.Request) -> web.Response:
        data = await self._routes()
        if isinstance(data, web.Response):
            return data
        return web.json_response(body=msgspec.json.encode(data))

    async def _key_owner(self, request: web.Request) -> web.Response:
        info = request.match_info
        try:
            partition = self._table_partition(info["name"], info["key"])
        except WebError as exc:
            return _to_http(web_error(exc))
        data = await self._routes()
        if isinstance(data, web.Response):
            return data
        owner = _owner(data, partition)
        return web.json_response(
            body=msgspec.json.encode({"table": info["name"], "partition": partition, **owner})
        )


async def _call(fun: Any) -> Any:
    return fun()


def _owner(data: Mapping[str, Any], partition: int | None) -> dict[str, Any]:
    if partition is None:
        return {"url": data["url"], "host": data["host"], "global": True}
    for index, partitions in data["workers"].items():
        if partition in partitions:
            return {"url": data["url"], "host": data["host"], "worker": int(index)}
    for host in data["hosts"]:
        if partition in host["partitions"]:
            return {"url": host["url"], "host": host["host"]}
    return {"url": None, "host": None}

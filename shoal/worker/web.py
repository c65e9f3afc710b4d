"""A worker's side of the web: answer the HTTP requests its supervisor hands over.

A request routed by a key arrives with the partition it was routed by. The worker answers it
only if it holds that partition now, recovered (a table's) or assigned (a topic's): the
supervisor's view of who owns what can be a moment old during a rebalance, and a request that
reaches the wrong process gets a 503 with ``Retry-After``, never an answer from a copy that
is not current. Then the page's view runs on the worker's loop, between events, as Faust's
views do; what it raises becomes a JSON error (a WebError its own status, anything else 500,
logged with its traceback).
"""

from __future__ import annotations

import logging
from typing import Any

from shoal.app import App
from shoal.ipc.messages import WebRequest, WebResponse
from shoal.processing.topics import Topic
from shoal.tables.stores import MISSING
from shoal.tables.table import Collection
from shoal.web.exceptions import NotFound, ServiceUnavailable, ValidationError, WebError
from shoal.web.routes import route_of, unknown_table
from shoal.web.views import Request, Response, View, error_of, error_response

log = logging.getLogger(__name__)

#: The built-in view of a table's value by key (``/table/{name}/{key}``).
TABLE_VIEW = "shoal:table"


async def answer(app: App, message: WebRequest) -> WebResponse:
    """The response to ``message``; never raises."""
    try:
        if message.page == TABLE_VIEW:
            response = table_value(app, message)
        else:
            response = await _page(app, message)
    except WebError as exc:
        response = error_of(exc)
    except Exception as exc:
        log.exception("web view %s failed on %s %s", message.page, message.method, message.path)
        response = error_response(
            500, f"the view raised {type(exc).__name__}: {exc}", view=message.page
        )
    return WebResponse(
        message.id, response.status, response.body, response.content_type, response.headers
    )


def _request(message: WebRequest) -> Request:
    return Request(
        message.method,
        message.path,
        query_string=message.query_string,
        headers=message.headers,
        body=message.body,
        match_info=message.match_info,
    )


async def _page(app: App, message: WebRequest) -> Response:
    pages = {page.name: page for page in app.pages}
    page = pages.get(message.page)
    if page is None:
        raise NotFound(f"this worker has no page {message.page!r}")
    route = route_of(page.view, message.method)
    if route is not None:
        if message.partition is None:
            raise ValidationError("a routed page's request came without its partition")
        _check_serving(app, route.target, message.partition)
    view = page.view(app)
    return await view.dispatch(_request(message))


def _check_serving(app: App, target: Any, partition: int) -> None:
    """Raise 503 unless this process holds ``partition`` of ``target`` now."""
    if isinstance(target, Collection):
        if target.is_global or partition in target.stores:
            return
        what = f"partition {partition} of table {target.name!r}"
    elif isinstance(target, Topic):
        owned = app.conductor.offsets if app.conductor is not None else {}
        if any((name, partition) in owned for name in target.topics):
            return
        what = f"partition {partition} of topic {target.get_topic_name()!r}"
    else:
        return
    raise ServiceUnavailable(
        f"{what} is not served by this worker now (it is recovering or moving); try again",
        partition=partition,
    )


def table_value(app: App, message: WebRequest) -> Response:
    """``/table/{name}/{key}``: the value of ``key``, as JSON; 404 for a key not there."""
    helper = View(app)
    name, text = message.match_info["name"], message.match_info["key"]
    table = app.tables.tables.get(name)
    if table is None:
        raise unknown_table(name, app.tables.tables)
    if table.window is not None:
        raise ValidationError(
            f"table {name!r} is windowed: read its windows from a page of the app "
            "(table[key].now(), .current(), .delta(...))",
            table=name,
        )
    space = table.keyspace()
    try:
        key = space.key(text)
    except ValueError as exc:
        raise ValidationError(str(exc), table=name) from None
    if message.partition is not None:
        _check_serving(app, table, message.partition)
        stores = [table.stores[message.partition]] if not table.is_global else []
    else:
        stores = []
    stores = stores or list(table.stores.values())
    encoded = table.encode_key(key)
    for store in stores:
        value = store.get(key, encoded)
        if value is not MISSING:
            return helper.json(value)
    if table.default is not None:
        return helper.json(table.default())
    raise NotFound("key not found", table=name, key=text)

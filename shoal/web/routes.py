"""Pages and routes: which view answers a path, and which partition a request belongs to.

``@app.table_route(table, match_info='word')`` on a view method marks it: the request's key
(a path parameter, a query parameter, or a fixed key) decides the partition, and the request
is answered by the worker that owns that partition, wherever it runs. The host's web server
reads the mark (:func:`route_of`) before it hands the request over; the worker checks it again
(:class:`Route`), so a request that reaches a process without the partition is refused with a
503, never answered from a copy that is not current.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shoal.kafka.partitioner import KeySpace
from shoal.web.exceptions import NotFound, ValidationError
from shoal.web.views import View

#: Where the route mark is kept on a view method.
ROUTE_ATTR = "__shoal_route__"


class Keyed(Protocol):
    """A table or a topic, as a route needs it."""

    def keyspace(self) -> KeySpace: ...


@dataclass(frozen=True)
class Route:
    """How a view method's requests are routed: by a table's key or a topic's."""

    target: Keyed
    kind: str  # "table" or "topic"
    query_param: str | None = None
    match_info: str | None = None
    exact_key: str | None = None

    def key_text(self, match_info: Mapping[str, str], query: Mapping[str, str]) -> str:
        """The key as the request gives it; a missing one is a 400 naming it."""
        if self.exact_key is not None:
            return self.exact_key
        if self.match_info is not None:
            if self.match_info not in match_info:
                raise ValidationError(f"the path has no parameter {self.match_info!r}")
            return match_info[self.match_info]
        assert self.query_param is not None
        if self.query_param not in query:
            raise ValidationError(
                f"query parameter {self.query_param!r} is required (it names the key)",
                parameter=self.query_param,
            )
        return query[self.query_param]

    def partition(self, text: str) -> int:
        """The partition the key ``text`` lives in; a 400 if it cannot be a key."""
        return text_partition(self.target.keyspace(), text)


def text_partition(keyspace: KeySpace, text: str) -> int:
    try:
        return keyspace.partition(keyspace.key(text))
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def route(
    target: Keyed,
    kind: str,
    shard_param: str | None,
    query_param: str | None,
    match_info: str | None,
    exact_key: str | None,
) -> Callable[[Any], Any]:
    """The decorator behind ``app.table_route`` and ``app.topic_route``."""
    if shard_param is not None:
        warnings.warn(
            "shard_param is deprecated: use query_param", DeprecationWarning, stacklevel=3
        )
        if query_param is not None:
            raise TypeError("give shard_param or query_param, not both")
        query_param = shard_param
    if query_param is None and match_info is None and exact_key is None:
        raise TypeError(f"{kind}_route needs one of query_param, match_info or exact_key")
    mark = Route(target, kind, query_param, match_info, exact_key)

    def decorate(fun: Any) -> Any:
        @functools.wraps(fun)
        async def routed(view: View, request: Any, *args: Any, **kwargs: Any) -> Any:
            return await fun(view, request, *args, **kwargs)

        setattr(routed, ROUTE_ATTR, mark)
        return routed

    return decorate


def route_of(view: type[View], method: str) -> Route | None:
    """The route of ``view``'s ``method`` (None: any worker may answer)."""
    handler = getattr(view, method.lower(), None)
    if method.upper() == "HEAD" and handler is not None and handler is View.head:
        handler = getattr(view, "get", None)
    mark = getattr(handler, ROUTE_ATTR, None)
    return mark if isinstance(mark, Route) else None


@dataclass(frozen=True)
class Page:
    """A page of the app: its path (aiohttp's ``{name}`` syntax) and view."""

    path: str
    view: type[View]
    name: str


def make_page(path: str, fun: Any, base: type[View], name: str | None) -> Page:
    if not path.startswith("/"):
        raise ValueError(f"a page's path must start with '/': {path!r}")
    if isinstance(fun, type):
        if not issubclass(fun, View):
            raise TypeError(f"a page class must be a subclass of shoal.web.View: {fun!r}")
        view = fun
    else:
        view = base.from_handler(fun)
    view.view_name = name or view.__name__
    view.view_path = path
    return Page(path, view, view.view_name)


def unknown_table(name: str, tables: Mapping[str, Any]) -> NotFound:
    known = ", ".join(sorted(tables)) or "none"
    return NotFound(f"unknown table {name!r} (tables: {known})", table=name)

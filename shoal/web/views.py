"""Web views, as Faust writes them: a :class:`View` class per page, or a function.

::

    @app.page('/count/{word}/')
    @app.table_route(table=word_counts, match_info='word')
    async def count(web, request, word):
        return web.json({'word': word, 'count': word_counts[word]})

    @app.page('/orders/')
    class Orders(View):
        async def post(self, request):
            order = await request.json()
            await orders_topic.send(value=order)
            return self.json({'ok': True}, status=201)

A view runs in the worker process that owns the key it is routed by (or in any worker, for a
page without a route): the host's web server hands the request over (shoal.supervisor.web).
A method is called with the request and the path's ``{parameters}`` as keyword arguments;
it answers with ``self.json``/``self.text``/``self.html``/``self.bytes``/``self.error``, or
raises a :class:`~shoal.web.exceptions.WebError` (``raise self.NotFound(...)``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import msgspec
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy
from yarl import URL

from shoal.model import codecs
from shoal.web import exceptions
from shoal.web.exceptions import WebError

log = logging.getLogger(__name__)

_bytes = bytes  # View has a method named bytes
_json = codecs.make_encoder("json")
#: What a 503 asks the client to wait before it asks again (seconds).
RETRY_AFTER = "1"
METHODS = ("head", "get", "post", "put", "patch", "delete", "options", "search")


class Request:
    """An HTTP request as a view sees it (what Faust's views use of aiohttp's)."""

    def __init__(
        self,
        method: str,
        path: str,
        *,
        query_string: str = "",
        headers: Iterable[tuple[str, str]] = (),
        body: _bytes = b"",
        match_info: Mapping[str, str] | None = None,
        host: str = "localhost",
    ) -> None:
        self.method = method.upper()
        self.path = path
        self.query_string = query_string
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(list(headers)))
        self._body = body
        self.match_info: dict[str, str] = dict(match_info or {})
        self.url = URL.build(
            scheme="http", authority=self.headers.get("Host", host), path=path, encoded=True
        ).with_query(query_string)
        self.query: MultiDictProxy[str] = MultiDictProxy(MultiDict(self.url.query))

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "application/octet-stream").split(";")[0]

    @property
    def can_read_body(self) -> bool:
        return bool(self._body)

    body_exists = can_read_body

    async def read(self) -> _bytes:
        return self._body

    async def text(self) -> str:
        return self._body.decode("utf-8", errors="replace")

    async def json(self) -> Any:
        """The body as JSON; a body that is not JSON is a 400 naming the problem."""
        try:
            return msgspec.json.decode(self._body)
        except msgspec.DecodeError as exc:
            raise exceptions.ParseError(f"the request body is not valid JSON: {exc}") from None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


class Response:
    """What a view answers: a status, headers, and a body."""

    def __init__(
        self,
        body: _bytes = b"",
        *,
        status: int = 200,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers = dict(headers or {})
        self.reason = reason

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.content_type} {len(self.body)} bytes>"


class View:
    """A web page: subclass it and define ``get``, ``post``, ``put``, ``patch``, ``delete``."""

    ServerError: ClassVar[type[WebError]] = exceptions.ServerError
    ValidationError: ClassVar[type[WebError]] = exceptions.ValidationError
    ParseError: ClassVar[type[WebError]] = exceptions.ParseError
    NotAuthenticated: ClassVar[type[WebError]] = exceptions.NotAuthenticated
    PermissionDenied: ClassVar[type[WebError]] = exceptions.PermissionDenied
    NotFound: ClassVar[type[WebError]] = exceptions.NotFound
    ServiceUnavailable: ClassVar[type[WebError]] = exceptions.ServiceUnavailable

    view_name: ClassVar[str] = ""
    view_path: ClassVar[str] = ""

    def __init__(self, app: Any = None, web: Any = None) -> None:
        self.app = app
        #: Faust's web driver; here the view itself answers (``web.json(...)`` works).
        self.web = web if web is not None else self
        self.__post_init__()

    def __post_init__(self) -> None:
        """Override to set the view up."""

    @classmethod
    def from_handler(cls, fun: Any) -> type[View]:
        """A view class whose ``get`` is ``fun(view, request, **match_info)`` (Faust's)."""
        if not callable(fun):
            raise TypeError(f"a page must be a View subclass or a function, not {fun!r}")
        return type(
            fun.__name__,
            (cls,),
            {"get": fun, "__doc__": fun.__doc__, "__module__": fun.__module__},
        )

    @classmethod
    def get_methods(cls) -> set[str]:
        """The HTTP methods this view answers."""
        methods = {"HEAD"} if cls.get is not View.get else set()
        for name in METHODS:
            if getattr(cls, name) is not getattr(View, name):
                methods.add(name.upper())
        return methods

    async def dispatch(self, request: Request) -> Response:
        """Call the method for ``request`` with the path parameters; errors become JSON."""
        method = getattr(self, request.method.lower(), None)
        if request.method.lower() not in METHODS or method is None:
            return self.error(405, f"method {request.method} not allowed")
        try:
            result = await method(request, **request.match_info)
        except WebError as exc:
            return error_of(exc)
        return self._as_response(result)

    def _as_response(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if isinstance(result, str):
            return self.text(result)
        if result is None:
            return Response(b"", status=204)
        return self.json(result)

    # -- what a method answers with (Faust's names) ------------------------------------------

    async def head(self, request: Request, **kwargs: Any) -> Any:
        return await self.get(request, **kwargs)

    async def get(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method GET not allowed.")

    async def post(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method POST not allowed.")

    async def put(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method PUT not allowed.")

    async def patch(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method PATCH not allowed.")

    async def delete(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method DELETE not allowed.")

    async def options(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method OPTIONS not allowed.")

    async def search(self, request: Request, **kwargs: Any) -> Any:
        raise exceptions.MethodNotAllowed("Method SEARCH not allowed.")

    def json(
        self,
        value: Any,
        *,
        content_type: str | None = None,
        status: int = 200,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """``value`` as JSON (Records, dicts, lists, numbers, strings...)."""
        body = _json(value) or b"null"
        return Response(
            body,
            status=status,
            content_type=content_type or "application/json",
            headers=headers,
            reason=reason,
        )

    def text(
        self,
        value: str,
        *,
        content_type: str | None = None,
        status: int = 200,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return Response(
            value.encode(),
            status=status,
            content_type=content_type or "text/plain",
            headers=headers,
            reason=reason,
        )

    def html(
        self,
        value: str,
        *,
        content_type: str | None = None,
        status: int = 200,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return self.text(
            value,
            content_type=content_type or "text/html",
            status=status,
            reason=reason,
            headers=headers,
        )

    def bytes(
        self,
        value: _bytes,
        *,
        content_type: str | None = None,
        status: int = 200,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return Response(
            value,
            status=status,
            content_type=content_type or "application/octet-stream",
            headers=headers,
            reason=reason,
        )

    def error(
        self, status: int, reason: str, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Response:
        """``{"error": reason, **kwargs}`` with ``status``."""
        return error_response(status, reason, headers, **kwargs)

    def notfound(self, reason: str = "Not Found", **kwargs: Any) -> Response:
        return self.error(404, reason, **kwargs)

    async def read_request_content(self, request: Request) -> _bytes:
        return await request.read()


def error_response(
    status: int, reason: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    """``{"error": reason, **extra}`` with ``status``: every error shoal's web answers with.
    A 503 says when to ask again (``Retry-After``)."""
    given = dict(headers or {})
    if status == 503:
        given.setdefault("Retry-After", RETRY_AFTER)
    body = _json({"error": reason, **extra}) or b"null"
    return Response(body, status=status, headers=given)


def error_of(exc: WebError) -> Response:
    """What a raised :class:`~shoal.web.exceptions.WebError` answers."""
    return error_response(exc.code, exc.detail, **exc.extra_context)

"""Errors a web view raises to answer with an HTTP error (Faust's ``faust.web.exceptions``).

``raise self.NotFound('no such order', order=order_id)`` in a view answers 404 with
``{"error": "no such order", "order": ...}``; any other exception a view raises answers 500
naming it (and is logged with its traceback).
"""

from __future__ import annotations

import http
from typing import Any

from shoal.exceptions import ShoalError


class WebError(ShoalError):
    """An HTTP error: ``code`` (the status), ``detail`` (what went wrong), extra fields."""

    code: int = http.HTTPStatus.INTERNAL_SERVER_ERROR
    detail: str = "Internal server error."

    def __init__(
        self, detail: str | None = None, *, code: int | None = None, **extra_context: Any
    ) -> None:
        if detail:
            self.detail = detail
        if code:
            self.code = code
        self.extra_context = extra_context
        super().__init__(self.detail)


class ServerError(WebError):
    code = http.HTTPStatus.INTERNAL_SERVER_ERROR
    detail = "Internal server error."


class ValidationError(WebError):
    code = http.HTTPStatus.BAD_REQUEST
    detail = "Invalid input."


class ParseError(WebError):
    code = http.HTTPStatus.BAD_REQUEST
    detail = "Malformed request."


class AuthenticationFailed(WebError):
    code = http.HTTPStatus.UNAUTHORIZED
    detail = "Incorrect authentication credentials."


class NotAuthenticated(WebError):
    code = http.HTTPStatus.UNAUTHORIZED
    detail = "Authentication credentials were not provided."


class PermissionDenied(WebError):
    code = http.HTTPStatus.FORBIDDEN
    detail = "You do not have permission to perform this action."


class NotFound(WebError):
    code = http.HTTPStatus.NOT_FOUND
    detail = "Not found."


class MethodNotAllowed(WebError):
    code = http.HTTPStatus.METHOD_NOT_ALLOWED
    detail = "Method not allowed."


class NotAcceptable(WebError):
    code = http.HTTPStatus.NOT_ACCEPTABLE
    detail = "Could not satisfy the request Accept header."


class UnsupportedMediaType(WebError):
    code = http.HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    detail = "Unsupported media type in request."


class Throttled(WebError):
    code = http.HTTPStatus.TOO_MANY_REQUESTS
    detail = "Request was throttled."


class ServiceUnavailable(WebError):
    code = http.HTTPStatus.SERVICE_UNAVAILABLE
    detail = "Service unavailable. Try again later."

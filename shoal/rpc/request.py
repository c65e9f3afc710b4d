"""What an ``ask`` carries so its reply finds its way back, and how replies are encoded.

A request is an ordinary message on the agent's topic (so it is ordered with the other events
of its key) with headers: where to reply (``shoal-reply-to``, a topic name), a correlation id,
the agent's name, and from a worker of a supervisor the route (``shoal-reply-route``: which
worker of that host asked). The reply carries the same correlation id and route; an agent that
raised replies with ``shoal-error`` (the exception type) and the message in the body, so the
asker gets an exception instead of waiting forever. Replies are JSON unless they go into
another agent's topic (``send(reply_to=other_agent)``), which gets that topic's serializer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from shoal.model.events import Message
from shoal.types import Headers

REPLY_TO = "shoal-reply-to"
CORRELATION_ID = "shoal-correlation-id"
ERROR = "shoal-error"
AGENT = "shoal-agent"
ROUTE = "shoal-reply-route"

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode


def new_correlation_id() -> str:
    """128 random bits: unique across processes and hosts without coordination."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Request:
    """The reply address of a request, as its headers carry it."""

    reply_to: str
    correlation_id: str
    #: The agent asked (None in a request that did not say).
    agent: str | None
    #: Which worker of the asker's host asked (None: the asker reads its own reply topic).
    route: str | None = None

    def headers(self) -> Headers:
        headers = [
            (REPLY_TO, self.reply_to.encode()),
            (CORRELATION_ID, self.correlation_id.encode()),
        ]
        return headers + self._agent_and_route()

    def _agent_and_route(self) -> Headers:
        headers = []
        if self.agent is not None:
            headers.append((AGENT, self.agent.encode()))
        if self.route is not None:
            headers.append((ROUTE, self.route.encode()))
        return headers

    @classmethod
    def of(cls, message: Message) -> Request | None:
        """The request a message carries, or None when nobody waits for an answer."""
        if not message.headers:
            return None
        reply_to = message.header(REPLY_TO)
        if reply_to is None:
            return None
        cid = message.header(CORRELATION_ID)
        agent = message.header(AGENT)
        route = message.header(ROUTE)
        return cls(
            reply_to.decode(),
            cid.decode() if cid else "",
            agent.decode() if agent is not None else None,
            route.decode() if route is not None else None,
        )

    def reply_headers(self, error: BaseException | None) -> Headers:
        """Headers of the reply: the correlation id, the agent and route, and the error."""
        headers = [(CORRELATION_ID, self.correlation_id.encode()), *self._agent_and_route()]
        if error is not None:
            headers.append((ERROR, error_type(error)))
        return headers


def encode_reply(value: Any) -> bytes:
    return _json_encode(value)


def encode_error(exc: BaseException) -> bytes:
    return _json_encode({"message": str(exc)})


def error_type(exc: BaseException) -> bytes:
    return type(exc).__qualname__.encode()


def decode_reply(data: bytes | None) -> Any:
    """A reply's body; raises msgspec.DecodeError for one that is not JSON."""
    return _json_decode(data) if data else None

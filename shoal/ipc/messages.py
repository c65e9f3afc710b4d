"""The messages between a supervisor and its workers (and ``clusterctl scale``), typed.

Each is a frozen msgspec Struct, tagged by its ``t`` field, sent as msgpack over a
:class:`~shoal.ipc.link.Link`: one ``decode`` validates a frame against all of them, so a
malformed or unknown frame is rejected at the door, not deep in a handler.

Start: the worker says :class:`Hello`; the supervisor answers :class:`Welcome` (the host's
reply topic); the worker starts the app and says :class:`Ready` (the topics it reads).
Then the worker sends :class:`Heartbeat`, :class:`Offsets` (to commit), :class:`Revoked`
(final offsets), :class:`Reply` (for another worker of the host) and :class:`WebResponse`;
the supervisor sends :class:`Assign`, :class:`Revoke`, :class:`Committed`, :class:`Reply` (to
one of the worker's asks), :class:`WebRequest` (an HTTP request the worker answers) and
:class:`Stop`. On the control socket: :class:`Scale`, answered :class:`Scaling` or
:class:`Refused`.

Partitions travel as ``(topic, partition)`` pairs and offsets as ``(topic, partition,
offset)`` triples.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from shoal.types import TP

#: (topic, partition, offset)
Offset = tuple[str, int, int]


class Message(msgspec.Struct, frozen=True, tag_field="t"):
    """Base of every message."""


class Hello(Message, tag="hello", frozen=True):
    index: int
    pid: int


class Welcome(Message, tag="welcome", frozen=True):
    reply_topic: str


class Ready(Message, tag="ready", frozen=True):
    topics: list[str]
    #: The worker has tables whose partitions a standby could keep warm.
    tables: bool = False


class Heartbeat(Message, tag="hb", frozen=True):
    at: float
    received: int
    partitions: list[TP]
    lag: int | None
    highs: list[Offset]
    #: Changelog records the worker's running table recovery has still to replay.
    recovering: int = 0


class Offsets(Message, tag="offsets", frozen=True):
    id: int
    offsets: list[Offset]


class Committed(Message, tag="committed", frozen=True):
    id: int
    ok: bool


class Assign(Message, tag="assign", frozen=True):
    tps: list[TP]


class Standby(Message, tag="standby", frozen=True):
    """The partition numbers whose table changelogs the worker follows for another host."""

    partitions: list[int]


class Revoke(Message, tag="revoke", frozen=True):
    id: int
    tps: list[TP]
    #: False when the group lost the partitions: stop at once, commit nothing.
    commit: bool = True


class Revoked(Message, tag="revoked", frozen=True):
    id: int
    offsets: list[Offset]


class Reply(Message, tag="reply", frozen=True):
    cid: str
    value: bytes | None
    error: bytes | None
    #: Which worker of the host asked (set on a worker's way to the supervisor).
    route: str | None = None


class WebRequest(Message, tag="web", frozen=True):
    """An HTTP request for a worker to answer (a page of the app, or a built-in view)."""

    id: int
    #: The page's name, or a built-in view's (``"shoal:table"``).
    page: str
    method: str
    path: str
    query_string: str
    headers: list[tuple[str, str]]
    body: bytes
    match_info: dict[str, str]
    #: The partition the request was routed by (None: any worker may answer).
    partition: int | None = None


class WebResponse(Message, tag="webr", frozen=True):
    id: int
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str]


class Stop(Message, tag="stop", frozen=True):
    pass


class Scale(Message, tag="scale", frozen=True):
    delta: int | None = None
    workers: int | None = None


class Scaling(Message, tag="scaling", frozen=True):
    pid: int
    before: int
    after: int


class Refused(Message, tag="error", frozen=True):
    message: str


AnyMessage = (
    Hello
    | Welcome
    | Ready
    | Heartbeat
    | Offsets
    | Committed
    | Assign
    | Standby
    | Revoke
    | Revoked
    | Reply
    | WebRequest
    | WebResponse
    | Stop
    | Scale
    | Scaling
    | Refused
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyMessage)


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> AnyMessage:
    """The message in ``data``; raises msgspec.DecodeError (a ValidationError for a frame
    that is msgpack but no message of ours)."""
    return _decoder.decode(data)


def pack_tps(tps: Iterable[TP]) -> list[TP]:
    return sorted(tps)


def pack_offsets(offsets: dict[TP, int]) -> list[Offset]:
    return [(t, p, o) for (t, p), o in sorted(offsets.items())]


def unpack_offsets(items: Iterable[Offset]) -> dict[TP, int]:
    return {(t, p): o for t, p, o in items}

"""The local channel between a supervisor and its workers: length-prefixed msgpack frames.

One Unix socket per supervisor; each worker connects once at boot. Messages are dicts with a
type under ``"t"``. Partitions travel as ``[topic, partition]`` lists and offsets as
``[topic, partition, offset]``.

Start: the worker says ``hello`` (index, pid); the supervisor answers ``welcome`` (the host's
reply topic); the worker starts the app and says ``ready`` (the topics it reads).

Then worker -> supervisor: ``hb`` (stats), ``offsets`` (id, offsets to commit), ``revoked``
(id, final offsets), ``reply`` (route, cid, value, error: a reply for another worker of this
host). Supervisor -> worker: ``assign`` (tps), ``revoke`` (id, tps), ``committed`` (id, ok),
``reply`` (cid, value, error: a reply to one of its asks), ``stop``.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable
from typing import Any

import msgpack

from shoal.types import TP

HELLO = "hello"
WELCOME = "welcome"
READY = "ready"
REPLY = "reply"
HEARTBEAT = "hb"
OFFSETS = "offsets"
REVOKED = "revoked"
ASSIGN = "assign"
REVOKE = "revoke"
COMMITTED = "committed"
STOP = "stop"

_HEADER = struct.Struct(">I")
MAX_FRAME = 16 * 1024 * 1024


class ChannelClosed(ConnectionError):
    """The other end went away."""


class BadFrame(ChannelClosed):
    """The other end sent something that is not a channel message (a stray connection): the
    link is of no further use."""


class Link:
    """One end of the channel: send and receive whole messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        data = msgpack.packb(message, use_bin_type=True)
        async with self._lock:
            try:
                self._writer.write(_HEADER.pack(len(data)) + data)
                await self._writer.drain()
            except (ConnectionError, RuntimeError) as exc:
                raise ChannelClosed(str(exc)) from exc

    async def recv(self) -> dict[str, Any]:
        """The next message; raises ChannelClosed at end of stream."""
        try:
            (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ChannelClosed(str(exc)) from exc
        if size > MAX_FRAME:
            raise BadFrame(f"a frame of {size} bytes, over the {MAX_FRAME} limit")
        try:
            body = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ChannelClosed(str(exc)) from exc
        try:
            message = msgpack.unpackb(body, raw=False)
        except Exception as exc:  # msgpack raises several kinds for garbage
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise BadFrame(f"an undecodable frame ({why})") from None
        if not isinstance(message, dict) or not isinstance(message.get("t"), str):
            raise BadFrame(f"not a channel message: {repr(message)[:80]}")
        return message

    def close(self) -> None:
        self._writer.close()


def pack_tps(tps: Iterable[TP]) -> list[list[Any]]:
    return [[t, p] for t, p in sorted(tps)]


def unpack_tps(items: Iterable[Any]) -> list[TP]:
    return [(str(t), int(p)) for t, p in items]


def pack_offsets(offsets: dict[TP, int]) -> list[list[Any]]:
    return [[t, p, o] for (t, p), o in sorted(offsets.items())]


def unpack_offsets(items: Iterable[Any]) -> dict[TP, int]:
    return {(str(t), int(p)): int(o) for t, p, o in items}

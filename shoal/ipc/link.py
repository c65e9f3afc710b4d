"""The local channel between a supervisor and its workers: length-prefixed msgpack frames.

One Unix socket per supervisor; each worker connects once at boot. A frame is a 4-byte
big-endian length and one message of :mod:`shoal.ipc.messages`, validated when it is read: a
frame that is not one of ours (a stray connection) ends the link with :class:`BadFrame`.
"""

from __future__ import annotations

import asyncio
import struct

import msgspec

from shoal.ipc.messages import AnyMessage, Message, decode, encode

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

    async def send(self, message: Message) -> None:
        data = encode(message)
        async with self._lock:
            try:
                self._writer.write(_HEADER.pack(len(data)) + data)
                await self._writer.drain()
            except (ConnectionError, RuntimeError) as exc:
                raise ChannelClosed(str(exc)) from exc

    async def recv(self) -> AnyMessage:
        """The next message; raises ChannelClosed at end of stream, BadFrame for a frame that
        is not a message of ours."""
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
            return decode(body)
        except msgspec.DecodeError as exc:  # a ValidationError too: msgpack, not ours
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise BadFrame(f"an undecodable frame ({why})") from None

    def close(self) -> None:
        self._writer.close()

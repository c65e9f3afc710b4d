"""The channel's messages and framing, over a real socket pair and no processes."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from shoal.ipc.link import MAX_FRAME, BadFrame, ChannelClosed, Link
from shoal.ipc.messages import (
    Assign,
    Heartbeat,
    Hello,
    Offsets,
    Reply,
    Revoke,
    Stop,
    decode,
    encode,
    pack_offsets,
    unpack_offsets,
)


@pytest.mark.parametrize(
    "message",
    [
        Hello(index=2, pid=4242),
        Assign([("orders", 0), ("orders", 4)]),
        Revoke(7, [("orders", 1)], commit=False),
        Offsets(3, pack_offsets({("orders", 1): 10, ("pay", 0): 3})),
        Heartbeat(at=1.5, received=9, partitions=[("t", 0)], lag=None, highs=[]),
        Reply("cid", b"8", None, route="1"),
        Stop(),
    ],
)
def test_every_message_survives_the_wire_as_it_was(message: object) -> None:
    assert decode(encode(message)) == message  # type: ignore[arg-type]


def test_offsets_travel_as_triples() -> None:
    offsets = {("orders", 1): 10, ("pay", 0): 3}
    assert unpack_offsets(pack_offsets(offsets)) == offsets


async def links() -> tuple[Link, Link]:
    left, right = socket.socketpair()
    a = Link(*await asyncio.open_unix_connection(sock=left))
    b = Link(*await asyncio.open_unix_connection(sock=right))
    return a, b


async def test_a_link_carries_whole_messages_both_ways() -> None:
    a, b = await links()
    await a.send(Hello(0, 1))
    await b.send(Stop())
    assert await b.recv() == Hello(0, 1)
    assert await a.recv() == Stop()
    a.close()
    with pytest.raises(ChannelClosed):
        await b.recv()


@pytest.mark.parametrize(
    "frame",
    [
        struct.pack(">I", 3) + b"abc",  # msgpack, but extra data
        struct.pack(">I", 1) + b"\xc1",  # never used in msgpack
        struct.pack(">I", 12) + encode(Stop())[:-1] + b"\x00" * 9,  # junk
        struct.pack(">I", 9) + b"\x81\xa1t\xa5hello",  # a hello with no fields
        struct.pack(">I", 11) + b"\x81\xa1t\xa7unknown",  # no message of ours
        struct.pack(">I", MAX_FRAME + 1),  # too large to read
    ],
)
async def test_what_is_not_one_of_our_messages_ends_the_link(frame: bytes) -> None:
    left, right = socket.socketpair()
    b = Link(*await asyncio.open_unix_connection(sock=right))
    left.sendall(frame)
    with pytest.raises(BadFrame):
        await b.recv()
    left.close()

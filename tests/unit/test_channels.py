"""In-memory channels: every reader gets every value, a value sent before anyone reads waits
for the first reader, and a full reader holds the sender back. No Kafka."""

from __future__ import annotations

import asyncio

import pytest

import shoal
from shoal.exceptions import AgentError
from tests.helpers import wait_until


def app() -> shoal.App:
    return shoal.App("channels-test", broker="kafka://127.0.0.1:1")  # never reached


async def test_every_reader_gets_every_value_and_early_values_wait() -> None:
    channel = app().channel(value_type=int)
    await channel.send(value=1)  # nobody reads yet: kept for the first reader
    first, second = channel.stream(), channel.stream()
    await channel.put(2)
    got_first = [await first.__anext__() for _ in range(2)]
    assert got_first == [1, 2]
    assert await second.__anext__() == 2
    event = first.current_event
    assert event is not None and event.message.tp.topic == channel.get_topic_name()


async def test_a_sender_waits_while_a_reader_is_full() -> None:
    channel = app().channel(maxsize=2)
    reader = channel.stream()
    await channel.send(value="a")
    await channel.send(value="b")
    blocked = asyncio.ensure_future(channel.send(value="c"))
    # It must not finish while the reader's inbox is full (given the time to, it would).
    done, _ = await asyncio.wait({blocked}, timeout=0.1)
    assert not done
    assert await reader.__anext__() == "a"
    await asyncio.wait_for(blocked, 5)


async def test_values_nobody_reads_are_not_dropped_silently() -> None:
    channel = app().channel(maxsize=1)
    await channel.send(value=1)
    with pytest.raises(AgentError, match="nobody reads it"):
        await channel.send(value=2)


async def test_an_agent_reads_a_channel_cast_and_send_alike() -> None:
    the_app = app()
    channel = the_app.channel(value_type=int)

    @the_app.agent(channel)
    async def double(stream: shoal.Stream[int]) -> object:
        async for value in stream:
            yield value * 2

    seen: list[int] = []
    double.add_sink(seen.append)
    tasks = double.start(channel.inbox(double.name))
    try:
        await double.cast(4)
        await channel.send(value=5)
        await wait_until(lambda: seen == [8, 10], 5, "the doubled values")
    finally:
        for task in tasks:
            task.cancel()

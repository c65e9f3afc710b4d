"""Agents end to end on the real broker, in this process."""

from __future__ import annotations

from typing import Any

import pytest

import shoal
from shoal.exceptions import RemoteAgentError
from tests.helpers import data_offsets, wait_until

pytestmark = pytest.mark.kafka


class Add(shoal.Record):
    a: int
    b: int


async def assigned(app: Any) -> None:
    await wait_until(lambda: app.conductor.offsets, 60, "a partition assignment")


async def test_ask_returns_what_the_agent_yields(app_factory: Any, running: Any) -> None:
    app = app_factory()
    topic = app.topic(f"{app.id}-adding", value_type=Add)

    @app.agent(topic)
    async def adding(stream: shoal.StreamT[Add]) -> Any:
        async for value in stream:
            yield value.a + value.b

    await running(app)
    await assigned(app)
    assert await adding.ask(Add(a=4, b=4), timeout=30) == 8
    assert await adding.join([Add(a=i, b=i) for i in range(8)], timeout=30) == [
        2 * i for i in range(8)
    ]


async def test_ask_from_another_app_goes_through_kafka(app_factory: Any, running: Any) -> None:
    worker_app = app_factory()
    name = f"{worker_app.id}-pow2"

    @worker_app.agent(worker_app.topic(name, value_type=int))
    async def pow2(stream: Any) -> Any:
        async for value in stream:
            yield value * value

    client_app = app_factory()
    client_pow2 = client_app.agent(client_app.topic(name, value_type=int), name="pow2")(pow2.fun)

    await running(worker_app)
    await assigned(worker_app)
    try:
        results = await client_pow2.join([1, 2, 3, 4, 5, 6, 7, 8], timeout=30)
        assert results == [1, 4, 9, 16, 25, 36, 49, 64]
        mapped = {r async for r in client_pow2.map(range(10), timeout=30)}
        assert mapped == {i * i for i in range(10)}
    finally:
        await client_app.stop()


async def test_remote_error_reaches_the_asker(app_factory: Any, running: Any) -> None:
    app = app_factory()

    @app.agent(app.topic(f"{app.id}-fails", value_type=int))
    async def fails(stream: Any) -> Any:
        async for value in stream:
            if value < 0:
                raise ValueError(f"negative: {value}")
            yield value

    await running(app)
    await assigned(app)
    with pytest.raises(RemoteAgentError, match="ValueError: negative: -1"):
        await fails.ask(-1, timeout=30)
    assert await fails.ask(3, timeout=30) == 3  # the agent went on


async def test_every_sink_kind_receives_the_yields(app_factory: Any, running: Any) -> None:
    app = app_factory()
    seen_sync: list[int] = []
    seen_async: list[int] = []
    seen_by_agent: list[int] = []
    log_topic = app.topic(f"{app.id}-log", value_type=int)
    log_seen: list[int] = []

    def sync_sink(value: int) -> None:
        seen_sync.append(value)

    async def async_sink(value: int) -> None:
        seen_async.append(value)

    @app.agent(app.topic(f"{app.id}-b", value_type=int))
    async def agent_b(stream: Any) -> Any:
        async for value in stream:
            seen_by_agent.append(value)
            yield value

    @app.agent(log_topic)
    async def read_log(stream: Any) -> Any:
        async for value in stream:
            log_seen.append(value)
            yield value

    @app.agent(
        app.topic(f"{app.id}-a", value_type=int),
        sink=[sync_sink, async_sink, log_topic, agent_b],
    )
    async def agent_a(stream: Any) -> Any:
        async for value in stream:
            yield value * 10

    await running(app)
    await assigned(app)
    for i in range(5):
        await agent_a.cast(i)
    expected = [0, 10, 20, 30, 40]
    await wait_until(lambda: len(seen_by_agent) == 5 and len(log_seen) == 5, 30, "sinks")
    assert sorted(seen_sync) == expected
    assert sorted(seen_async) == expected
    assert sorted(seen_by_agent) == expected
    assert sorted(log_seen) == expected


async def test_send_with_reply_to_another_agent(app_factory: Any, running: Any) -> None:
    app = app_factory()
    replies: list[int] = []

    @app.agent(app.topic(f"{app.id}-collector", value_type=int))
    async def collector(stream: Any) -> Any:
        async for value in stream:
            replies.append(value)
            yield value

    @app.agent(app.topic(f"{app.id}-adder", value_type=Add))
    async def adder(stream: Any) -> Any:
        async for value in stream:
            yield value.a + value.b

    await running(app)
    await assigned(app)
    await adder.send(value=Add(a=2, b=2), reply_to=collector)
    await wait_until(lambda: replies, 30, "the reply in the other agent")
    assert replies == [4]


async def test_commits_follow_processing(app_factory: Any, running: Any) -> None:
    app = app_factory(topic_partitions=1)
    processed: list[int] = []

    @app.agent(app.topic(f"{app.id}-numbers", value_type=int))
    async def numbers(stream: Any) -> Any:
        async for value in stream:
            processed.append(value)
            yield value

    await running(app)
    await assigned(app)
    for i in range(20):
        await numbers.cast(i)
    await wait_until(lambda: len(processed) == 20, 30, "processing")
    tracker = next(iter(data_offsets(app).values()))
    await wait_until(lambda: tracker.committed == 20, 30, "the commit of offset 20")
    assert processed == list(range(20))


async def test_an_agent_asks_another_agent_of_the_same_worker(
    app_factory: Any, running: Any
) -> None:
    app = app_factory()

    @app.agent(app.topic(f"{app.id}-square", value_type=int))
    async def square(stream: Any) -> Any:
        async for value in stream:
            yield value * value

    @app.agent(app.topic(f"{app.id}-sum-of-squares", value_type=int), on_error="continue")
    async def sum_of_squares(stream: Any) -> Any:
        async for value in stream:
            yield sum(await square.join(range(value + 1), timeout=30))

    await running(app)
    await assigned(app)
    assert await sum_of_squares.ask(4, timeout=30) == 0 + 1 + 4 + 9 + 16
    assert sum_of_squares.error_policy == "continue"
    assert square.error_policy == "crash"

"""through(), `&` and noack() against the real broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers import data_offsets, wait_until

pytestmark = pytest.mark.kafka


async def assigned(app: Any) -> None:
    await wait_until(lambda: app.conductor.offsets, 60, "a partition assignment")


async def test_through_forwards_and_reads_the_other_topic(app_factory: Any, running: Any) -> None:
    app = app_factory(topic_partitions=1)
    middle = app.topic(f"{app.id}-middle", value_type=int)
    seen: list[tuple[str, int]] = []

    @app.agent(app.topic(f"{app.id}-source", value_type=int))
    async def relay(stream: Any) -> Any:
        async for value in stream.through(middle):
            seen.append((stream.current_event.topic, value))
            yield value

    await running(app)
    await wait_until(lambda: len(data_offsets(app)) == 2, 60, "both topics assigned")
    for i in range(5):
        await relay.cast(i)
    await wait_until(lambda: len(seen) == 5, 30, "values through the middle topic")
    assert seen == [(middle.get_topic_name(), i) for i in range(5)]


async def test_merged_streams_hand_out_values_of_both(app_factory: Any, running: Any) -> None:
    app = app_factory(topic_partitions=1)
    other = app.topic(f"{app.id}-other", value_type=int)
    seen: list[int] = []

    @app.agent(app.topic(f"{app.id}-main", value_type=int))
    async def merged(stream: Any) -> Any:
        async for value in stream & other.stream():
            seen.append(value)
            yield value

    await running(app)
    await wait_until(lambda: len(data_offsets(app)) == 2, 60, "both topics assigned")
    for i in range(3):
        await merged.cast(i)
        await other.send(value=100 + i)
    await wait_until(lambda: len(seen) == 6, 30, "values of both topics")
    assert sorted(seen) == [0, 1, 2, 100, 101, 102]


async def test_noack_holds_the_commit_at_the_first_unacked_event(
    app_factory: Any, running: Any
) -> None:
    app = app_factory(topic_partitions=1)
    processed: list[int] = []

    @app.agent(app.topic(f"{app.id}-manual", value_type=int))
    async def manual(stream: Any) -> Any:
        async for event in stream.noack().events():
            processed.append(event.value)
            if event.value % 2 == 0:
                event.ack()
            yield event.value

    await running(app)
    await assigned(app)
    for value in (0, 2, 1, 4):
        await manual.cast(value)
    await wait_until(lambda: len(processed) == 4, 30, "processing")
    tracker = next(iter(data_offsets(app).values()))
    await wait_until(lambda: tracker.committed == 2, 30, "the commit up to the unacked event")
    assert tracker.done == 2  # offset 2 (value 1) was never acked; offset 3 was
    assert tracker.in_flight == 2


async def test_a_group_by_that_starts_after_the_app_is_fetched_at_once(
    app_factory: Any, running: Any
) -> None:
    """An agent that calls group_by only once the app runs: its repartition topic is declared
    and then subscribed (subscribed first, the consumer would learn of the new topic only at
    its next metadata refresh, minutes later, and the events would wait as long)."""
    app = app_factory(topic_partitions=1)
    go = asyncio.Event()
    seen: list[int] = []

    @app.agent(app.topic(f"{app.id}-late", value_type=int))
    async def late(stream: Any) -> Any:
        await go.wait()
        async for value in stream.group_by(lambda v: str(v % 3), name="mod3"):
            seen.append(value)
            yield value

    await running(app)
    await assigned(app)
    go.set()
    await wait_until(lambda: len(data_offsets(app)) == 2, 30, "the repartition topic")
    for i in range(6):
        await late.cast(i)
    await wait_until(lambda: sorted(seen) == list(range(6)), 30, "the regrouped values")
    assert not app.conductor.stats["consumer_errors"]

"""Faust's isolated_partitions: one actor per assigned partition, reading only it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shoal.exceptions import AgentError
from shoal.types import TopicPartition
from tests.helpers import wait_until

pytestmark = pytest.mark.kafka


async def test_each_partition_gets_an_actor_of_its_own(app_factory: Any, running: Any) -> None:
    app = app_factory()
    topic = app.topic(f"{app.id}-iso", value_type=int)
    seen: dict[int, list[tuple[Any, int, int]]] = {}

    @app.agent(topic, isolated_partitions=True)
    async def per_partition(stream: Any) -> None:
        (active,) = stream.active_partitions
        task = id(asyncio.current_task())
        async for event in stream.events():
            seen.setdefault(active.partition, []).append((active, event.message.partition, task))

    await running(app)
    await wait_until(lambda: len(per_partition._actors) == 4, 60, "an actor per partition")
    for i in range(40):
        await topic.send(value=i, partition=i % 4)
    await wait_until(lambda: sum(map(len, seen.values())) == 40, 60, "every event")
    assert sorted(seen) == [0, 1, 2, 3]
    for partition, rows in seen.items():
        # Each actor reads only its own partition, and is one task for all of it.
        assert {r[0] for r in rows} == {TopicPartition(topic.get_topic_name(), partition)}
        assert {r[1] for r in rows} == {partition}
        assert len({r[2] for r in rows}) == 1
    assert len({rows[0][2] for rows in seen.values()}) == 4


def test_isolated_partitions_take_no_concurrency(app_factory: Any) -> None:
    app = app_factory()
    with pytest.raises(AgentError, match="cannot take concurrency=2"):

        @app.agent(app.topic(f"{app.id}-x"), isolated_partitions=True, concurrency=2)
        async def both(stream: Any) -> None:
            async for _ in stream:
                pass

"""Helpers shared by the tests: waiting on conditions with a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(
    predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` on the event loop until it is truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)  # yield to the loop between polls of the predicate


def wait_until_sync(
    predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition"
) -> Any:
    """The same for code outside an event loop (subprocess output, files)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)  # poll interval of the deadline loop


def data_offsets(app: Any) -> dict[Any, Any]:
    """An app's partition trackers, without its leader topic's (whose one partition only
    says who leads)."""
    leader = app.runtime.leader_topic
    return {tp: t for tp, t in app.conductor.offsets.items() if tp[0] != leader}


def changelog_values(bootstrap: str, topic: str, partitions: int) -> dict[bytes, bytes | None]:
    """The last value of each key of a changelog topic, read to its end."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "t-reader", "enable.auto.commit": False}
    )
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(partitions)
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out: dict[bytes, bytes | None] = {}
        seen = dict.fromkeys(ends, 0)
        while any(seen[p] < ends[p] for p in seen):
            for msg in consumer.consume(1000, 1.0):
                assert msg.error() is None, msg.error()
                out[msg.key()] = msg.value()
                seen[msg.partition()] = msg.offset() + 1
        return out
    finally:
        consumer.close()

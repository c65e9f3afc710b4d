"""The producer's barrier against the real broker: waits for what came before, reports losses."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.kafka.producer import DeliveryError, Producer

pytestmark = pytest.mark.kafka


async def test_a_full_local_queue_applies_back_pressure_and_loses_nothing(
    kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = topic_factory("full-queue")
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "queue.buffering.max.messages": 10})
    producer.start()
    try:
        for i in range(500):  # 50 times what the queue holds
            producer.send_soon(topic, None, str(i).encode())
        await producer.barrier(timeout=60)
        assert producer.sent == 500
        assert producer.in_flight() == 0
    finally:
        producer.stop()


async def test_a_failed_delivery_fails_the_barrier_and_names_the_topic(
    kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = topic_factory("too-big")
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 20_000_000})
    producer.start()
    try:
        producer.send_soon(topic, None, b"x" * 5_000_000)  # over the broker's 1 MiB default
        with pytest.raises(DeliveryError, match=f"1 produced messages failed: {topic}"):
            await producer.barrier(timeout=60)
        assert producer.failed == 1
    finally:
        producer.stop()

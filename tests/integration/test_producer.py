"""The producer's barrier against the real broker: waits for what came before, reports losses."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from shoal.exceptions import EncodeError
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


async def test_a_value_sender_waits_out_a_full_queue_and_says_what_it_cannot_encode(
    kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = topic_factory("sender", partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "queue.buffering.max.messages": 10})
    producer.start()

    def encode(value: Any) -> bytes:
        if not isinstance(value, int):
            raise TypeError("not an int")
        return str(value).encode()

    send = producer.value_sender(topic, encode, lambda v, e: EncodeError(f"{v!r}: {e}"))
    try:
        for i in range(500):  # 50 times what the queue holds: the full queue is waited out
            send(i)
        with pytest.raises(EncodeError, match="'x': not an int"):
            send("x")
        await producer.barrier(timeout=60)
        assert producer.sent == 500 and producer.in_flight() == 0
    finally:
        producer.stop()
    # One partition: every value once, in the order sent.
    assert read_values(kafka_bootstrap, topic, 500) == [str(i).encode() for i in range(500)]


def read_values(bootstrap: str, topic: str, n: int) -> list[bytes | None]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes | None] = []
        deadline = time.monotonic() + 30
        while len(values) < n and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 1.0):
                assert msg.error() is None, msg.error()
                values.append(msg.value())
        return values
    finally:
        consumer.close()

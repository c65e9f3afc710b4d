"""Bad input on an agent's topic: reported, counted, dead-lettered, and nothing after it lost."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

import shoal
from tests.helpers import data_offsets, wait_until

pytestmark = pytest.mark.kafka


class Add(shoal.Record):
    a: int
    b: int


def read_all(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            for msg in consumer.consume(count, 0.5):
                if msg.error() is None:
                    got.append(msg)
    finally:
        consumer.close()
    return got


async def test_bad_messages_go_to_the_dead_letter_topic(
    app_factory: Any, running: Any, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(topic_partitions=1)
    name = f"{app.id}-adding"
    sums: list[int] = []

    @app.agent(app.topic(name, value_type=Add))
    async def adding(stream: Any) -> Any:
        async for value in stream:
            sums.append(value.a + value.b)
            yield value.a + value.b

    await running(app)
    await wait_until(lambda: app.conductor.offsets, 60, "assignment")
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    raw.produce(name, value=b'{"a": 1, "b": 1}')
    raw.produce(name, value=b'{"a": 1, "b": ')  # malformed JSON
    raw.produce(name, value=b'{"a": "one", "b": 2}')  # wrong type for a field
    raw.produce(name, key=b"k", value=None)  # no value
    raw.produce(name, value=b'{"a": 2, "b": 2}')
    assert raw.flush(30) == 0

    await wait_until(lambda: len(sums) == 2, 30, "the good messages")
    assert sums == [2, 4]
    assert app.conductor.stats["dead_lettered"] == 3
    tracker = app.conductor.offsets[(name, 0)]
    await wait_until(lambda: tracker.committed == 5, 30, "the commit past the bad messages")

    dead = read_all(kafka_bootstrap, app.conf.dead_letter_topic_name, 3)
    assert [m.value() for m in dead] == [b'{"a": 1, "b": ', b'{"a": "one", "b": 2}', None]
    headers = [dict(m.headers()) for m in dead]
    assert [h["shoal-source-offset"] for h in headers] == [b"1", b"2", b"3"]
    assert all(h["shoal-source-topic"] == name.encode() for h in headers)
    assert b"a" in headers[1]["shoal-error"]  # the wrong field is named
    assert b"no value" in headers[2]["shoal-error"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"{name}[0]@1" in logged and f"{name}[0]@2" in logged and f"{name}[0]@3" in logged


async def test_continue_policy_dead_letters_the_failing_event(
    app_factory: Any, running: Any, kafka_bootstrap: str
) -> None:
    app = app_factory(topic_partitions=1, agent_error_policy="continue")
    seen: list[int] = []

    @app.agent(app.topic(f"{app.id}-n", value_type=int))
    async def picky(stream: Any) -> Any:
        async for value in stream:
            if value == 13:
                raise RuntimeError("unlucky")
            seen.append(value)
            yield value

    await running(app)
    await wait_until(lambda: app.conductor.offsets, 60, "assignment")
    for i in (12, 13, 14):
        await picky.cast(i)
    await wait_until(lambda: seen == [12, 14], 30, "processing around the failure")
    dead = read_all(kafka_bootstrap, app.conf.dead_letter_topic_name, 1)
    assert dead[0].value() == b"13"
    assert dict(dead[0].headers())["shoal-error"] == b"unlucky"
    assert app.crashed is None


async def test_crash_policy_stops_the_worker_and_does_not_commit_the_event(
    app_factory: Any, running: Any
) -> None:
    app = app_factory(topic_partitions=1, agent_error_policy="crash")

    @app.agent(app.topic(f"{app.id}-n", value_type=int))
    async def strict(stream: Any) -> Any:
        async for value in stream:
            if value == 2:
                raise RuntimeError("boom")
            yield value

    await running(app)
    await wait_until(lambda: app.conductor.offsets, 60, "assignment")
    for i in (0, 1, 2, 3):
        await strict.cast(i)
    await wait_until(lambda: app.crashed is not None, 30, "the crash")
    assert str(app.crashed) == "boom"
    tracker = next(iter(data_offsets(app).values()))
    assert tracker.done == 2  # offsets 0 and 1 are done; 2 holds the commit back


async def test_a_message_too_large_to_dead_letter_as_is_is_sent_cut_short(
    app_factory: Any, running: Any, kafka_bootstrap: str
) -> None:
    """The broker took 1,040,000 bytes from a producer allowed that much; shoal's producer
    may send at most 1,000,000. Copying it to the dead-letter topic used to raise inside the
    consumer thread, which died and silently stopped the partition."""
    app = app_factory(topic_partitions=1)
    name = f"{app.id}-adding"
    sums: list[int] = []

    @app.agent(app.topic(name, value_type=Add))
    async def adding(stream: Any) -> Any:
        async for value in stream:
            sums.append(value.a + value.b)
            yield value.a + value.b

    await running(app)
    await wait_until(lambda: app.conductor.offsets, 60, "assignment")
    raw = Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 2_000_000})
    raw.produce(name, value=b'{"a": 1, "b": 1}')
    raw.produce(name, key=b"big", value=b"x" * 1_040_000, headers=[("trace", b"t-1")])
    raw.produce(name, value=b'{"a": 2, "b": 2}')
    assert raw.flush(30) == 0

    await wait_until(lambda: len(sums) == 2, 30, "the good messages around the big one")
    assert sums == [2, 4]
    assert app.conductor.stats["dead_letters_truncated"] == 1
    assert app.conductor.fetching  # the consumer thread lives on
    tracker = app.conductor.offsets[(name, 0)]
    await wait_until(lambda: tracker.committed == 3, 30, "the commit past the big message")

    (letter,) = read_all(kafka_bootstrap, app.conf.dead_letter_topic_name, 1)
    headers = dict(letter.headers())
    assert letter.key() == b"big"
    assert letter.value() == b"x" * 64 * 1024
    assert headers["shoal-truncated"] == b"value"
    assert headers["shoal-original-size"] == b"value=1040000"
    assert headers["shoal-source-offset"] == b"1"
    assert headers["trace"] == b"t-1"  # the original's headers are kept

"""The dispatch of fetched batches, with no Kafka: decode per subscriber, push to inboxes,
dead-letter what cannot be handled, skip what is no longer owned."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from shoal.exceptions import DecodeError
from shoal.kafka.admin import TopicSpec
from shoal.kafka.producer import MessageTooLarge
from shoal.model.events import Event, Message, Tracker
from shoal.runtime.dispatch import DLQ_KEEP_BYTES, DeadLetters, Dispatch
from shoal.runtime.offsets import PartitionOffsets
from shoal.runtime.subscriptions import Subscriptions
from shoal.types import TP
from tests.helpers import wait_until


class IntTopic:
    """A topic of int values, as the runtime sees one."""

    internal = False

    def __init__(self, name: str) -> None:
        self.topics = (name,)

    def get_topic_name(self) -> str:
        return self.topics[0]

    def to_event(self, message: Message, tracker: Tracker | None) -> Event:
        if message.value is None:  # as Topic.to_event
            raise DecodeError("message has no value")
        try:
            return Event(None, int(message.value or b""), message, tracker)
        except ValueError as exc:
            raise DecodeError(f"not an int: {message.value!r}") from exc

    def encode_value(self, value: Any) -> bytes | None:
        return str(value).encode()

    def specs(self, default_partitions: int) -> list[TopicSpec]:
        return [TopicSpec(self.topics[0], default_partitions, {})]


class RecordingProducer:
    def __init__(self, limit: int = 1 << 30) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, Any]] = []
        self.limit = limit

    def send_soon(self, topic: str, key: Any, value: Any, *, headers: Any = None) -> None:
        if len(value or b"") > self.limit:
            raise MessageTooLarge("too large")
        self.sent.append((topic, key, value, headers))


def setup(
    producer: RecordingProducer,
) -> tuple[Dispatch, Subscriptions, dict[TP, Any], Counter[str]]:
    stats: Counter[str] = Counter()
    subscriptions = Subscriptions(maxsize=100)
    offsets: dict[TP, PartitionOffsets] = {("n", 0): PartitionOffsets("n", 0)}
    letters = DeadLetters("dead", lambda: producer, stats)  # type: ignore[arg-type, return-value]
    received: list[int] = []
    dispatch = Dispatch(subscriptions, offsets, letters, stats, received.append)
    return dispatch, subscriptions, offsets, stats


def message(partition: int, offset: int, value: bytes | None) -> Message:
    return Message("n", partition, offset, None, b"k", value, [("h", b"1")])


async def test_every_subscriber_gets_the_decoded_event_and_the_offsets_count_them() -> None:
    producer = RecordingProducer()
    dispatch, subscriptions, offsets, stats = setup(producer)
    topic = IntTopic("n")
    first = subscriptions.subscribe(topic, owner="a")
    second = subscriptions.subscribe(topic, owner="b")
    await dispatch([message(0, 0, b"5"), message(0, 1, b"6")])
    assert [first.get_nowait().value for _ in range(2)] == [5, 6]  # type: ignore[union-attr]
    event = second.get_nowait()
    assert event is not None and event.value == 5
    tracker = offsets[("n", 0)]
    assert tracker.in_flight == 2
    event.ack()
    assert tracker.committable() is None  # "a" has not acked offset 0 yet
    assert stats["received"] == 2 and producer.sent == []


async def test_what_cannot_be_decoded_is_dead_lettered_and_counts_as_done() -> None:
    producer = RecordingProducer()
    dispatch, subscriptions, offsets, stats = setup(producer)
    subscriptions.subscribe(IntTopic("n"), owner="a")
    await dispatch([message(0, 0, b"seven"), message(0, 1, None)])
    assert [sent[0] for sent in producer.sent] == ["dead", "dead"]
    headers = dict(producer.sent[0][3])
    assert headers["shoal-error"] == b"not an int: b'seven'"
    assert headers["shoal-source-offset"] == b"0" and headers["h"] == b"1"
    assert dict(producer.sent[1][3])["shoal-error"] == b"message has no value"
    assert offsets[("n", 0)].committable() == 2  # nothing holds the partition back
    assert stats["dead_lettered"] == 2


async def test_a_dead_letter_too_large_for_the_producer_is_sent_cut_short() -> None:
    producer = RecordingProducer(limit=100_000)
    dispatch, subscriptions, _offsets, stats = setup(producer)
    subscriptions.subscribe(IntTopic("n"), owner="a")
    await dispatch([message(0, 0, b"x" * 200_000)])
    ((topic, key, value, headers),) = producer.sent
    assert topic == "dead" and key == b"k" and value == b"x" * DLQ_KEEP_BYTES
    assert dict(headers)["shoal-original-size"] == b"value=200000"
    assert stats["dead_letters_truncated"] == 1


async def test_messages_of_a_partition_no_longer_owned_are_skipped() -> None:
    producer = RecordingProducer()
    dispatch, subscriptions, _offsets, stats = setup(producer)
    inbox = subscriptions.subscribe(IntTopic("n"), owner="a")
    await dispatch([message(3, 0, b"1")])  # partition 3 was never assigned here
    assert inbox.size == 0 and stats["not_owned"] == 1


async def test_a_full_inbox_holds_the_hand_over() -> None:
    producer = RecordingProducer()
    stats: Counter[str] = Counter()
    subscriptions = Subscriptions(maxsize=1)
    offsets = {("n", 0): PartitionOffsets("n", 0)}
    letters = DeadLetters("dead", lambda: producer, stats)  # type: ignore[arg-type, return-value]
    dispatch = Dispatch(subscriptions, offsets, letters, stats, lambda n: None)
    inbox = subscriptions.subscribe(IntTopic("n"), owner="a")
    handing = asyncio.ensure_future(dispatch([message(0, 0, b"1"), message(0, 1, b"2")]))
    await wait_until(lambda: inbox._space is not None, 5, "the hand-over to wait")
    assert not handing.done()  # back-pressure: the consumer thread would wait here
    inbox.get_nowait()
    inbox.get_nowait()
    await asyncio.wait_for(handing, 1)


async def test_a_bad_message_in_a_run_is_dead_lettered_and_the_rest_keep_their_order() -> None:
    producer = RecordingProducer()
    dispatch, subscriptions, offsets, stats = setup(producer)
    inbox = subscriptions.subscribe(IntTopic("n"), owner="a")
    values = [b"0", b"1", b"two", b"3", b"4"]
    await dispatch([message(0, offset, value) for offset, value in enumerate(values)])
    events = [inbox.get_nowait() for _ in range(4)]
    assert [e.offset for e in events if e] == [0, 1, 3, 4] and inbox.get_nowait() is None
    assert [dict(sent[3])["shoal-source-offset"] for sent in producer.sent] == [b"2"]
    tracker = offsets[("n", 0)]
    for event in events[:2]:
        assert event is not None and event.ack()
    assert tracker.committable() == 3  # the dead letter is done, the events after are not
    for event in events[2:]:
        assert event is not None and event.ack()
    assert tracker.committable() == 5 and stats["received"] == 5


async def test_interleaved_runs_of_partitions_reach_their_own_offsets_and_lanes() -> None:
    producer = RecordingProducer()
    dispatch, subscriptions, offsets, _stats = setup(producer)
    offsets[("n", 1)] = PartitionOffsets("n", 1)
    inbox = subscriptions.subscribe(IntTopic("n"), owner="a", lanes=2)
    batch = [message(0, 10, b"1"), message(0, 11, b"2"), message(1, 10, b"3"), message(0, 12, b"4")]
    await dispatch(batch)
    lane0 = [inbox.get_nowait(0) for _ in range(3)]
    lane1 = inbox.get_nowait(1)
    assert [(e.partition, e.offset, e.value) for e in lane0 if e] == [
        (0, 10, 1),
        (0, 11, 2),
        (0, 12, 4),
    ]
    assert lane1 is not None and (lane1.partition, lane1.offset) == (1, 10)
    assert offsets[("n", 0)].in_flight == 3 and offsets[("n", 1)].in_flight == 1
    lane1.ack()
    assert offsets[("n", 1)].committable() == 11 and offsets[("n", 0)].committable() is None

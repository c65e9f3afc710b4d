"""Fetched messages to the subscribers' inboxes, and what cannot be handled to dead letters.

For each fetched batch every message is decoded once per subscribed topic, its Events pushed
to the subscribers' inboxes, and the partition's offsets told how many subscribers it went to.
A message that cannot be decoded (or has no value) goes to the dead-letter topic with the error
in its headers, is logged with its topic, partition and offset, and counts as done: it is never
skipped silently, and never blocks the partition. A full inbox makes the hand-over wait, which
holds the consumer thread: that is the back-pressure.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from itertools import groupby
from operator import attrgetter

from shoal import metrics
from shoal.exceptions import DecodeError
from shoal.kafka.consumer import Batch
from shoal.kafka.producer import MessageTooLarge, Producer
from shoal.model.events import Message
from shoal.runtime.inbox import Inbox
from shoal.runtime.offsets import PartitionOffsets
from shoal.runtime.subscriptions import Subscriptions, TopicLike
from shoal.types import TP, Headers

log = logging.getLogger(__name__)

DLQ_ERROR = "shoal-error"
DLQ_ERROR_TYPE = "shoal-error-type"
DLQ_TOPIC = "shoal-source-topic"
DLQ_PARTITION = "shoal-source-partition"
DLQ_OFFSET = "shoal-source-offset"
#: A dead letter too large for the producer keeps this much of its key and value, and names
#: what was cut and the original sizes in these headers.
DLQ_KEEP_BYTES = 64 * 1024
DLQ_TRUNCATED = "shoal-truncated"
DLQ_ORIGINAL_SIZE = "shoal-original-size"


class DeadLetters:
    """Copies what could not be handled to the dead-letter topic, and says so."""

    def __init__(
        self, topic: str | Callable[[], str], producer: Callable[[], Producer], stats: Counter[str]
    ) -> None:
        # A callable is asked at each use (the setting may change before the app starts).
        self._topic = topic if callable(topic) else lambda: topic
        self._producer = producer
        self._stats = stats  # the conductor's: tests and status read dead_lettered there

    @property
    def topic(self) -> str:
        return self._topic()

    def send(self, message: Message, exc: BaseException) -> None:
        """Send ``message`` with ``exc`` in its headers.

        A message too large to copy as it is (the broker took it from a producer allowed
        more than ours) is copied cut short, with what was cut and the original sizes in
        its headers: it never stops the partition.
        """
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        log.error("cannot process %s: %s; sent to dead-letter topic %s", where, exc, self.topic)
        self._stats["dead_lettered"] += 1
        metrics.record.dead_lettered(message.topic, type(exc).__name__)
        trailer = [
            (DLQ_ERROR, str(exc).encode()),
            (DLQ_ERROR_TYPE, type(exc).__name__.encode()),
            (DLQ_TOPIC, message.topic.encode()),
            (DLQ_PARTITION, str(message.partition).encode()),
            (DLQ_OFFSET, str(message.offset).encode()),
        ]
        producer = self._producer()
        try:
            producer.send_soon(
                self.topic, message.key, message.value, headers=[*(message.headers or ()), *trailer]
            )
        except MessageTooLarge:
            key, value, headers, cut = _cut_short(message)
            log.warning(
                "%s is too large to dead-letter as it is: sent its first %d bytes of %s "
                "instead (header %s says what was cut)",
                where,
                DLQ_KEEP_BYTES,
                " and ".join(cut),
                DLQ_TRUNCATED,
            )
            self._stats["dead_letters_truncated"] += 1
            metrics.record.dead_letter_truncated(message.topic)
            producer.send_soon(self.topic, key, value, headers=[*headers, *trailer])


def _cut_short(message: Message) -> tuple[bytes | None, bytes | None, Headers, list[str]]:
    """Key, value and headers of ``message`` cut to fit a dead letter, the headers saying
    what was cut and how large it was, and the names of what was cut."""
    keep = DLQ_KEEP_BYTES
    key, value, headers = message.key, message.value, list(message.headers or ())
    cut: list[str] = []
    sizes: list[str] = []
    if value is not None and len(value) > keep:
        cut.append("value")
        sizes.append(f"value={len(value)}")
        value = value[:keep]
    if key is not None and len(key) > keep:
        cut.append("key")
        sizes.append(f"key={len(key)}")
        key = key[:keep]
    header_bytes = sum(len(k) + len(v or b"") for k, v in headers)
    if header_bytes > keep:
        cut.append("headers")
        sizes.append(f"headers={header_bytes}")
        headers = []
    marks = [(DLQ_TRUNCATED, ",".join(cut).encode()), (DLQ_ORIGINAL_SIZE, " ".join(sizes).encode())]
    return key, value, [*headers, *marks], cut


class Dispatch:
    """Hands fetched batches to the subscribers; see the module docstring."""

    def __init__(
        self,
        subscriptions: Subscriptions,
        offsets: dict[TP, PartitionOffsets],
        dead_letters: DeadLetters,
        stats: Counter[str],
        received: Callable[[int], None],
    ) -> None:
        self._subscriptions = subscriptions
        self._offsets = offsets
        self._dead_letters = dead_letters
        self._stats = stats
        self._received = received  # counts toward an early commit

    async def __call__(self, batch: Batch) -> None:
        by_topic = self._subscriptions.by_topic
        offsets = self._offsets
        received: Counter[str] = Counter()
        # librdkafka hands out runs of one partition: each run is handed over at once.
        for (topic, partition), messages in groupby(batch, _partition_of):
            run = list(messages)
            received[topic] += len(run)
            tracker = offsets.get((topic, partition))
            if tracker is None:
                # Fetched just before its partition was revoked: the new owner reads it
                # from the committed offset, so it is not ours to process or commit.
                self._stats["not_owned"] += len(run)
                continue
            subs = by_topic.get(topic, [])
            if len(subs) != 1 or not self._hand_over(run, tracker, *subs[0]):
                self._each(run, tracker, subs)
        self._stats["received"] += len(batch)
        self._received(len(batch))
        record = metrics.record
        for topic, n in received.items():
            for _topic, inbox in by_topic.get(topic, []):
                record.events_received(inbox.owner, topic, n)
        for inbox in self._subscriptions.inboxes():
            if inbox.full:
                await inbox.wait_for_space()

    @staticmethod
    def _hand_over(
        run: list[Message], tracker: PartitionOffsets, topic: TopicLike, inbox: Inbox
    ) -> bool:
        """A run of messages to its one subscriber; False, and nothing handed over, if one of
        them cannot be decoded (:meth:`_each` then takes them one by one)."""
        to_event = topic.to_event
        try:
            events = [to_event(message, tracker) for message in run]
        except DecodeError:
            return False
        inbox.push_run(events, run[0].partition)
        tracker.delivered_each([message.offset for message in run])
        return True

    def _each(
        self,
        run: list[Message],
        tracker: PartitionOffsets,
        subs: list[tuple[TopicLike, Inbox]],
    ) -> None:
        """A run of messages, one by one, to each subscriber; what cannot be decoded goes to
        the dead letters."""
        dead_letter = self._dead_letters.send
        for message in run:
            delivered = 0
            for topic, inbox in subs:
                try:
                    event = topic.to_event(message, tracker)
                except DecodeError as exc:
                    dead_letter(message, exc)
                    break
                inbox.push(event)
                delivered += 1
            tracker.delivered(message.offset, delivered)


_partition_of = attrgetter("topic", "partition")

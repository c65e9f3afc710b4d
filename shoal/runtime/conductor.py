"""The running side of a worker: feeding fetched messages to inboxes, offsets, commits.

For each fetched batch the conductor decodes every message once per subscribed Topic, pushes
the Events to the subscribers' inboxes and records how many subscribers each offset has. A
message that cannot be decoded goes to the dead-letter topic with the error in its headers,
is logged with its topic, partition and offset, and counts as done: it is never skipped
silently, and never blocks the partition.

The commit loop takes the done offsets, waits for the producer barrier (every output produced
before those events were done is acknowledged by the broker), then commits: at-least-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from confluent_kafka import TopicPartition

from shoal import metrics
from shoal.exceptions import DecodeError, ShoalError
from shoal.kafka.consumer import Batch, ConsumerThread, format_tps
from shoal.kafka.producer import DeliveryError, DeliveryTimeout, MessageTooLarge
from shoal.model.events import Message
from shoal.runtime.inbox import Inbox
from shoal.runtime.offsets import PartitionOffsets
from shoal.types import TP

if TYPE_CHECKING:
    from shoal.app import App
    from shoal.processing.topics import Topic

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
#: The shortest pause between two commits: they go this often when they are cheap (see
#: Conductor._next_commit_in), and never less often than ``broker_commit_interval``.
MIN_COMMIT_INTERVAL = 0.2
#: A commit may take this share of the time between two commits.
COMMIT_COST_SHARE = 0.1


Committer = Callable[[dict[TP, int]], Awaitable[bool]]


class Conductor:
    """Owns the consumer thread, the partition offsets and the commit loop of one worker.

    Two ways to own partitions: as a consumer-group member (``clusterctl worker``, an app
    started in a script), or assigned by a supervisor (``assigned=True``): then the
    supervisor is the group member, says which partitions to fetch (:meth:`assign`,
    :meth:`release`) and commits the offsets this worker hands to ``committer``.
    """

    def __init__(
        self, app: App, *, assigned: bool = False, committer: Committer | None = None
    ) -> None:
        self.app = app
        self.assigned = assigned
        self._committer = committer
        self.offsets: dict[TP, PartitionOffsets] = {}
        self.stats: Counter[str] = Counter()
        self._consumer: ConsumerThread | None = None
        self._commit_task: asyncio.Task[None] | None = None
        self._commit_soon = asyncio.Event()
        self._since_commit = 0
        self._stopping = False
        self._last_commit_ok = False
        self._last_commit_cost = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = self.app
        self._consumer = ConsumerThread(
            app.consumer_config(),
            on_batch=self._on_batch,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
            on_error=self._on_consumer_error,
            batch_size=app.conf.consumer_max_batch,
        )
        self._consumer.start(app.subscribed_topics(), assigned=self.assigned)
        self._commit_task = asyncio.get_running_loop().create_task(
            self._commit_forever(), name="shoal commit loop"
        )

    def resubscribe(self) -> None:
        if self._consumer is not None:
            self._consumer.subscribe(self.app.subscribed_topics())

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop fetching and commit what is done: a group member's close revokes its
        partitions (which commits them); an assigned worker releases them to its supervisor."""
        if self.assigned and self.offsets:
            final = await self.release(list(self.offsets), drain_timeout)
            if final and self._committer is not None:
                await self._committer(final)
        self._stopping = True
        for inbox in self.app.inboxes():
            inbox.maxsize = 1 << 62  # let a fetch blocked on back-pressure through
            inbox.drop_revoked()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._commit_task is not None:
            self._commit_task.cancel()
            await asyncio.gather(self._commit_task, return_exceptions=True)

    @property
    def fetching(self) -> bool:
        """True while the consumer thread runs (a dead one is a dead worker)."""
        return self._consumer is not None and self._consumer.alive

    # -- fetched messages --------------------------------------------------------------------

    async def _on_batch(self, batch: Batch) -> None:
        subscribers = self.app.subscribers
        offsets = self.offsets
        # librdkafka hands out runs of one partition: look its state up once per run.
        last_tp: TP | None = None
        tracker: PartitionOffsets | None = None
        subs: list[tuple[Topic, Inbox]] = []
        for message in batch:
            tp = (message.topic, message.partition)
            if tp != last_tp:
                last_tp = tp
                tracker = offsets.get(tp)
                subs = subscribers.get(message.topic, [])
            if tracker is None:
                # Fetched just before its partition was revoked: the new owner reads it
                # from the committed offset, so it is not ours to process or commit.
                self.stats["not_owned"] += 1
                continue
            if message.value is None:
                self.dead_letter(message, DecodeError("message has no value"))
                tracker.delivered(message.offset, 0)
                continue
            delivered = 0
            for topic, inbox in subs:
                try:
                    event = topic.to_event(message, tracker)
                except DecodeError as exc:
                    self.dead_letter(message, exc)
                    break
                inbox.push(event)
                delivered += 1
            tracker.delivered(message.offset, delivered)
        self.stats["received"] += len(batch)
        self._count_received(batch)
        self._since_commit += len(batch)
        if self._since_commit >= self.app.conf.broker_commit_every:
            self._commit_soon.set()
        for inbox in self.app.inboxes():
            if inbox.full:
                await inbox.wait_for_space()

    def _count_received(self, batch: Batch) -> None:
        per_topic: Counter[str] = Counter(message.topic for message in batch)
        record = metrics.record
        for topic, n in per_topic.items():
            for _topic, inbox in self.app.subscribers.get(topic, []):
                record.events_received(inbox.owner, topic, n)

    def dead_letter(self, message: Message, exc: BaseException) -> None:
        """Send a message that could not be handled to the dead-letter topic, and say so.

        A message too large to copy as it is (the broker took it from a producer allowed
        more than ours) is copied cut short, with what was cut and the original sizes in
        its headers: it never stops the partition.
        """
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        log.error("cannot process %s: %s; sent to dead-letter topic %s", where, exc, self.dlq)
        self.stats["dead_lettered"] += 1
        metrics.record.dead_lettered(message.topic, type(exc).__name__)
        trailer = [
            (DLQ_ERROR, str(exc).encode()),
            (DLQ_ERROR_TYPE, type(exc).__name__.encode()),
            (DLQ_TOPIC, message.topic.encode()),
            (DLQ_PARTITION, str(message.partition).encode()),
            (DLQ_OFFSET, str(message.offset).encode()),
        ]
        producer = self.app.producer_for_send()
        try:
            producer.send_soon(
                self.dlq, message.key, message.value, headers=[*(message.headers or ()), *trailer]
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
            self.stats["dead_letters_truncated"] += 1
            metrics.record.dead_letter_truncated(message.topic)
            producer.send_soon(self.dlq, key, value, headers=[*headers, *trailer])

    @property
    def dlq(self) -> str:
        return self.app.conf.dead_letter_topic_name

    def _on_consumer_error(self, text: str) -> None:
        log.error("%s", text)
        self.stats["consumer_errors"] += 1
        consumer = self._consumer
        if consumer is not None and consumer.failure is not None and not self._stopping:
            self.app.crash(ShoalError(text))

    # -- group callbacks ---------------------------------------------------------------------

    async def _on_assign(self, tps: list[TP]) -> None:
        for tp in tps:
            self.offsets[tp] = PartitionOffsets(*tp)

    async def _on_revoke(self, tps: list[TP]) -> dict[TP, int]:
        """Stop the revoked partitions' events and return their final offsets to commit."""
        return await self._finish([t for tp in tps if (t := self.offsets.pop(tp, None))])

    async def _on_lost(self, tps: list[TP]) -> None:
        """Partitions the group gave away while this member was out of touch: stop their
        events at once; nothing is committed (their new owner may have moved on)."""
        await self._finish([t for tp in tps if (t := self.offsets.pop(tp, None))], commit=False)

    async def _finish(
        self, trackers: list[PartitionOffsets], *, commit: bool = True
    ) -> dict[TP, int]:
        """Mark partitions no longer ours and, with ``commit``, return their final offsets
        once the outputs before them are stored ({} when the broker does not confirm them in
        time: the next owner then repeats the events after the last commit)."""
        final: dict[TP, int] = {}
        for tracker in trackers:
            tracker.revoked = True
            offset = tracker.committable()
            if offset is not None:
                final[(tracker.topic, tracker.partition)] = offset
        for inbox in self.app.inboxes():
            inbox.drop_revoked()
        if not final or not commit:
            return {}
        try:
            await self.app.barrier(self._barrier_timeout())
        except DeliveryTimeout as exc:
            log.warning("not committing the final offsets of %s: %s", format_tps(final), exc)
            return {}
        except DeliveryError as exc:
            # Outputs are lost: their events must be processed again, here as elsewhere.
            log.error("not committing the final offsets of %s: %s", format_tps(final), exc)
            self.app.crash(exc)
            return {}
        self.stats["commits"] += 1
        return final

    # -- commits -----------------------------------------------------------------------------

    async def _commit_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._commit_soon.wait(), self._next_commit_in())
            self._commit_soon.clear()
            try:
                await self.commit()
            except DeliveryTimeout as exc:
                # The broker is slow or away: nothing is lost, the outputs are still queued.
                # The next round waits for them again and commits once they are stored.
                log.warning("not committing yet: %s", exc)
            except ShoalError as exc:
                # Not committing keeps the events to process again: at-least-once holds. A
                # producer that lost messages cannot be trusted further: stop the worker.
                log.error("commit failed: %s", exc)
                self.app.crash(exc)
                return

    def _next_commit_in(self) -> float:
        """Seconds to the next commit: as often as every ``MIN_COMMIT_INTERVAL`` while a
        commit costs at most ``COMMIT_COST_SHARE`` of the pause, so a crash repeats little
        work; never longer than ``broker_commit_interval``."""
        interval = self.app.conf.broker_commit_interval
        return min(interval, max(MIN_COMMIT_INTERVAL, self._last_commit_cost / COMMIT_COST_SHARE))

    def _barrier_timeout(self) -> float:
        """How long a commit waits for the broker to acknowledge the outputs before it; a
        commit that gives up is made in a later round (nothing is lost)."""
        return max(10.0, 10 * self.app.conf.broker_commit_interval)

    async def commit(self) -> dict[TP, int]:
        """Commit every partition's done offset, after the outputs before it are stored."""
        self._since_commit = 0
        snapshot = {tp: t for tp, t in self.offsets.items() if t.committable() is not None}
        if not snapshot or self._consumer is None:
            return {}
        offsets: dict[TP, Any] = {tp: t.committable() for tp, t in snapshot.items()}
        started = time.perf_counter()
        try:
            return await self._commit(snapshot, offsets)
        finally:
            self._last_commit_cost = time.perf_counter() - started
            metrics.record.commit(self._last_commit_cost, ok=bool(self._last_commit_ok))

    async def _commit(
        self, snapshot: dict[TP, PartitionOffsets], offsets: dict[TP, Any]
    ) -> dict[TP, int]:
        self._last_commit_ok = False
        await self.app.barrier(self._barrier_timeout())
        offsets = {tp: o for tp, o in offsets.items() if not snapshot[tp].revoked}
        if not offsets:
            return {}
        if self._committer is not None:
            if not await self._committer(offsets):
                return {}  # not committed this time (a rebalance); the next round retries
        elif self._consumer is not None:
            await self._consumer.commit(offsets)
        for tp, offset in offsets.items():
            snapshot[tp].committed = offset
        self.stats["commits"] += 1
        self._last_commit_ok = True
        return offsets

    # -- assigned mode -----------------------------------------------------------------------

    async def assign(self, tps: Iterable[TP]) -> None:
        """Start processing ``tps`` from the group's committed offsets."""
        assert self._consumer is not None
        new = [tp for tp in tps if tp not in self.offsets]
        for tp in new:
            self.offsets[tp] = PartitionOffsets(*tp)
        await self._consumer.assign(new)

    async def release(
        self, tps: Iterable[TP], timeout: float, *, commit: bool = True
    ) -> dict[TP, int]:
        """Hand ``tps`` back: stop fetching them, let the events already fetched finish
        (up to ``timeout`` seconds), wait for their outputs, and return the final offsets.

        A clean handover: the next owner starts where this one stopped, nothing twice. With
        ``commit=False`` (the group lost them) the events are stopped at once instead.
        """
        assert self._consumer is not None
        # No longer ours from here on: an assignment of the same partitions that arrives
        # while this one drains starts afresh from the committed offsets.
        trackers = [t for tp in tps if (t := self.offsets.pop(tp, None))]
        # Once unassign returns, no batch with these partitions is on its way any more.
        await self._consumer.unassign([(t.topic, t.partition) for t in trackers])
        if commit:
            try:
                async with asyncio.timeout(timeout):
                    for tracker in trackers:
                        await tracker.wait_idle()
            except TimeoutError:
                busy = [f"{t.topic}[{t.partition}]" for t in trackers if t.in_flight]
                log.warning(
                    "events of %s still running after %.0f s; they will be processed again "
                    "by the next owner",
                    ", ".join(busy),
                    timeout,
                )
        return await self._finish(trackers, commit=commit)

    async def lag(self) -> tuple[int, dict[TP, int]]:
        """Messages behind the high watermarks of the partitions owned here, and those high
        watermarks (from the last fetch responses: no request to the broker)."""
        consumer = self._consumer
        if consumer is None or not self.offsets:
            return 0, {}
        trackers = list(self.offsets.values())

        def measure(kafka: Any) -> tuple[int, dict[TP, int]]:
            behind = 0
            highs: dict[TP, int] = {}
            parts = [TopicPartition(t.topic, t.partition) for t in trackers]
            positions = {(p.topic, p.partition): p.offset for p in kafka.position(parts)}
            for tracker in trackers:
                tp = (tracker.topic, tracker.partition)
                _low, high = kafka.get_watermark_offsets(TopicPartition(*tp), cached=True)
                done = tracker.done if tracker.done is not None else positions.get(tp, -1)
                if high >= 0:
                    highs[tp] = high
                    if done >= 0:
                        behind += max(0, high - done)
            return behind, highs

        result: tuple[int, dict[TP, int]] = await consumer.call(measure)
        return result


def _cut_short(
    message: Message,
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]], list[str]]:
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

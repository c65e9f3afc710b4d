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
from shoal.consumer import TP, Batch, ConsumerThread
from shoal.events import Message
from shoal.exceptions import DecodeError, ShoalError
from shoal.inbox import Inbox
from shoal.offsets import PartitionOffsets

if TYPE_CHECKING:
    from shoal.app import App
    from shoal.topics import Topic

log = logging.getLogger(__name__)

DLQ_ERROR = "shoal-error"
DLQ_ERROR_TYPE = "shoal-error-type"
DLQ_TOPIC = "shoal-source-topic"
DLQ_PARTITION = "shoal-source-partition"
DLQ_OFFSET = "shoal-source-offset"


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

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = self.app
        self._consumer = ConsumerThread(
            app.consumer_config(),
            on_batch=self._on_batch,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
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
        """Send a message that could not be handled to the dead-letter topic, and say so."""
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        log.error("cannot process %s: %s; sent to dead-letter topic %s", where, exc, self.dlq)
        self.stats["dead_lettered"] += 1
        metrics.record.dead_lettered(message.topic, type(exc).__name__)
        headers = list(message.headers or ())
        headers += [
            (DLQ_ERROR, str(exc).encode()),
            (DLQ_ERROR_TYPE, type(exc).__name__.encode()),
            (DLQ_TOPIC, message.topic.encode()),
            (DLQ_PARTITION, str(message.partition).encode()),
            (DLQ_OFFSET, str(message.offset).encode()),
        ]
        self.app.producer_for_send().send_soon(
            self.dlq, message.key, message.value, headers=headers
        )

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

    async def _on_assign(self, tps: list[TP]) -> dict[TP, int]:
        for tp in tps:
            self.offsets[tp] = PartitionOffsets(*tp)
        return {}

    async def _on_revoke(self, tps: list[TP]) -> dict[TP, int]:
        """Stop the revoked partitions' events and return their final offsets to commit."""
        final: dict[TP, int] = {}
        for tp in tps:
            tracker = self.offsets.pop(tp, None)
            if tracker is None:
                continue
            tracker.revoked = True
            offset = tracker.committable()
            if offset is not None:
                final[tp] = offset
        for inbox in self.app.inboxes():
            inbox.drop_revoked()
        if final:
            await self.app.barrier()
            self.stats["commits"] += 1
        return final

    # -- commits -----------------------------------------------------------------------------

    async def _commit_forever(self) -> None:
        interval = self.app.conf.broker_commit_interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._commit_soon.wait(), interval)
            self._commit_soon.clear()
            try:
                await self.commit()
            except ShoalError as exc:
                # Not committing keeps the events to process again: at-least-once holds. A
                # producer that lost messages cannot be trusted further: stop the worker.
                log.error("commit failed: %s", exc)
                self.app.crash(exc)
                return

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
            metrics.record.commit(time.perf_counter() - started, ok=bool(self._last_commit_ok))

    async def _commit(
        self, snapshot: dict[TP, PartitionOffsets], offsets: dict[TP, Any]
    ) -> dict[TP, int]:
        self._last_commit_ok = False
        await self.app.barrier()
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

    async def release(self, tps: Iterable[TP], timeout: float) -> dict[TP, int]:
        """Hand ``tps`` back: stop fetching them, let the events already fetched finish
        (up to ``timeout`` seconds), wait for their outputs, and return the final offsets.

        A clean handover: the next owner starts where this one stopped, nothing twice.
        """
        assert self._consumer is not None
        owned = [tp for tp in tps if tp in self.offsets]
        # Once unassign returns, no batch with these partitions is on its way any more.
        await self._consumer.unassign(owned)
        trackers = [self.offsets[tp] for tp in owned]
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
        return await self._on_revoke(owned)

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

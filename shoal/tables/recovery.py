"""Reading changelogs into stores: recovery to the end, and following (global tables).

Recovery runs on its own consumer, in a thread, while the partition is not processed: it
assigns each changelog partition at the offset after the one its store reflects, applies
records in batches straight into the store, and ends once every partition has reached the
high watermark read when it began. A store that claims an offset past the changelog's end
(the topic was deleted and made again: faust-streaming #158) is emptied and rebuilt, with a
warning. Progress (records done, left, rate) is logged every few seconds and kept in
:attr:`Recovery.progress` for metrics; a broker that does not answer is reported, never a
silent stall.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import confluent_kafka
from confluent_kafka import TopicPartition

from shoal.exceptions import BrokerError
from shoal.tables.stores import Changes, PartitionStore

log = logging.getLogger(__name__)

#: Seconds between two progress lines of a long recovery.
PROGRESS_EVERY = 5.0
#: Records taken from the client per call.
BATCH = 10_000


@dataclass
class Job:
    """One changelog partition to bring a store up to date with."""

    table: str
    topic: str
    partition: int
    store: PartitionStore
    #: Filled in by the reader: where it started and the end it must reach.
    start: int = 0
    end: int = 0
    done: int = 0
    reset: Callable[[], PartitionStore] | None = field(default=None, repr=False)

    @property
    def left(self) -> int:
        return max(0, self.end - self.start - self.done)


@dataclass
class Progress:
    """Records done and left over every job of one recovery, and the rate."""

    done: int = 0
    left: int = 0
    rate: float = 0.0
    started: float = field(default_factory=time.monotonic)


#: Errors a just-made or just-moved partition gives for a moment: asked again, not fatal.
_PASSING = frozenset(
    {
        confluent_kafka.KafkaError.NOT_LEADER_FOR_PARTITION,
        confluent_kafka.KafkaError.LEADER_NOT_AVAILABLE,
        confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,
        confluent_kafka.KafkaError._UNKNOWN_PARTITION,
        confluent_kafka.KafkaError._TIMED_OUT,
        confluent_kafka.KafkaError._TRANSPORT,
    }
)
#: The longest one ask for a partition's watermarks may block (a stop is not held up longer).
_ASK_FOR = 1.0
#: The pause before asking again after a passing error (a stop ends it at once).
_AGAIN_AFTER = 0.1


def _watermarks(
    kafka: Any,
    topic: str,
    partition: int,
    timeout: float,
    stop: threading.Event | None = None,
) -> tuple[int, int]:
    """The partition's low and high watermarks, asking again for up to ``timeout`` seconds
    while the broker says its leader is moving or not known yet (a changelog just made, a
    broker under load). ``stop`` ends the asking early (BrokerError)."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            low, high = kafka.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=max(0.05, min(_ASK_FOR, left))
            )
            return int(low), int(high)
        except confluent_kafka.KafkaException as exc:
            error = exc.args[0]
            if error.code() not in _PASSING or time.monotonic() >= deadline or stop.is_set():
                raise BrokerError(
                    f"cannot read the end of changelog {topic}[{partition}] (asked for "
                    f"{timeout - max(0.0, deadline - time.monotonic()):.1f} s): {error.str()}"
                ) from exc
        if stop.wait(_AGAIN_AFTER):  # a backoff between asks that a stop ends at once
            raise BrokerError(f"stopped reading the end of changelog {topic}[{partition}]")


#: Changelog records of one fetch, per partition: the changes in order, and the last offset.
Grouped = dict[tuple[str, int], tuple[Changes, int]]


def by_partition(messages: list[Any], label: str) -> Grouped:
    """Group fetched changelog records by partition (a record in error is logged, skipped)."""
    grouped: Grouped = {}
    for msg in messages:
        if msg.error() is not None:
            log.warning("reading the changelogs of %s: %s", label, msg.error())
            continue
        tp: tuple[str, int] = (msg.topic(), msg.partition())
        entry = grouped.get(tp)
        changes: Changes = [] if entry is None else entry[0]
        changes.append((msg.key(), msg.value()))
        grouped[tp] = (changes, msg.offset())
    return grouped


def changelog_ends(
    config: dict[str, Any], tps: list[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The high watermark of each changelog partition (blocking: call it in a thread). A
    broker that does not answer within 5 s ends it: the partitions not read are left out."""
    kafka = confluent_kafka.Consumer({**config, "enable.auto.commit": False})
    ends: dict[tuple[str, int], int] = {}
    try:
        for t, p in tps:
            ends[(t, p)] = _watermarks(kafka, t, p, 5.0)[1]
    except BrokerError as exc:
        log.warning("reading the end of the changelogs stopped: %s", exc)
    finally:
        kafka.close()
    return ends


class Recovery:
    """One recovery: :meth:`run` (blocking, in a thread) brings every job's store to the end
    of its changelog partition; :meth:`cancel` stops it early (the partition moved on)."""

    def __init__(self, config: dict[str, Any], jobs: list[Job], label: str) -> None:
        self._config = {**config, "enable.auto.commit": False, "enable.partition.eof": False}
        self.jobs = jobs
        self.label = label
        self.progress = Progress()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def run(self) -> Progress:
        kafka = confluent_kafka.Consumer(self._config)
        try:
            todo = self._plan(kafka)
            if todo:
                self._read(kafka, todo)
        finally:
            kafka.close()
        return self.progress

    def _plan(self, kafka: Any) -> dict[tuple[str, int], Job]:
        todo: dict[tuple[str, int], Job] = {}
        for job in self.jobs:
            try:
                low, high = _watermarks(kafka, job.topic, job.partition, 30.0, self._cancelled)
            except BrokerError:
                if self.cancelled:  # the partition moved on meanwhile: nothing to recover
                    return {}
                raise
            stored = job.store.offset
            if stored is not None and stored + 1 > high:
                log.warning(
                    "table %s partition %d: its store reflects changelog offset %d, past the "
                    "end of %s[%d] (%d): the topic was made again; rebuilding the store from "
                    "the changelog",
                    job.table,
                    job.partition,
                    stored,
                    job.topic,
                    job.partition,
                    high,
                )
                if job.reset is not None:
                    job.store = job.reset()
                stored = None
            start = max(low, 0 if stored is None else stored + 1)
            if start >= high:
                continue
            job.start, job.end = start, high
            todo[(job.topic, job.partition)] = job
        self.progress.left = sum(job.left for job in todo.values())
        if todo:
            kafka.assign([TopicPartition(t, p, job.start) for (t, p), job in todo.items()])
        return todo

    def _read(self, kafka: Any, todo: dict[tuple[str, int], Job]) -> None:
        progress = self.progress
        total = progress.left
        last_line = time.monotonic()
        last_record = time.monotonic()
        open_jobs = dict(todo)
        while open_jobs and not self._cancelled.is_set():
            messages = kafka.consume(BATCH, 0.5)
            now = time.monotonic()
            if not messages:
                if now - last_record > 30.0 and now - last_line > PROGRESS_EVERY:
                    log.warning(
                        "recovery of %s: no changelog records for %.0f s with %d left; is the "
                        "broker up?",
                        self.label,
                        now - last_record,
                        progress.left,
                    )
                    last_line = now
                continue
            last_record = now
            for tp, (changes, last) in by_partition(messages, self.label).items():
                job = open_jobs.get(tp)
                if job is None:
                    continue
                job.store.apply(changes, last)
                job.done = last + 1 - job.start
                if last + 1 >= job.end:
                    del open_jobs[tp]
            done = sum(j.done for j in todo.values())
            elapsed = max(now - progress.started, 1e-6)
            progress.done, progress.left, progress.rate = done, total - done, done / elapsed
            if now - last_line > PROGRESS_EVERY:
                last_line = now
                log.info(
                    "recovering %s: %d of %d changelog records (%.0f/s), about %.0f s left",
                    self.label,
                    done,
                    total,
                    progress.rate,
                    progress.left / max(progress.rate, 1.0),
                )

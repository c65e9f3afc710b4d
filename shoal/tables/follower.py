"""Following changelogs as others write them: global tables, and standby replicas.

A consumer thread reads the changelog partitions after the offset each store reflects and
hands each batch to the event loop, which applies it (so a store is only ever touched by one
thread once the process runs). :meth:`Follower.update` changes what is followed: a
partition dropped on the loop gets no batch applied from then on, whatever the thread has
fetched already.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import confluent_kafka
from confluent_kafka import TopicPartition

from shoal.tables.recovery import Grouped, Job, by_partition

log = logging.getLogger(__name__)


class Follower:
    """Reads the changelog partitions of ``jobs`` from their stores' offsets, for good."""

    def __init__(self, config: dict[str, Any], jobs: list[Job]) -> None:
        self._config = {**config, "enable.auto.commit": False}
        self._jobs = {(job.topic, job.partition): job for job in jobs}
        self._changed = threading.Event()
        self._changed.set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failure: BaseException | None = None

    def update(self, jobs: list[Job]) -> None:
        """Follow ``jobs`` from now on (on the loop: takes effect for batches at once)."""
        self._jobs = {(job.topic, job.partition): job for job in jobs}
        self._changed.set()

    @property
    def following(self) -> list[Job]:
        return list(self._jobs.values())

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="shoal-table-follower", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        kafka = confluent_kafka.Consumer(self._config)
        try:
            while not self._stopping.is_set():
                if self._changed.is_set():
                    self._changed.clear()
                    kafka.assign(
                        [
                            TopicPartition(t, p, _next(job))
                            for (t, p), job in list(self._jobs.items())
                        ]
                    )
                grouped = by_partition(kafka.consume(1000, 0.2), "a follower")
                if grouped and self._loop is not None:
                    self._loop.call_soon_threadsafe(self._apply, grouped)
        except BaseException as exc:
            self.failure = exc
            log.exception("the table follower failed")
        finally:
            kafka.close()

    def _apply(self, grouped: Grouped) -> None:
        for tp, (changes, last) in grouped.items():
            job = self._jobs.get(tp)
            if job is not None and (job.store.offset is None or last > job.store.offset):
                job.store.apply(changes, last)

    async def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10.0)


def _next(job: Job) -> int:
    """Where to read a job's changelog partition from: after what its store reflects."""
    offset = job.store.offset
    return offset + 1 if offset is not None else 0

"""Measuring a system from outside: its output topic watched as it grows (timed on arrival,
never from the messages' timestamps), and the CPU time of its processes."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import confluent_kafka
import psutil
from confluent_kafka import TopicPartition


class TreeCpu:
    """CPU seconds of a process tree, cheap enough to read at every poll: the processes are
    found at the first read (a system's processes are all up by its first output) and each
    one's last reading is kept after it ends."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._procs: list[psutil.Process] | None = None
        self._last: dict[int, float] = {}

    def __call__(self) -> float:
        if self._procs is None:
            try:
                root = psutil.Process(self.pid)
                self._procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                self._procs = []
        for p in self._procs:
            try:
                t = p.cpu_times()
                self._last[p.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return sum(self._last.values())


@dataclass
class Timing:
    """An output topic's growth, polled: (seconds, messages, CPU seconds or None) samples
    from the first output seen to the expected count ``n``. Rates are over the middle of
    the run, from the sample where 10% of the outputs are in to the one where 90% are:
    the start-up of a system (a second worker starting a little later, a first fetch) and
    the last stragglers are left out, for every system alike."""

    n: int
    samples: list[tuple[float, int, float | None]]
    LOW, HIGH = 0.1, 0.9

    def window(self) -> tuple[tuple[float, int, float | None], tuple[float, int, float | None]]:
        low = next(s for s in self.samples if s[1] >= self.LOW * self.n)
        high = next(s for s in self.samples if s[1] >= self.HIGH * self.n)
        if high[0] <= low[0]:  # one poll saw the whole middle: the whole run, then
            low, high = self.samples[0], self.samples[-1]
        if high[0] <= low[0]:
            raise SystemExit(f"{self.n:,} events went by between two polls: use more events")
        return low, high

    @property
    def first(self) -> float:
        return self.samples[0][0]

    @property
    def done(self) -> float:
        return self.samples[-1][0]

    @property
    def events(self) -> int:
        low, high = self.window()
        return high[1] - low[1]

    @property
    def rate(self) -> float:
        low, high = self.window()
        return (high[1] - low[1]) / (high[0] - low[0])

    @property
    def rate_first_to_last(self) -> float:
        first, last = self.samples[0], self.samples[-1]
        return (last[1] - first[1]) / (last[0] - first[0]) if last[0] > first[0] else 0.0

    @property
    def cpu_us(self) -> float | None:
        low, high = self.window()
        if low[2] is None or high[2] is None:
            return None
        return (high[2] - low[2]) / (high[1] - low[1]) * 1e6


class OutputWatch:
    """The end offsets of an output topic, read as they grow. Rates are timed on arrival
    here, never from the messages' timestamps (Quix Streams copies its inputs' timestamps to
    its outputs)."""

    POLL = 0.01  # pause between two reads of the end offsets (s), besides the reads themselves

    def __init__(self, broker: str, topic: str, partitions: int) -> None:
        self.topic = topic
        self.partitions = partitions
        self._broker = broker
        self._last = 0
        self._consumer = confluent_kafka.Consumer(
            {"bootstrap.servers": broker, "group.id": f"bench-sink-{uuid.uuid4().hex}"}
        )

    def ends(self) -> dict[int, int]:
        return {
            p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
            for p in range(self.partitions)
        }

    def count(self) -> int:
        """Messages in the topic now (the last count if the broker has no answer yet: a
        topic made a moment ago may not have its partition leaders everywhere)."""
        try:
            self._last = sum(self.ends().values())
        except confluent_kafka.KafkaException as exc:
            print(f"  (end offsets of {self.topic} not read this time: {exc})", flush=True)
        return self._last

    def wait(
        self,
        n: int,
        timeout: float,
        alive: Callable[[], bool] | None = None,
        cpu: Callable[[], float] | None = None,
    ) -> Timing:
        """Poll until the topic holds ``n`` messages. ``alive`` tells whether the system
        under test still runs, ``cpu`` its CPU seconds so far (read at every poll from the
        first output on)."""
        samples: list[tuple[float, int, float | None]] = []
        deadline = time.monotonic() + timeout
        while True:
            seen = self.count()
            now = time.perf_counter()
            if seen:
                samples.append((now, seen, cpu() if cpu is not None else None))
            if seen >= n:
                return Timing(n, samples)
            if alive is not None and not alive() and self.count() < n:
                raise SystemExit(f"the system under test exited with {seen:,} of {n:,} outputs")
            if time.monotonic() > deadline:
                raise SystemExit(f"{seen:,} of {n:,} outputs after {timeout:.0f} s")
            time.sleep(self.POLL)  # the poll interval, bounded by the deadline

    def close(self) -> None:
        self._consumer.close()


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process, by name: Python's thread names, else the
    OS's (librdkafka's broker threads summed as ``rdk:broker``). Read from /proc (Linux);
    ``{}`` elsewhere. Threads that ended are not counted."""
    names = {str(t.native_id): t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            name = names.get(tid)
            if name is None:
                with open(f"/proc/self/task/{tid}/comm") as f:
                    name = f.read().strip()
        except OSError:
            continue  # ended meanwhile
        name = "rdk:broker" if name.startswith("rdk:broker") else name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def per_event(after: dict[str, float], before: dict[str, float], events: int) -> str:
    """``thread=µs, ...``: each thread's CPU µs per event between two :func:`thread_cpu`."""
    spent = {n: (c - before.get(n, 0.0)) / events * 1e6 for n, c in after.items()}
    return ", ".join(
        f"{n} {us:.1f}" for n, us in sorted(spent.items(), key=lambda x: -x[1]) if us >= 0.05
    )

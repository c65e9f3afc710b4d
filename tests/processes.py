"""Running clusterctl in subprocesses for tests, and reading what the numbers app wrote."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path

from confluent_kafka import Consumer, Producer

from tests.helpers import wait_until_sync

ROOT = Path(__file__).resolve().parents[1]
STARTED = re.compile(r"started worker (\d+) \(pid (\d+)\)")


def numbers_env(bootstrap: str, unique: str, partitions: int = 4) -> dict[str, str]:
    """Environment for tests/apps/numbers_app.py with the test's own topics and app id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(
        SHOAL_BROKER=f"kafka://{bootstrap}",
        NUMBERS_APP_ID=unique,
        NUMBERS_IN=f"{unique}-in",
        NUMBERS_OUT=f"{unique}-out",
        NUMBERS_PARTITIONS=str(partitions),
        PYTHONPATH=str(ROOT),
        SHOAL_WEB_PORT="0",  # parallel tests: each supervisor picks a free port
    )
    return env


class Clusterctl:
    """``clusterctl -A APP ARGS...`` as a subprocess whose output lines a thread collects."""

    def __init__(self, app: str, *args: str, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shoal.cluster.cli", "-A", app, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a signal for the test's group must not reach it
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def worker_pids(self) -> dict[int, int]:
        """The current pid of each worker slot, from the "started worker" lines."""
        pids: dict[int, int] = {}
        for line in list(self.lines):
            match = STARTED.search(line)
            if match:
                pids[int(match[1])] = int(match[2])
        return pids

    def web_url(self, timeout: float = 60.0) -> str:
        """The host's web endpoint (``http://127.0.0.1:PORT``), from its log."""
        self.wait_for("web endpoint on", timeout)
        return next(
            m.group(1)
            for line in self.lines
            if (m := re.search(r"web endpoint on (http://\S+?): /metrics", line))
        )

    def log(self, last: int = 40) -> str:
        return "".join(self.lines[-last:])

    def wait_for(self, text: str, timeout: float = 60.0, count: int = 1) -> None:
        """Wait until ``text`` appeared in ``count`` log lines (or the process ended)."""
        try:
            wait_until_sync(
                lambda: (
                    sum(text in line for line in self.lines) >= count
                    or self.proc.poll() is not None
                ),
                timeout,
                f"{text!r} in the log",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the log ends with:\n{self.log(80)}") from None
        assert sum(text in line for line in self.lines) >= count, self.log()

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def produce_numbers(bootstrap: str, topic: str, numbers: range) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in numbers:
        producer.produce(topic, key=str(i).encode(), value=str(i).encode())
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


class OutputReader:
    """Reads "value partition pid" lines from the numbers app's output topic."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.seen: Counter[int] = Counter()
        self.pids_by_partition: defaultdict[int, set[int]] = defaultdict(set)
        self.first_seen: dict[tuple[int, int], int] = {}
        self.arrivals: list[tuple[int, int, int]] = []  # (value, partition, pid) in order
        #: (time produced by the worker, value, partition, pid), in arrival order.
        self.stamped: list[tuple[float, int, int, int]] = []
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{topic}-reader",
                "auto.offset.reset": "earliest",
            }
        )
        self._consumer.subscribe([topic])

    def poll(self, timeout: float = 0.2) -> int:
        for msg in self._consumer.consume(1000, timeout):
            if msg.error() is not None:
                continue
            value, partition, pid = (int(x) for x in msg.value().split())
            self.seen[value] += 1
            self.pids_by_partition[partition].add(pid)
            self.arrivals.append((value, partition, pid))
            _kind, stamp = msg.timestamp()
            self.stamped.append((stamp / 1000.0, value, partition, pid))
        return len(self.seen)

    def wait_assigned(self, timeout: float = 60.0) -> None:
        """Poll until the reader's group gave it the topic's partitions (joining takes a few
        seconds): outputs are read as they come from then on."""
        wait_until_sync(
            lambda: self.poll(0.1) is not None and self._consumer.assignment(),
            timeout,
            "the output reader to be assigned",
        )

    def partitions_of(self, pid: int) -> set[int]:
        """The partitions ``pid`` wrote output for."""
        return {p for p, pids in self.pids_by_partition.items() if pid in pids}

    def resumed_at(self, partitions: set[int], after: float, not_pid: int) -> dict[int, float]:
        """For each of ``partitions``, when (wall clock, as stamped by the producing worker)
        it first had output after ``after`` from a process other than ``not_pid``."""
        first: dict[int, float] = {}
        for stamp, _value, partition, pid in self.stamped:
            if partition in partitions and pid != not_pid and stamp >= after:
                first[partition] = min(stamp, first.get(partition, stamp))
        return first

    def read_to_end(self, timeout: float) -> None:
        """Poll until every partition of the output topic was read up to its end as it is
        now (so late duplicates are counted too)."""
        assignment = self._consumer.assignment()
        assert assignment, "read_to_end before the reader was assigned its partitions"
        ends = {
            (tp.topic, tp.partition): self._consumer.get_watermark_offsets(tp, timeout=10)[1]
            for tp in assignment
        }

        def at_end() -> bool:
            self.poll(0.1)
            positions = self._consumer.position(assignment)
            return all(
                ends[(tp.topic, tp.partition)] <= 0 or tp.offset >= ends[(tp.topic, tp.partition)]
                for tp in positions
            )

        wait_until_sync(at_end, timeout, "the end of the output topic")

    def read_until(self, total: int, timeout: float) -> None:
        wait_until_sync(lambda: self.poll() >= total, timeout, f"{total} distinct outputs")

    def close(self) -> None:
        self._consumer.close()

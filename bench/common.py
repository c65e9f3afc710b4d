"""What the benchmarks share: topics made and removed, input pre-produced, and a process (or a
cluster, ``clusterctl up``) run as a subprocess whose output a thread collects."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
#: The supervisor's log line once the group gave it its partitions.
READY = "this host owns"
WORKER_PID = re.compile(r"started worker \d+ \(pid (\d+)\)")


def create_topics(broker: str, names: list[str], partitions: int) -> None:
    """Create topics and wait until every partition has a leader, so producing starts at once."""
    admin = AdminClient({"bootstrap.servers": broker})
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names],
        operation_timeout=30,
    )
    for future in futures.values():
        future.result(timeout=60)
    deadline = time.monotonic() + 30
    while True:
        meta = admin.list_topics(timeout=10)
        if all(
            n in meta.topics
            and meta.topics[n].error is None
            and len(meta.topics[n].partitions) == partitions
            and all(p.leader >= 0 for p in meta.topics[n].partitions.values())
            for n in names
        ):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"topics {names} not ready after 30 s")
        time.sleep(0.05)  # a poll interval, bounded by the deadline above


def delete_topics(
    broker: str, names: list[str] | None = None, *, prefix: str = "", containing: str = ""
) -> None:
    """Delete the named topics, or every topic starting with ``prefix`` and containing
    ``containing`` (Quix Streams names its internal topics ``changelog__GROUP--...``); missing
    ones are skipped, failures reported on stderr."""
    admin = AdminClient({"bootstrap.servers": broker})
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [
        n for n in (names or existing) if n in existing and n.startswith(prefix) and containing in n
    ]
    if not wanted:
        return
    for name, future in admin.delete_topics(wanted, operation_timeout=30).items():
        try:
            future.result(timeout=60)
        except Exception as exc:
            print(f"  could not delete topic {name}: {exc}", file=sys.stderr)


def preproduce(
    broker: str, topic: str, events: int, partitions: int, *, keyed: bool = False
) -> None:
    """``events`` JSON ``{"a": i, "b": i}`` values: keyed by str(i), or round-robin over the
    partitions so every partition gets the same work."""
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": broker, "linger.ms": 50, "batch.size": 1_000_000, "acks": "1"}
    )
    failed = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    step = max(1, events // 4)
    start = time.perf_counter()
    for i in range(events):
        value = b'{"a":%d,"b":%d}' % (i, i)
        while True:
            try:
                if keyed:
                    producer.produce(topic, value, str(i).encode(), on_delivery=on_delivery)
                else:
                    producer.produce(
                        topic, value, partition=i % partitions, on_delivery=on_delivery
                    )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        if (i + 1) % step == 0:
            print(f"  produced {i + 1:,}/{events:,}", flush=True)
    left = producer.flush(60)
    if left or failed:
        raise SystemExit(f"pre-produce failed: {failed} errors, {left} undelivered")
    took = time.perf_counter() - start
    print(f"  pre-produced {events:,} messages in {took:.2f} s ({events / took:,.0f}/s)")


class Proc:
    """A command in a session of its own; a thread collects its output lines."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.program = Path(argv[0]).name
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.on_line(line)
            self.lines.append(line)

    def on_line(self, line: str) -> None:
        """Called with each output line before it is kept."""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for_line(self, text: str, timeout: float) -> str:
        """The first output line containing ``text``, waited for (polled with a deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.proc.poll() is not None:
                self._reader.join(5)  # its last lines
                if any(text in line for line in self.lines):
                    continue
                raise SystemExit(f"{self.program} exited ({self.proc.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"no {text!r} after {timeout:.0f} s:\n{self.log()}")
            time.sleep(0.01)  # a poll interval, bounded by the deadline above

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then SIGKILL to the whole session after ``timeout``: the exit code (-9
        when it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = -9
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def log(self, last: int = 40) -> str:
        return "".join(self.lines[-last:])


class Cluster(Proc):
    """``clusterctl -A APP up --workers W`` in a session of its own."""

    def __init__(self, app: str, workers: int, env: dict[str, str]) -> None:
        self.ready_at = 0.0  # perf_counter() when READY was logged
        argv = [
            sys.executable,
            "-m",
            "shoal.cluster.cli",
            "-A",
            app,
            "up",
            "--workers",
            str(workers),
        ]
        super().__init__(argv, env)

    def on_line(self, line: str) -> None:
        if not self.ready_at and READY in line:
            self.ready_at = time.perf_counter()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready_at:
            if self.proc.poll() is not None:
                raise SystemExit(f"clusterctl exited ({self.proc.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"no {READY!r} after {timeout:.0f} s:\n{self.log()}")
            time.sleep(0.01)  # a poll interval, bounded by the deadline above

    def pids(self) -> list[int]:
        """The supervisor and every worker it started."""
        workers = [int(m.group(1)) for line in self.lines if (m := WORKER_PID.search(line))]
        return [self.proc.pid, *workers]

    def problems(self) -> list[str]:
        """WARNING and ERROR log lines, with the traceback lines that follow them."""
        found, inside = [], False
        for line in self.lines:
            if re.search(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback", line):
                inside = True
            elif line.startswith("["):  # the next log record
                inside = False
            if inside:
                found.append(line.rstrip())
        return found

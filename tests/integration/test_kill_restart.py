"""A worker SIGKILLed in the middle of a stream loses nothing: at-least-once across a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from tests.helpers import wait_until_sync

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """A ``clusterctl worker`` subprocess whose log lines are collected by a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shoal.cluster.cli", "-A", "tests.apps.numbers_app", "worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_assigned(self) -> None:
        wait_until_sync(
            lambda: any("assigned" in line for line in self.lines) or self.proc.poll() is not None,
            60,
            "the worker's partition assignment",
        )
        assert self.proc.poll() is None, "".join(self.lines[-30:])


class OutputReader:
    """Counts every value that reaches the output topic."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.seen: Counter[int] = Counter()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{topic}-reader",
                "auto.offset.reset": "earliest",
            }
        )
        self._consumer.subscribe([topic])

    def poll(self) -> int:
        for msg in self._consumer.consume(1000, 0.2):
            if msg.error() is None:
                self.seen[int(msg.value())] += 1
        return len(self.seen)

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def worker_env(kafka_bootstrap: str, unique: str) -> Iterator[Callable[[], dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(
        SHOAL_BROKER=f"kafka://{kafka_bootstrap}",
        NUMBERS_APP_ID=unique,
        NUMBERS_IN=f"{unique}-in",
        NUMBERS_OUT=f"{unique}-out",
        PYTHONPATH=str(ROOT),
    )
    yield lambda: dict(env)


def test_sigkill_mid_stream_then_restart_processes_every_event(
    kafka_bootstrap: str, worker_env: Callable[[], dict[str, str]], topic_factory: Any
) -> None:
    env = worker_env()
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    total = 6000

    def produce(numbers: range) -> None:
        for i in numbers:
            producer.produce(env["NUMBERS_IN"], key=str(i).encode(), value=str(i).encode())
        assert producer.flush(30) == 0

    first = Worker(env)
    first.wait_assigned()
    reader = OutputReader(kafka_bootstrap, env["NUMBERS_OUT"])
    try:
        produce(range(0, 3000))
        wait_until_sync(lambda: reader.poll() >= 1000, 60, "the first outputs")
        produce(range(3000, total))
        first.proc.send_signal(signal.SIGKILL)  # in the middle of the stream
        assert first.proc.wait(30) == -signal.SIGKILL
        killed_at = len(reader.seen)

        second = Worker(env)
        try:
            second.wait_assigned()
            wait_until_sync(lambda: reader.poll() == total, 90, "every event after the restart")
        finally:
            second.proc.send_signal(signal.SIGTERM)
            code = second.proc.wait(60)
        assert code == 0, "".join(second.lines[-30:])
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
        reader.close()
    assert set(reader.seen) == set(range(total))
    assert killed_at < total  # the kill did land mid-stream
    duplicates = sum(n - 1 for n in reader.seen.values())
    print(f"outputs seen when killed: {killed_at}; reprocessed after restart: {duplicates}")

"""Failover against the real broker: workers killed under load, a supervisor leaving mid-stream.

A worker is not a group member, so its death is a local event: the supervisor starts a
replacement on the same partitions from the last committed offsets (at-least-once: events
after that offset are processed again). A supervisor that stops gracefully drains its
workers and commits before the group moves its partitions: the next owner starts exactly
where it stopped, so nothing is processed twice.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest
from confluent_kafka import Producer

from tests.helpers import wait_until_sync
from tests.processes import Clusterctl, OutputReader, numbers_env, produce_numbers

pytestmark = pytest.mark.kafka

APP = "tests.apps.numbers_app"


class Feeder(threading.Thread):
    """Produces ``range(total)`` to ``topic`` at an even pace over ``seconds``."""

    def __init__(self, bootstrap: str, topic: str, total: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.total, self.seconds = bootstrap, topic, total, seconds
        self.produced = 0
        self.unflushed = -1
        self.abort = threading.Event()

    def run(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        rate = self.total / self.seconds
        start = time.monotonic()
        while self.produced < self.total and not self.abort.is_set():
            due = min(self.total, int((time.monotonic() - start) * rate) + 1)
            for i in range(self.produced, due):
                producer.produce(self.topic, key=str(i).encode(), value=str(i).encode())
            self.produced = due
            producer.poll(0.01)  # serves delivery reports; paces the loop
        self.unflushed = producer.flush(30)


def test_workers_killed_under_load_are_replaced_fast_and_lose_nothing(
    kafka_bootstrap: str, unique: str
) -> None:
    workers, partitions, total, kills = 2, 8, 30_000, 4
    env = numbers_env(kafka_bootstrap, unique, partitions=partitions)
    env["SHOAL_WEB_PORT"] = "0"  # any free port: other tests may run supervisors too
    supervisor = Clusterctl(APP, "up", "--workers", str(workers), env=env)
    reader = OutputReader(kafka_bootstrap, env["NUMBERS_OUT"])
    feeder = Feeder(kafka_bootstrap, env["NUMBERS_IN"], total, seconds=15)
    # (worker index, killed pid, seconds until its first / all partitions made progress)
    recoveries: list[tuple[int, int, float, float]] = []
    try:
        supervisor.wait_for(f"this host owns {partitions} partitions over {workers} workers")
        feeder.start()
        for round_ in range(kills):
            index = round_ % workers
            # A kill every ~3 s of the 15 s feed, each while the victim is processing.
            wait_until_sync(
                lambda r=round_: feeder.produced >= (r + 1) * total // (kills + 1),
                30,
                "the feed to reach the next kill",
            )
            victim = supervisor.worker_pids()[index]
            wait_until_sync(
                lambda v=victim: (
                    reader.poll(0.1) and v in set().union(*reader.pids_by_partition.values())
                ),
                30,
                f"output from worker {index} (pid {victim})",
            )
            killed_at = time.time()
            os.kill(victim, signal.SIGKILL)
            theirs = {p for p in range(partitions) if p % workers == index}
            wait_until_sync(
                lambda v=victim, t=killed_at, mine=theirs: (
                    reader.poll(0.1) is not None and set(reader.resumed_at(mine, t, v)) == mine
                ),
                30,
                f"partitions {sorted(theirs)} of killed worker {index} to make progress",
            )
            resumed = reader.resumed_at(theirs, killed_at, victim)
            assert reader.partitions_of(victim) <= theirs  # the survivor's stayed put
            recoveries.append(
                (
                    index,
                    victim,
                    min(resumed.values()) - killed_at,
                    max(resumed.values()) - killed_at,
                )
            )
        feeder.join(60)
        assert feeder.unflushed == 0
        reader.read_until(total, 60)
    finally:
        feeder.abort.set()
        code = supervisor.stop()
        reader.close()
    print()
    for index, pid, first, every in recoveries:
        print(
            f"killed worker {index} (pid {pid}): its partitions made progress again after "
            f"{first:.2f} s (first), {every:.2f} s (all)"
        )
    print(f"max recovery: {max(r[3] for r in recoveries):.2f} s over {len(recoveries)} kills")
    log = supervisor.log(400)
    assert code == 0, log
    assert set(reader.seen) == set(range(total))
    assert log.count("died (crash") == kills, log
    # A worker's death is local: the group never rebalanced.
    assert log.count("this host owns") == 1, log
    for _index, _pid, _first, every in recoveries:
        assert every < 15, recoveries  # a Kafka session timeout would be tens of seconds


def test_a_supervisor_stopped_mid_stream_hands_over_nothing_twice(
    kafka_bootstrap: str, unique: str
) -> None:
    partitions, before, total = 8, 8000, 10_000
    env = numbers_env(kafka_bootstrap, unique, partitions=partitions)
    # ~1.5 ms of work per event: the second supervisor is stopped with thousands of events
    # fetched by its workers, more than it can drain in what is left of the session
    # timeout once librdkafka's close() stops heartbeating (so it must drain first).
    env["NUMBERS_SPIN"] = "100000"
    # ~1.5 ms of work per event: the agent is busy for seconds, and the worker must still
    # answer heartbeats and revocations in time (streams yield to the loop now and then).
    env["SHOAL_WORKER_STALL_TIMEOUT"] = "5"
    first = Clusterctl(APP, "up", "-w", "2", env=env)
    second: Clusterctl | None = None
    reader = OutputReader(kafka_bootstrap, env["NUMBERS_OUT"])
    try:
        first.wait_for(f"this host owns {partitions} partitions over 2 workers")
        second = Clusterctl(APP, "up", "-w", "2", env=env)
        second.wait_for("this host owns 4 partitions over 2 workers")
        first.wait_for("this host owns 4 partitions over 2 workers")
        theirs = set(second.worker_pids().values())
        reader.wait_assigned()
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(before))
        wait_until_sync(
            lambda: (
                reader.poll(0.1) is not None
                and any(pids & theirs for pids in reader.pids_by_partition.values())
            ),
            60,
            "the second supervisor's workers to be processing",
        )
        seen_at_stop = len(reader.seen)
        assert seen_at_stop < before // 2, "the stream ended before the handover"
        stopping = time.monotonic()
        assert second.stop(60) == 0, second.log(200)
        stopped_in = time.monotonic() - stopping
        first.wait_for(f"this host owns {partitions} partitions over 2 workers", count=2)
        # More events on every partition: the first supervisor goes on where the second
        # one stopped.
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(before, total))
        reader.read_until(total, 60)
    finally:
        if second is not None:
            second.kill()
        code = first.stop()
    try:
        reader.read_to_end(30)
    finally:
        reader.close()
    print(
        f"\nthe second supervisor was stopped after {seen_at_stop} of {total} outputs and "
        f"took {stopped_in:.1f} s to drain, commit and leave"
    )
    assert code == 0, first.log(200)
    assert set(reader.seen) == set(range(total))
    assert second is not None
    repeats = sorted(v for v, n in reader.seen.items() if n > 1)
    assert not repeats, (
        f"{len(repeats)} events processed twice, e.g. {repeats[:10]}\n"
        f"first supervisor:\n{first.log(60)}\nsecond supervisor:\n{second.log(60)}"
    )
    # The second supervisor's partitions really moved: the first's workers went on with them.
    assigned = next(line for line in second.lines if "consumer: assigned" in line)
    its_partitions = {int(p) for p in re.findall(r"-in\[(\d+)\]", assigned)}
    assert len(its_partitions) == partitions // 2, assigned
    ours = set(first.worker_pids().values())
    for p in its_partitions:
        assert reader.pids_by_partition[p] & ours, (p, dict(reader.pids_by_partition))

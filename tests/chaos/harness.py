"""The chaos suite's parts: a broker it may pause and restart, a feeder of numbered events,
an asker, and the checker that counts what was lost, repeated or reordered.

Everything is real: a Kafka broker of ops/kafka on its own port and data directory (the suite
pauses and restarts it, so it never shares the test suite's broker), `clusterctl up`
subprocesses, confluent-kafka clients. See docs/reliability.md for what each scenario does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from shoal.cluster.client import Client
from shoal.cluster.devbroker import broker as broker_ops
from shoal.exceptions import ShoalError
from tests.helpers import wait_until_sync
from tests.processes import Clusterctl

APP = "tests.chaos.chaos_app"
#: Keys of the numbered events; event i has key i % KEYS and seq i // KEYS.
KEYS = 64
#: An ask slower than its timeout by more than this is a hang.
ASK_SLACK = 0.5


def free_port_pair() -> int:
    """A free port whose neighbour (the KRaft controller's) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            with socket.socket() as c:
                c.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


class ChaosBroker:
    """A broker of ops/kafka that the suite owns: it pauses, stops and restarts it."""

    def __init__(self, data_dir: Path) -> None:
        self.ops = broker_ops
        self.data_dir = data_dir
        self.port = free_port_pair()
        self.pid = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.pid = self.ops.up(self.port, data_dir=self.data_dir, quiet=True).pid

    def stop(self) -> None:
        self.ops.down(self.port, data_dir=self.data_dir, quiet=True)
        self.pid = 0

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


def event_of(i: int) -> tuple[int, int]:
    return i % KEYS, i // KEYS


class Feeder(threading.Thread):
    """Produces numbered events at ``rate`` per second until told to stop. Its messages
    wait out a broker outage (no delivery timeout), so every event it numbered reaches the
    topic: what the cluster misses is the cluster's loss."""

    def __init__(self, bootstrap: str, topic: str, rate: float) -> None:
        super().__init__(daemon=True, name="chaos-feeder")
        self.topic, self.rate = topic, rate
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "logger": logging.getLogger("chaos.feeder"),
                "linger.ms": 5,
                "enable.idempotence": True,
                "message.timeout.ms": 0,
                "message.max.bytes": 2_000_000,  # room for the oversized poison
            }
        )
        self.produced = 0
        self.failed: list[str] = []
        self._halt = threading.Event()
        self._extra: list[tuple[bytes, bytes | None]] = []
        self._lock = threading.Lock()

    def inject(self, key: bytes, value: bytes | None) -> None:
        """Produce a raw (poison) message between two numbered ones."""
        with self._lock:
            self._extra.append((key, value))

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed.append(str(err))

    def run(self) -> None:
        start = time.monotonic()
        while not self._halt.is_set():
            due = int((time.monotonic() - start) * self.rate)
            while self.produced < due:
                k, s = event_of(self.produced)
                value = json.dumps({"k": k, "s": s}).encode()
                try:
                    self.producer.produce(
                        self.topic, value, str(k).encode(), on_delivery=self._delivered
                    )
                except BufferError:
                    break  # the local queue is full (a broker outage): try again soon
                self.produced += 1
            with self._lock:
                extra, self._extra = self._extra, []
            for key, value in extra:
                self.producer.produce(self.topic, value, key, on_delivery=self._delivered)
            self.producer.poll(0.01)  # serves delivery reports; paces the loop

    def abort(self) -> None:
        """Stop producing, whatever is queued."""
        self._halt.set()
        self.join(10)

    def finish(self, timeout: float = 120.0) -> int:
        """Stop producing and wait until everything is stored; returns the count."""
        self._halt.set()
        self.join(10)
        left = self.producer.flush(timeout)
        assert left == 0, f"the feeder could not store {left} events in {timeout} s"
        assert not self.failed, self.failed[:5]
        return self.produced


@dataclass
class Outputs:
    """What the cluster wrote, read from the output topic to its end."""

    #: (key, seq) -> how many times it was processed.
    seen: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    #: per key: seqs in the order their outputs were stored.
    by_key: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    #: per output partition: (stored at, producer's time) of each output.
    stamps: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def lost(self, produced: int) -> list[tuple[int, int]]:
        return [event_of(i) for i in range(produced) if event_of(i) not in self.seen]

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.seen.values())

    def order_violations(self) -> int:
        """Events whose first processing came after a later event of the same key was
        processed for the first time (a replay after a crash repeats earlier events; that is
        a repeat, not a violation)."""
        violations = 0
        for seqs in self.by_key.values():
            first: set[int] = set()
            highest = -1
            for s in seqs:
                if s in first:
                    continue
                first.add(s)
                if s < highest:
                    violations += 1
                highest = max(highest, s)
        return violations

    def resumed_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` (wall clock) until every partition that had output
        before it had output again; None if one never did."""
        gaps = []
        for stamps in self.stamps.values():
            if not any(t < moment for t in stamps):
                continue
            later = [t for t in stamps if t >= moment]
            if not later:
                return None
            gaps.append(min(later) - moment)
        return max(gaps, default=0.0)


def read_outputs(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0) -> Outputs:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"chaos-reader-{uuid.uuid4().hex[:8]}"}
    )
    tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in range(partitions)
    }
    consumer.assign(tps)
    outputs = Outputs()
    done = {p: 0 for p in range(partitions)}
    deadline = time.monotonic() + timeout
    try:
        while any(done[p] < ends[p] for p in done):
            assert time.monotonic() < deadline, "the output topic could not be read to its end"
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is not None:
                    continue
                k, s, _pid = (int(x) for x in msg.value().split())
                outputs.seen[(k, s)] += 1
                outputs.by_key[k].append(s)
                outputs.stamps[msg.partition()].append(msg.timestamp()[1] / 1000.0)
                done[msg.partition()] = msg.offset() + 1
    finally:
        consumer.close()
    return outputs


def count_outputs(bootstrap: str, topic: str, partitions: int) -> int:
    """Messages in the output topic now (high watermarks summed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-counter"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        )
    finally:
        consumer.close()


@dataclass
class AskStats:
    ok: int = 0
    wrong: int = 0
    timeouts: int = 0
    errors: int = 0
    hangs: int = 0
    slowest: float = 0.0
    #: Fresh clients' first asks: how far past their timeout the slowest one returned.
    first_ask_overshoot: float = 0.0
    first_asks: int = 0


class Asker(threading.Thread):
    """Asks the ``echo`` agent all along a scenario: a long-lived client, and every few
    seconds a fresh client whose *first* ask must honour its timeout too."""

    def __init__(
        self,
        app_id: str,
        bootstrap: str,
        *,
        timeout: float = 5.0,
        every: float = 0.1,
        fresh_every: float = 4.0,
    ) -> None:
        super().__init__(daemon=True, name="chaos-asker")
        self.app_id, self.bootstrap = app_id, bootstrap
        self.timeout, self.every, self.fresh_every = timeout, every, fresh_every
        self.stats = AskStats()
        self._halt = threading.Event()
        self._loop_stopped = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._loop_stopped.set()

    async def _timed(self, client: Client, n: int, fresh: bool) -> None:
        started = time.monotonic()
        try:
            answer = await client.ask("echo", n, timeout=self.timeout)
        except TimeoutError:
            self.stats.timeouts += 1
        except ShoalError:
            self.stats.errors += 1
        else:
            if answer == n:
                self.stats.ok += 1
            else:
                self.stats.wrong += 1
        took = time.monotonic() - started
        self.stats.slowest = max(self.stats.slowest, took)
        if took > self.timeout + ASK_SLACK:
            self.stats.hangs += 1
        if fresh:
            self.stats.first_asks += 1
            self.stats.first_ask_overshoot = max(
                self.stats.first_ask_overshoot, took - self.timeout
            )

    async def _fresh(self, n: int) -> None:
        client = Client(self.app_id, broker=self.bootstrap)
        try:
            await self._timed(client, n, fresh=True)
        finally:
            await client.close(timeout=1.0)

    async def _main(self) -> None:
        client = Client(self.app_id, broker=self.bootstrap)
        n = 0
        next_fresh = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        try:
            while not self._halt.is_set():
                n += 1
                task = asyncio.ensure_future(self._timed(client, n, fresh=False))
                pending.add(task)
                task.add_done_callback(pending.discard)
                if time.monotonic() >= next_fresh:
                    next_fresh = time.monotonic() + self.fresh_every
                    fresh = asyncio.ensure_future(self._fresh(-n))
                    pending.add(fresh)
                    fresh.add_done_callback(pending.discard)
                await asyncio.sleep(self.every)  # the pace of the asks
            if pending:
                await asyncio.wait(pending, timeout=self.timeout + 5)
        finally:
            await client.close(timeout=2.0)

    def finish(self) -> AskStats:
        self._halt.set()
        self._loop_stopped.wait(self.timeout + 30)
        return self.stats


@dataclass
class Result:
    """One scenario's figures, as docs/reliability.md shows them."""

    scenario: str
    events: int = 0
    lost: int = 0
    duplicates: int = 0
    order_violations: int = 0
    recovery: float | None = None
    hangs: int = 0
    asks: AskStats = field(default_factory=AskStats)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.order_violations == 0
            and self.hangs == 0
            and self.asks.hangs == 0
            and self.asks.wrong == 0
            and self.asks.first_ask_overshoot <= ASK_SLACK
        )


class Scene:
    """One scenario's world: its app id and topics on the chaos broker, its feeder, asker
    and supervisors, and what it measured."""

    def __init__(
        self,
        name: str,
        broker: ChaosBroker,
        workdir: Path,
        *,
        workers: int,
        partitions: int,
        rate: float,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.broker = broker
        self.workdir = workdir
        self.workers, self.partitions, self.rate = workers, partitions, rate
        self.app_id = f"chaos-{name}-{uuid.uuid4().hex[:6]}"
        self.in_topic, self.out_topic = f"{self.app_id}-in", f"{self.app_id}-out"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOAL_", "CHAOS_"))}
        self.env.update(
            SHOAL_BROKER=f"kafka://{broker.bootstrap}",
            SHOAL_WEB_PORT="0",
            CHAOS_APP_ID=self.app_id,
            CHAOS_IN=self.in_topic,
            CHAOS_OUT=self.out_topic,
            CHAOS_ECHO=f"{self.app_id}-echo",
            CHAOS_PARTITIONS=str(partitions),
            PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        )
        self.env.update(env or {})
        self.supervisors: list[Clusterctl] = []
        self.feeder: Feeder | None = None
        self.asker: Asker | None = None
        self.result = Result(name)
        self.started_at = time.time()

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Whatever happened: no feeder, asker or supervisor outlives the scenario."""
        if self.feeder is not None:
            self.feeder.abort()
        if self.asker is not None:
            self.asker.finish()
        for i, supervisor in enumerate(self.supervisors):
            supervisor.kill()
            (self.workdir / f"supervisor-{i}.log").write_text("".join(supervisor.lines))

    # -- the cluster -------------------------------------------------------------------------

    def up(self, *, wait: bool = True) -> Clusterctl:
        supervisor = Clusterctl(APP, "up", "--workers", str(self.workers), env=self.env)
        self.supervisors.append(supervisor)
        if wait:
            supervisor.wait_for("this host owns", timeout=90)
        return supervisor

    def stop_all(self, timeout: float = 90.0) -> None:
        """SIGTERM every supervisor still running: a graceful stop within its timeout, or a
        hang."""
        for supervisor in self.supervisors:
            if supervisor.proc.poll() is not None:
                continue
            started = time.monotonic()
            try:
                code = supervisor.stop(timeout)
            except Exception:  # subprocess.TimeoutExpired: it ignored SIGTERM
                supervisor.kill()
                self.result.hangs += 1
                self.result.notes.append(f"a supervisor ignored SIGTERM for {timeout:.0f} s")
                continue
            if code != 0:
                self.result.notes.append(
                    f"a supervisor exited {code} after SIGTERM ({time.monotonic() - started:.1f} s)"
                )

    # -- load --------------------------------------------------------------------------------

    def start_load(self, asks: bool = True) -> None:
        self.feeder = Feeder(self.broker.bootstrap, self.in_topic, self.rate)
        self.feeder.start()
        if asks:
            self.asker = Asker(self.app_id, self.broker.bootstrap)
            self.asker.start()

    def produced(self) -> int:
        return self.feeder.produced if self.feeder is not None else 0

    def wait_produced(self, n: int, timeout: float = 120.0) -> None:
        wait_until_sync(lambda: self.produced() >= n, timeout, f"{n} events produced")

    def finish(self, catch_up: float = 180.0) -> Result:
        """Stop the load, wait until every event has an output (else: a stall, a hang),
        stop the cluster, and count."""
        assert self.feeder is not None
        produced = self.feeder.finish()
        if self.asker is not None:
            self.result.asks = self.asker.finish()
        bootstrap, topic, parts = self.broker.bootstrap, self.out_topic, self.partitions
        deadline = time.monotonic() + catch_up
        try:
            # Counting first (cheap); but repeats make up for events not processed yet, so
            # then every event's own output, read back.
            wait_until_sync(
                lambda: count_outputs(bootstrap, topic, parts) >= produced,
                catch_up,
                "as many outputs as events",
            )
            wait_until_sync(
                lambda: not read_outputs(bootstrap, topic, parts).lost(produced),
                max(1.0, deadline - time.monotonic()),
                "an output for every event",
            )
        except AssertionError:
            self.result.hangs += 1
            self.result.notes.append(f"processing did not catch up within {catch_up:.0f} s")
        self.stop_all()
        outputs = read_outputs(self.broker.bootstrap, self.out_topic, self.partitions)
        self.outputs = outputs
        self.result.events = produced
        self.result.lost = len(outputs.lost(produced))
        self.result.duplicates = outputs.duplicates()
        self.result.order_violations = outputs.order_violations()
        return self.result

    def log(self, last: int = 60) -> str:
        return "\n".join(
            f"--- supervisor {i} (exit {s.proc.poll()}):\n{s.log(last)}"
            for i, s in enumerate(self.supervisors)
        )

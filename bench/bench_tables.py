"""Stateful counting: shoal's tables against Quix Streams' state, in the same run.

Run: ``.venv/bin/python bench/bench_tables.py --broker 127.0.0.1:29092`` (``--quick`` for a
short form). Quix Streams runs from its own virtualenv (``.cache/bench-venvs/quix``, made on
first use), so the two never share dependencies.

1. **Events/s.** N pre-produced events keyed over K keys, on 8 partitions. Each system counts
   every key in RocksDB-backed state with a changelog topic and writes each new count to an
   output topic (shoal: ``clusterctl up --workers 1`` of ``bench/tables_app.py``; Quix: one
   process of ``bench/tables_quix.py``). The rate is timed on the output topic's end offsets
   (from the first output to the N-th), the same way for both; the output must end with
   exactly N messages whose last count per key is N/K. Rounds alternate the systems.
2. **Resume after a SIGKILL, with M keys in the table.** After counting M distinct keys, the
   process that holds the state is killed (shoal: the worker, which its supervisor
   restarts; Quix: the process, restarted by this script at once, as a process manager
   would) and one more event is produced: the time from the kill to its output.
3. **A start with empty local state** (a host new to the partitions): the time from the
   start to the output of one more event, and shoal's replay rate from its log.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import confluent_kafka
from confluent_kafka import TopicPartition

from bench.common import ROOT, Cluster, create_topics, delete_topics
from bench.measure import OutputWatch, TreeCpu
from bench.venvs import venv_python

PARTITIONS = 8
RECOVERED = re.compile(
    r"recovered partitions .*?: (\d+) changelog records in ([\d.]+) s \((\d+)/s\)"
)


def quix_python() -> Path:
    """The Quix Streams virtualenv's python, made on first use."""
    return venv_python("quix")


def produce_probe(broker: str, topic: str, key: bytes) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": broker})
    producer.produce(topic, b'{"n":0}', key)
    if producer.flush(30):
        raise SystemExit("the probe was not delivered")


def produce_keyed(broker: str, topic: str, events: int, keys: int, start: int = 0) -> None:
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": broker, "linger.ms": 50, "batch.size": 1_000_000}
    )
    for i in range(start, start + events):
        while True:
            try:
                producer.produce(topic, b'{"n":%d}' % i, b"k%d" % (i % keys))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120):
        raise SystemExit("pre-produce: messages left undelivered")


class Sink(OutputWatch):
    """The output topic of a count, read as it grows (on 8 partitions)."""

    def __init__(self, broker: str, topic: str) -> None:
        super().__init__(broker, topic, PARTITIONS)

    def wait_key(self, key: bytes, timeout: float, alive: Any = None) -> float:
        """Read from the current end until an output with ``key`` arrives; its time."""
        watcher = confluent_kafka.Consumer(
            {"bootstrap.servers": self._broker, "group.id": f"bench-w-{uuid.uuid4().hex}"}
        )
        try:
            watcher.assign([TopicPartition(self.topic, p, o) for p, o in self.ends().items()])
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for msg in watcher.consume(1000, 0.05):
                    if msg.error() is None and msg.key() == key:
                        return time.perf_counter()
                if alive is not None and not alive():
                    raise SystemExit("the system under test exited before the probe's output")
            raise SystemExit(f"no output for {key!r} after {timeout:.0f} s")
        finally:
            watcher.close()

    def last_counts(self) -> dict[bytes, int]:
        consumer = self._consumer
        ends = self.ends()
        consumer.assign([TopicPartition(self.topic, p, 0) for p in range(PARTITIONS)])
        last: dict[bytes, int] = {}
        done = dict.fromkeys(ends, 0)
        while any(done[p] < ends[p] for p in done):
            msg: Any
            for msg in consumer.consume(10_000, 1.0):
                last[msg.key()] = max(last.get(msg.key(), 0), int(msg.value()))
                done[msg.partition()] = msg.offset() + 1
        return last


# -- the two systems --------------------------------------------------------------------------


class System(Protocol):
    name: str

    def start(self, source: str, sink: str, state: Path, group: str) -> None: ...
    def alive(self) -> bool: ...
    def pid(self) -> int: ...
    def kill_state_holder(self) -> None: ...
    def stop(self) -> None: ...
    def log(self) -> str: ...


class Shoal:
    name = "shoal (1 worker)"

    def __init__(self, broker: str) -> None:
        self.broker = broker
        self.cluster: Cluster | None = None

    def start(self, source: str, sink: str, state: Path, group: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
        env.update(
            SHOAL_BROKER=self.broker,
            SHOAL_WEB_PORT="0",
            SHOAL_LOG_LEVEL="info",
            BENCH_APP_ID=group,
            BENCH_IN=source,
            BENCH_OUT=sink,
            BENCH_DATADIR=str(state),
            BENCH_PARTITIONS=str(PARTITIONS),
            PYTHONPATH=str(ROOT),
        )
        self.cluster = Cluster("bench.tables_app", 1, env)
        self.cluster.wait_ready(120)

    def alive(self) -> bool:
        return self.cluster is not None and self.cluster.proc.poll() is None

    def pid(self) -> int:
        assert self.cluster is not None
        return self.cluster.proc.pid

    def kill_state_holder(self) -> None:
        assert self.cluster is not None
        os.kill(self.cluster.pids()[-1], signal.SIGKILL)  # its worker: the supervisor restarts it

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()

    def log(self) -> str:
        return "".join(self.cluster.lines) if self.cluster else ""


class Quix:
    name = "Quix Streams 3.28"

    def __init__(self, broker: str) -> None:
        self.broker = broker
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._args: list[str] = []

    def start(self, source: str, sink: str, state: Path, group: str) -> None:
        self._args = [
            str(quix_python()),
            str(ROOT / "bench" / "tables_quix.py"),
            self.broker,
            group,
            source,
            sink,
            str(state),
        ]
        self._spawn()

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(
            self._args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        proc = self.proc

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.lines.append(line)

        threading.Thread(target=read, daemon=True).start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill_state_holder(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)
        self._spawn()  # as a process manager would, at once

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def log(self) -> str:
        return "".join(self.lines)


# -- the measurements -------------------------------------------------------------------------


def throughput(
    system: System, broker: str, source: str, events: int, keys: int, tmp: Path
) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    sink = f"bench-tables-out-{tag}"
    create_topics(broker, [sink], PARTITIONS)
    out = Sink(broker, sink)
    try:
        system.start(source, sink, tmp / f"state-{tag}", f"bench-tables-{tag}")
        timing = out.wait(events, max(300.0, events / 500), system.alive, TreeCpu(system.pid()))
        counts = out.last_counts()
        system.stop()
        total = out.count()
        if total != events:
            raise SystemExit(f"{system.name}: {total:,} outputs, expected exactly {events:,}")
        wrong = {k: v for k, v in counts.items() if v != events // keys}
        if len(counts) != keys or wrong:
            raise SystemExit(
                f"{system.name}: {len(counts):,} keys counted, {len(wrong)} of them wrong, "
                f"e.g. {list(wrong.items())[:3]}"
            )
        return {"rate": timing.rate, "cpu_us": timing.cpu_us or 0.0}
    finally:
        system.stop()
        out.close()
        # The app's internal topics: shoal's start with its id, Quix Streams' contain it.
        delete_topics(broker, containing=f"bench-tables-{tag}")
        delete_topics(broker, [sink])


def recovery(system: System, broker: str, keys: int, tmp: Path) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    source, sink = f"bench-rec-in-{tag}", f"bench-rec-out-{tag}"
    group = f"bench-rec-{tag}"
    create_topics(broker, [source, sink], PARTITIONS)
    produce_keyed(broker, source, keys, keys)
    out = Sink(broker, sink)
    result: dict[str, float] = {}
    try:
        state = tmp / f"rec-{tag}"
        system.start(source, sink, state, group)
        out.wait(keys, max(600.0, keys / 200), system.alive)
        # Start watching before the kill: the probe's output is the first sign of life.
        watch: dict[str, float] = {}
        watcher = threading.Thread(
            target=lambda: watch.update(back=out.wait_key(b"probe-1", 300)), daemon=True
        )
        watcher.start()
        killed = time.perf_counter()
        system.kill_state_holder()
        produce_probe(broker, source, b"probe-1")
        watcher.join(310)
        result["resume_s"] = watch["back"] - killed
        system.stop()
        # A start with nothing on local disk: every changelog record replayed.
        watcher = threading.Thread(
            target=lambda: watch.update(fresh=out.wait_key(b"probe-2", 600)), daemon=True
        )
        watcher.start()
        started = time.perf_counter()
        system.start(source, sink, tmp / f"rec-fresh-{tag}", group)
        produce_probe(broker, source, b"probe-2")
        watcher.join(610)
        result["fresh_start_s"] = watch["fresh"] - started
        replays = [m for m in RECOVERED.finditer(system.log())]
        if replays and isinstance(system, Shoal):
            records = sum(int(m[1]) for m in replays[-1:])
            result["replay_rate"] = float(replays[-1][3])
            result["replayed"] = float(records)
        return result
    finally:
        system.stop()
        out.close()
        delete_topics(broker, containing=f"bench-rec-{tag}")
        delete_topics(broker, [source, sink])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default=os.environ.get("SHOAL_BENCH_BROKER", "127.0.0.1:29092"))
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--recovery-keys", type=int, default=1_000_000)
    parser.add_argument("--systems", default="shoal,quix")
    parser.add_argument("--skip-recovery", action="store_true", help="only the events/s part")
    parser.add_argument("--quick", action="store_true", help="50k events, 1 round, 100k keys")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds, args.recovery_keys = 50_000, 1, 100_000
    systems: list[System] = []
    for name in args.systems.split(","):
        systems.append(Shoal(args.broker) if name == "shoal" else Quix(args.broker))
    tmp = Path(tempfile.mkdtemp(prefix="bench-tables-"))
    source = f"bench-tables-in-{uuid.uuid4().hex[:8]}"
    try:
        create_topics(args.broker, [source], PARTITIONS)
        produce_keyed(args.broker, source, args.events, args.keys)
        rates: dict[str, list[dict[str, float]]] = {s.name: [] for s in systems}
        for round_ in range(args.rounds):
            for system in systems if round_ % 2 == 0 else list(reversed(systems)):
                r = throughput(system, args.broker, source, args.events, args.keys, tmp)
                rates[system.name].append(r)
                print(
                    f"round {round_ + 1}: {system.name}: {r['rate']:,.0f} events/s, "
                    f"{r['cpu_us']:.1f} CPU us/event",
                    flush=True,
                )
        print(
            f"\nstateful count, {args.events:,} events over {args.keys:,} keys, "
            f"{PARTITIONS} partitions, medians of {args.rounds}:"
        )
        for name, rs in rates.items():
            print(
                f"  {name:20} {statistics.median(r['rate'] for r in rs):>10,.0f} events/s "
                f"{statistics.median(r['cpu_us'] for r in rs):>7.1f} CPU us/event"
            )
        print(f"\nrecovery with {args.recovery_keys:,} keys:")
        for system in [] if args.skip_recovery else systems:
            r = recovery(system, args.broker, args.recovery_keys, tmp)
            line = (
                f"  {system.name:20} resume after SIGKILL {r['resume_s']:.2f} s; "
                f"start with empty local state {r['fresh_start_s']:.1f} s"
            )
            if "replay_rate" in r:
                line += f" (replayed {r['replayed']:,.0f} records at {r['replay_rate']:,.0f}/s)"
            print(line, flush=True)
    finally:
        delete_topics(args.broker, [source])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

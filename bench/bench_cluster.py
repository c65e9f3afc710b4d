"""The seed's adding agent under ``clusterctl up``: events/s with 1 and 2 worker processes.

Run: ``.venv/bin/python bench/bench_cluster.py --broker 127.0.0.1:29092 --events 200000``
(add ``--spin 1000`` or so to make the agent CPU-bound; the script prints what the spin costs).

For each round and each worker count W in (1, 2) the script creates a fresh input topic and a
fresh output topic (``--partitions`` each), pre-produces N JSON ``{"a": i, "b": i}`` values
spread evenly over the partitions, and starts ``python -m shoal.cluster.cli -A bench.cluster_app
up --workers W`` as a subprocess in its own session, with its own app id (so its own consumer
group). Once the supervisor logs "this host owns", it polls the output topic's high watermarks
(sum over its partitions) every few ms: the clock runs from the first output message seen to
the moment the output topic holds N messages. Then it sends SIGTERM and waits for exit code 0.
The topics made here (and the app's dead-letter topic, if it was made) are deleted at the end
(``--keep-topics`` keeps them).

The broker, this script's poller and librdkafka's threads all run on the same machine, so on a
small machine the second worker competes with them for the cores.

This is a plain script, not a test.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import confluent_kafka
from confluent_kafka import TopicPartition

from bench.common import READY, ROOT, Cluster, create_topics, delete_topics, preproduce

BROKER_ENV = "SHOAL_BENCH_BROKER"
APP = "bench.cluster_app"
WORKER_COUNTS = (1, 2)
POLL = 0.005  # pause between two watermark polls (s); with the polls themselves, the timing error
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    workers: int
    events: int
    owned: float  # the supervisor logged "this host owns" (perf_counter)
    first: float  # first output message seen
    done: float  # the output topic holds N messages
    cpu: float  # CPU seconds of the supervisor and its workers, "owns" -> done
    shares: list[float]  # CPU share (of one core) of the supervisor, then each worker
    busy: float  # CPU seconds the whole machine spent (every process), "owns" -> done
    before: float  # share of the machine's CPUs in use in the second before the start
    broker: float | None  # CPU share (of one core) of the broker process, if it is local

    @property
    def rate(self) -> float:
        """Events/s from the first output message to the last."""
        return self.events / (self.done - self.first)

    @property
    def rate_from_owned(self) -> float:
        return self.events / (self.done - self.owned)

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.events * 1e6

    @property
    def busy_share(self) -> float:
        """Share of the machine's CPUs in use, "owns" -> done (the broker included)."""
        return self.busy / ((self.done - self.owned) * (os.cpu_count() or 1))


# -- topics -----------------------------------------------------------------------------------


@functools.cache
class Watermarks:
    """Sums a topic's high watermarks: how many messages it holds (nothing is deleted)."""

    def __init__(self, broker: str, topic: str, partitions: int) -> None:
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.consumer = confluent_kafka.Consumer(
            {"bootstrap.servers": broker, "group.id": f"bench-watermarks-{uuid.uuid4().hex}"}
        )

    def count(self) -> int:
        return sum(self.consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self.tps)

    def close(self) -> None:
        self.consumer.close()


def machine_busy() -> float:
    """CPU seconds the machine has spent not idle since boot (every CPU, /proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / CLK_TCK  # without guest time, counted in user already


def broker_pid(broker: str) -> int | None:
    """The local process listening on the broker's port, if it is on this machine (or None)."""
    port = int(broker.rsplit(":", 1)[1]) if ":" in broker else 9092
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process; 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def busy_share(window: float = 1.0) -> float:
    """Share of the machine's CPUs in use over the next ``window`` seconds (a measurement)."""
    busy0, start = machine_busy(), time.perf_counter()
    time.sleep(window)
    return (machine_busy() - busy0) / ((time.perf_counter() - start) * (os.cpu_count() or 1))


def wait_for_quiet(below: float, timeout: float) -> float:
    """Poll 1 s windows until the machine is less than ``below`` busy, or ``timeout`` passes.

    Other processes (test suites, other brokers) share the machine: starting a run while they
    hold the CPUs measures them more than shoal. Returns the last window's busy share.
    """
    deadline = time.monotonic() + timeout
    while True:
        share = busy_share()
        if share < below:
            return share
        if time.monotonic() > deadline:
            print(f"  machine still {share:.0%} busy after {timeout:.0f} s: starting anyway")
            return share


# -- the cluster ------------------------------------------------------------------------------


def cluster_cpu(cluster: Cluster) -> dict[int, float]:
    """CPU seconds (user + system) by pid: the supervisor and the workers it started."""
    return {pid: process_cpu(pid) for pid in cluster.pids()}


def app_env(broker: str, app_id: str, source: str, sink: str, partitions: int, spin: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(
        SHOAL_BROKER=f"kafka://{broker}",
        SHOAL_WEB_PORT="0",  # a free port: another cluster may hold the default one
        BENCH_APP_ID=app_id,
        BENCH_IN=source,
        BENCH_OUT=sink,
        BENCH_PARTITIONS=str(partitions),
        BENCH_SPIN=str(spin),
        PYTHONPATH=str(ROOT),
    )
    return env


def run_cluster(args: argparse.Namespace, workers: int, tag: str, made: list[str]) -> Result:
    broker, n, parts = args.broker, args.events, args.partitions
    app_id = f"bench-cluster-{tag}"
    source, sink = f"{app_id}-in", f"{app_id}-out"
    create_topics(broker, [source, sink], parts)
    made += [source, sink, f"{app_id}-dead-letters"]
    preproduce(broker, source, n, parts)
    marks = Watermarks(broker, sink, parts)
    kafka = broker_pid(broker)
    before = wait_for_quiet(args.quiet_below, args.quiet_wait)
    cluster = Cluster(APP, workers, app_env(broker, app_id, source, sink, parts, args.spin))
    try:
        cluster.wait_ready(60)
        cpu0, busy0 = cluster_cpu(cluster), machine_busy()
        kafka0 = process_cpu(kafka) if kafka else 0.0
        owned = cluster.ready_at
        deadline = time.monotonic() + args.timeout
        first = 0.0
        while True:
            count = marks.count()
            now = time.perf_counter()
            if count and not first:
                first = now
            if count >= n:
                done = now
                cpu1, busy = cluster_cpu(cluster), machine_busy() - busy0
                used = [cpu1[pid] - cpu0.get(pid, 0.0) for pid in cpu1]
                shares = [u / (done - owned) for u in used]
                kafka_share = (process_cpu(kafka) - kafka0) / (done - owned) if kafka else None
                break
            if cluster.proc.poll() is not None:
                raise SystemExit(f"clusterctl exited ({cluster.proc.returncode}):\n{cluster.log()}")
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{count:,}/{n:,} outputs after {args.timeout} s:\n{cluster.log()}"
                )
            time.sleep(POLL)
        code = cluster.stop()
    finally:
        cluster.kill()
        marks.close()
    if count != n:
        raise SystemExit(f"output holds {count:,} messages, expected {n:,}")
    problems = cluster.problems()
    for line in problems:
        print(f"  log: {line}")
    if code != 0:
        raise SystemExit(f"clusterctl exited with {code}, not 0:\n{cluster.log()}")
    return Result(workers, n, owned, first, done, sum(used), shares, busy, before, kafka_share)


# -- main -------------------------------------------------------------------------------------


def spin_cost(spin: int) -> float:
    """Microseconds the agent's spin loop takes per event, in this process (best of 5)."""
    if spin <= 0:
        return 0.0
    reps = max(1, 200_000 // spin)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            for _ in range(spin):
                pass
        best = min(best, time.perf_counter() - start)
    return best / reps * 1e6


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the adding agent under 'clusterctl up' with 1 and 2 workers."
    )
    parser.add_argument(
        "--broker",
        default=os.environ.get(BROKER_ENV, "127.0.0.1:9092"),
        help=f"Kafka bootstrap servers (default: ${BROKER_ENV} or 127.0.0.1:9092)",
    )
    parser.add_argument("--events", type=int, default=200_000, help="input messages (200000)")
    parser.add_argument("--partitions", type=int, default=8, help="input partitions (8)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs per worker count; best is kept (1)"
    )
    parser.add_argument(
        "--spin", type=int, default=0, help="loop iterations per event in the agent (0)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds allowed per run (600)"
    )
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.35,
        help="before each run, wait until the machine's CPUs are less busy than this (0.35)",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=120.0, help="longest such wait, seconds (120)"
    )
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the topics")
    args = parser.parse_args(argv)
    if args.events < 1 or args.partitions < 1 or args.rounds < 1 or args.spin < 0:
        parser.error("--events, --partitions and --rounds must be >= 1, --spin >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_id = uuid.uuid4().hex[:8]
    print(
        f"broker {args.broker}; {args.events:,} events, {args.partitions} partitions; "
        f"spin {args.spin} (~{spin_cost(args.spin):.1f} us/event here); {args.rounds} round(s); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; confluent-kafka "
        f"{confluent_kafka.__version__} / librdkafka {confluent_kafka.libversion()[0]}"
    )
    made: list[str] = []
    best: dict[int, Result] = {}
    try:
        for r in range(args.rounds):
            for w in WORKER_COUNTS:
                print(f"round {r + 1}: {w} worker(s) ...", flush=True)
                res = run_cluster(args, w, f"{run_id}-r{r}-w{w}", made)
                print(
                    f"  {res.rate:>10,.0f} events/s first -> last output "
                    f"({res.done - res.first:.2f} s; {res.done - res.owned:.2f} s from "
                    f"'{READY}'); {res.cpu_us:.1f} CPU us/event (supervisor + workers); "
                    f"output holds {res.events:,}: OK; exit 0\n"
                    f"  machine {res.before:.0%} busy in the second before the start, "
                    f"{res.busy_share:.0%} during the run; supervisor / workers used "
                    f"{' / '.join(f'{x:.0%}' for x in res.shares)} of a core, the broker "
                    + (f"{res.broker:.0%}" if res.broker is not None else "(not local) -")
                )
                if w not in best or res.rate > best[w].rate:
                    best[w] = res
    finally:
        if made and not args.keep_topics:
            # The apps' own topics too (metadata, assignor): every name starts with the run's.
            delete_topics(args.broker, prefix=f"bench-cluster-{run_id}-")
    print_table(best, args)


def print_table(best: dict[int, Result], args: argparse.Namespace) -> None:
    print(
        f"\nbest of {args.rounds} round(s), {args.events:,} events, {args.partitions} "
        f"partitions, spin {args.spin}; load average now {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'workers':>7} {'events/s':>10} {'speed-up':>9} {'from owns':>10} "
        f"{'CPU us/event':>13} {'busy before':>12} {'busy during':>12} {'broker':>7}"
    )
    one = best.get(1)
    for w in WORKER_COUNTS:
        res = best.get(w)
        if res is None:
            continue
        speedup = f"{res.rate / one.rate:>8.2f}x" if one is not None else f"{'-':>9}"
        print(
            f"{w:>7} {res.rate:>10,.0f} {speedup} {res.rate_from_owned:>10,.0f} "
            f"{res.cpu_us:>13.1f} {res.before:>12.0%} {res.busy_share:>12.0%} "
            + (f"{res.broker:>7.0%}" if res.broker is not None else f"{'-':>7}")
        )
    print(
        "events/s: first output message -> output topic holds N (sum of high watermarks); "
        "'from owns': from the supervisor's 'this host owns' log line; CPU us/event: "
        "supervisor + workers, 'owns' -> done; busy before / during: share of all CPUs in "
        "use (every process: the broker and this script run on the same machine) in the last 1 s "
        "window before the start (each run first waits for < --quiet-below) / 'owns' -> done; "
        "broker: CPU of the broker process (if local), share of one core, 'owns' -> done."
    )


if __name__ == "__main__":
    main()

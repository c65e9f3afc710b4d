"""Where shoal's worker spends its time on the stateless map (compare.py's workload 1): py-spy
attached to the worker process of ``clusterctl up --workers 1``, summarised by function.

py-spy (from its own virtualenv, ``.cache/bench-venvs/pyspy``) samples the worker from outside,
every thread, without changing its code. The cluster starts on an empty input topic; once
py-spy samples, the input is produced, and the run ends when the output holds every event.
Only samples of threads that are running count (py-spy leaves idle ones out), so shares are
of the worker's busy time. Functions in C (confluent-kafka's produce, librdkafka's threads)
are not seen: their time is the Python function that called them.

    .venv/bin/python -m bench.profile_shoal --broker 127.0.0.1:29092 --events 200000
"""

from __future__ import annotations

import argparse
import collections
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from bench.bench_cluster import app_env
from bench.common import ROOT, Cluster, Proc, create_topics, delete_topics, preproduce
from bench.measure import OutputWatch
from bench.venvs import venv_bin

PARTITIONS = 8
RESULTS = ROOT / ".cache" / "bench-results"


def summarise(raw: Path, top: int = 15) -> dict[str, Any]:
    """Shares of the sampled time: by thread, by function's own time (the innermost Python
    frame) and by function including what it calls, from py-spy's raw (folded) output."""
    threads: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        thread, frames = frames[0], frames[1:]
        total += n
        threads[thread.split(": ", 1)[-1]] += n
        if frames:
            own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n

    def shares(counter: collections.Counter[str], keep: Any = None) -> list[list[Any]]:
        rows = [(f, c) for f, c in counter.most_common() if keep is None or keep(f)]
        return [[f, round(c / total, 4)] for f, c in rows[:top]] if total else []

    return {
        "samples": total,
        "threads": shares(threads),
        "own": shares(own),
        # shoal's own functions (asyncio's loop and the threads' entry points wrap everything)
        "inclusive": shares(inclusive, lambda f: "(shoal/" in f),
    }


def profile_adding(broker: str, events: int, rate: int = 200) -> dict[str, Any]:
    """One profiled run of the stateless map; the summary, and where the raw samples are."""
    tag = f"cmp-prof-{uuid.uuid4().hex[:8]}"
    source, sink = f"{tag}-in", f"{tag}-out"
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / "shoal-worker.pyspy.txt"
    create_topics(broker, [source, sink], PARTITIONS)
    env = app_env(broker, tag, source, sink, PARTITIONS, 0)
    env["SHOAL_LOG_LEVEL"] = "info"
    cluster = Cluster("bench.cluster_app", 1, env)
    watch = OutputWatch(broker, sink, PARTITIONS)
    spy: Proc | None = None
    try:
        cluster.wait_ready(120)
        pid = cluster.pids()[-1]
        pyspy = venv_bin("pyspy", "py-spy")
        argv = [str(pyspy), "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
        spy = Proc([*argv, "--gil", "--nolineno", "--threads", "--output", str(raw)])
        spy.wait_for_line("Sampling process", 30)
        preproduce(broker, source, events, PARTITIONS)
        timing = watch.wait(events, max(180.0, events / 500), cluster.alive)
        spy.proc.send_signal(signal.SIGINT)  # py-spy writes its file and exits
        if spy.proc.wait(60) != 0:
            raise SystemExit(f"py-spy failed:\n{spy.log()}")
    finally:
        if spy is not None:
            spy.kill()
        code = cluster.stop()
        cluster.kill()
        watch.close()
        delete_topics(broker, containing=tag)
    summary = summarise(raw)
    summary.update(
        events=events,
        rate_profiled=timing.rate,
        raw=str(raw.relative_to(ROOT)),
        exit_code=code,
        sample_rate=rate,
    )
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    print(
        f"\npy-spy on shoal's worker, stateless map, {summary['events']:,} events "
        f"({summary['rate_profiled']:,.0f} events/s while sampled at {summary['sample_rate']} "
        f"Hz), {summary['samples']:,} samples of running threads; raw: {summary['raw']}"
    )
    print("threads: " + ", ".join(f"{t} {s:.0%}" for t, s in summary["threads"]))
    print("own time (innermost Python function, C calls included):")
    for frame, share in summary["own"]:
        print(f"  {share:6.1%}  {frame}")
    print("shoal's functions, including what they call:")
    for frame, share in summary["inclusive"]:
        print(f"  {share:6.1%}  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="127.0.0.1:29092")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    args = parser.parse_args()
    started = time.perf_counter()
    print_summary(profile_adding(args.broker, args.events, args.rate))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

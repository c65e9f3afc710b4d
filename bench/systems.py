"""The systems compare.py puts side by side, each started as processes of its own and timed
from outside the same way: its output topic's end offsets polled as they grow (never the
messages' timestamps), CPU time of its whole process tree (psutil), the output's exact count
checked after it stopped.

- ``bare``: bench_adding.py's confluent-kafka loop (bench/bare_loop.py), the project's .venv.
- ``shoal`` / ``shoal-2w``: ``clusterctl up --workers 1|2`` of bench/cluster_app.py (.venv).
- ``quix``: bench/quix_app.py in the Quix Streams virtualenv.
- ``faust``: ``faust -A bench.faust_app worker`` in the faust-streaming virtualenv.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_cluster import app_env
from bench.common import ROOT, Cluster, Proc, create_topics
from bench.measure import OutputWatch, TreeCpu
from bench.venvs import venv_bin, venv_python

PARTITIONS = 8
NAMES = {
    "bare": "bare confluent-kafka loop",
    "shoal": "shoal (1 worker)",
    "shoal-2w": "shoal (2 workers)",
    "quix": "Quix Streams",
    "faust": "faust-streaming",
}
#: Which systems run each stateless workload (the stateful count and ask are elsewhere).
RUNS_ON = {
    "adding": ("bare", "shoal", "shoal-2w", "quix", "faust"),
    "groupby": ("shoal", "quix", "faust"),
}
FAUST_READY = "[^Worker]: Ready"


@dataclass
class Run:
    """One run of one system: its topics, its own app id / consumer group, its sizes."""

    broker: str
    workload: str  # "adding" or "groupby"
    source: str
    sink: str
    events: int
    tag: str  # unique: the app id / consumer group; the system's internal topics contain it
    tmp: Path  # a directory for its local state
    group_keys: int = 1000  # groupby: the new key is str(a % group_keys)


def faust_env(broker: str, app_id: str, workload: str, tmp: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.update(
        BENCH_APP_ID=app_id,
        BENCH_BROKER=broker,
        BENCH_WORKLOAD=workload,
        BENCH_DATADIR=str(tmp / app_id),
        **extra,
    )
    return env


def faust_worker(env: dict[str, str]) -> Proc:
    faust = venv_bin("faust", "faust")
    return Proc([str(faust), "-A", "bench.faust_app", "worker", "-l", "info", "--without-web"], env)


def launch(system: str, run: Run) -> Proc:
    """Start ``system`` on ``run``: it reads the whole input with a consumer group of its own."""
    if system not in RUNS_ON[run.workload]:
        raise ValueError(f"{system} does not run the {run.workload} workload here")
    if system == "bare":
        argv = [sys.executable, "-m", "bench.bare_loop", run.broker, run.source, run.sink]
        return Proc([*argv, str(run.events)], dict(os.environ, PYTHONPATH=str(ROOT)))
    if system in ("shoal", "shoal-2w"):
        env = app_env(run.broker, run.tag, run.source, run.sink, PARTITIONS, 0)
        group_by = run.group_keys if run.workload == "groupby" else 0
        env.update(SHOAL_LOG_LEVEL="info", BENCH_GROUP_BY=str(group_by))
        return Cluster("bench.cluster_app", 2 if system == "shoal-2w" else 1, env)
    if system == "quix":
        script = ROOT / "bench" / "quix_app.py"
        argv = [str(venv_python("quix")), str(script), run.workload, run.broker, run.tag]
        argv += [run.source, run.sink, str(run.tmp / run.tag), str(run.group_keys)]
        return Proc(argv)
    if system == "faust":
        extra = {"BENCH_IN": run.source, "BENCH_OUT": run.sink}
        extra.update(BENCH_PARTITIONS=str(PARTITIONS), BENCH_GROUP_KEYS=str(run.group_keys))
        return faust_worker(faust_env(run.broker, run.tag, run.workload, run.tmp, **extra))
    raise ValueError(f"unknown system {system!r}")


def throughput(system: str, run: Run) -> dict[str, Any]:
    """Run ``system`` over the whole input: events/s and CPU us/event over the middle of its
    run (``Timing``), then stop it; its output must hold exactly ``run.events`` messages."""
    watch = OutputWatch(run.broker, run.sink, PARTITIONS)
    proc = launch(system, run)
    try:
        timeout = max(180.0, run.events / 500)
        timing = watch.wait(run.events, timeout, proc.alive, TreeCpu(proc.proc.pid))
        # The bare loop ends by itself after its final commit; the others are stopped.
        code = proc.proc.wait(60) if system == "bare" else proc.stop(60)
        total = watch.count()
    except SystemExit as exc:
        raise SystemExit(f"{NAMES[system]}, {run.workload}: {exc}\n{proc.log()}") from None
    finally:
        proc.kill()
        watch.close()
    if total != run.events:
        raise SystemExit(
            f"{NAMES[system]}, {run.workload}: the output holds {total:,} messages, expected "
            f"exactly {run.events:,}\n{proc.log()}"
        )
    if code != 0:
        print(f"  note: {NAMES[system]} exited with {code} when stopped:\n{proc.log(15)}")
    return {
        "rate": timing.rate,
        "cpu_us": timing.cpu_us,
        "rate_first_to_last": timing.rate_first_to_last,
        "seconds_first_to_last": timing.done - timing.first,
        "events_timed": timing.events,
        "exit_code": code,
    }


def faust_ask(
    broker: str, app_id: str, tmp: Path, rate: float, seconds: float, partitions: int
) -> dict[str, Any]:
    """A faust-streaming worker with the ``double`` and ``stamped`` agents, and asks to them
    from a separate faust client process (bench/faust_ask.py): its result line."""
    # The agents' topics exist before the worker subscribes (faust does not make them).
    create_topics(broker, [f"{app_id}-double", f"{app_id}-stamped"], partitions)
    env = faust_env(broker, app_id, "ask", tmp, BENCH_PARTITIONS=str(partitions))
    worker = faust_worker(env)
    try:
        worker.wait_for_line(FAUST_READY, 120)
        python = str(venv_python("faust"))
        argv = [python, "-m", "bench.faust_ask", str(rate), str(seconds), "10"]
        client = Proc(argv, env)
        try:
            line = client.wait_for_line("RESULT ", seconds + 120)
        finally:
            client.stop(10)
        result: dict[str, Any] = json.loads(line.split("RESULT ", 1)[1])
    finally:
        result_code = worker.stop(60)
        worker.kill()
    result["exit_code"] = result_code
    return result

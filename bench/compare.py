"""shoal side by side with a bare confluent-kafka loop, Quix Streams and faust-streaming, in one
run, on the same pre-produced data (docs/benchmarks.md, "Side by side").

    .venv/bin/python bench/compare.py --broker 127.0.0.1:29092 --quick   # under 2 minutes
    .venv/bin/python bench/compare.py --broker 127.0.0.1:29092 --full    # rounds, medians, chart

Workloads: 1. stateless map (the ``adding`` agent), 2. group_by through a repartition topic,
3. ask round trips from a separate process at a fixed rate, 4. shoal with 1 and 2 worker
processes on workload 1, 5. a stateful count (bench_tables.py's). Each system runs from its
own virtualenv (``.cache/bench-venvs/<system>``, made on first use; shoal from ``.venv``).
Every run's output must hold exactly the expected count, or the run stops with the reason.
Results go to ``.cache/bench-results/latest.json`` (and a dated copy), a markdown table to
stdout, and in full mode a chart to ``docs/benchmarks.png`` and py-spy's profile of shoal's
worker on workload 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: bench/ is a package of the repository
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_ask, bench_tables, profile_shoal, report, systems
from bench.common import create_topics, delete_topics, preproduce
from bench.venvs import machine, shoal_versions, versions
from shoal.worker.runner import install_event_loop_policy

BROKER_ENV = "SHOAL_BENCH_BROKER"
WORKLOADS = ("adding", "groupby", "ask", "workers", "count")
SYSTEMS = ("bare", "shoal", "quix", "faust")
MODES: dict[str, dict[str, Any]] = {
    "quick": dict(
        events=40_000,
        rounds=1,
        count_events=40_000,
        count_keys=4_000,
        ask_seconds=3.0,
        faust_skip=("groupby", "ask"),
        profile=False,
        chart=False,
    ),
    "full": dict(
        events=200_000,
        rounds=3,
        count_events=200_000,
        count_keys=10_000,
        ask_seconds=10.0,
        faust_skip=(),
        profile=True,
        chart=True,
    ),
}
ASK_RATE = 200.0
ASK_PARTITIONS = 4
PROFILE_EVENTS = 500_000


def stateless(args: argparse.Namespace, run_id: str, source: str, r: int, tmp: Path) -> None:
    """One round of workloads 1, 2 and 4, the systems in turn (reversed every other round)."""
    for workload in ("adding", "groupby"):
        chosen = [s for s in systems.RUNS_ON[workload] if wanted(args, workload, s)]
        for system in chosen if r % 2 == 0 else chosen[::-1]:
            tag = f"cmp-{run_id}-{workload}-{system}-r{r}"
            sink = f"{tag}-out"
            create_topics(args.broker, [sink], systems.PARTITIONS)
            run = systems.Run(args.broker, workload, source, sink, args.events, tag, tmp)
            print(f"round {r + 1}: {workload}, {systems.NAMES[system]} ...", flush=True)
            try:
                result = systems.throughput(system, run)
            finally:
                delete_topics(args.broker, containing=tag)
            show(result)
            args.results["throughput"].setdefault(workload, {}).setdefault(system, []).append(
                result
            )


def wanted(args: argparse.Namespace, workload: str, system: str) -> bool:
    """Whether ``system`` runs ``workload`` (workload 4 is shoal's two sizes on workload 1)."""
    if system.removesuffix("-2w") not in args.systems:
        return False
    if workload == "adding" and system.startswith("shoal"):
        sizes = {"workers"} if system == "shoal-2w" else {"adding", "workers"}
        return bool(sizes & set(args.workloads))
    if workload not in args.workloads:
        return False
    if system == "faust" and workload in args.faust_skip:
        note(args, f"faust-streaming skipped on {workload} in this mode (it takes long)")
        return False
    return True


def count(args: argparse.Namespace, run_id: str, r: int, tmp: Path) -> None:
    """One round of workload 5: bench_tables.py's stateful count, shoal against Quix Streams."""
    source = f"cmp-{run_id}-count-in"
    chosen: list[tuple[str, bench_tables.System]] = []
    if "shoal" in args.systems:
        chosen.append(("shoal", bench_tables.Shoal(args.broker)))
    if "quix" in args.systems:
        chosen.append(("quix", bench_tables.Quix(args.broker)))
    for system, runner in chosen if r % 2 == 0 else chosen[::-1]:
        print(f"round {r + 1}: count, {systems.NAMES[system]} ...", flush=True)
        result = bench_tables.throughput(
            runner, args.broker, source, args.count_events, args.count_keys, tmp
        )
        show(result)
        args.results["throughput"].setdefault("count", {}).setdefault(system, []).append(result)


def ask(args: argparse.Namespace, run_id: str, r: int, tmp: Path) -> None:
    """One round of workload 3: asks at ASK_RATE from a separate process, shoal and faust."""
    chosen = [s for s in ("shoal", "faust") if wanted(args, "ask", s)]
    for system in chosen if r % 2 == 0 else chosen[::-1]:
        print(f"round {r + 1}: ask, {systems.NAMES[system]} ...", flush=True)
        if system == "shoal":
            ns = argparse.Namespace(
                broker=args.broker,
                rate=ASK_RATE,
                seconds=args.ask_seconds,
                join=0,
                workers=1,
                partitions=ASK_PARTITIONS,
                ask_timeout=10.0,
            )
            res = bench_ask.run_variant(ns, "default", {})
            result: dict[str, Any] = {"first_ask_s": res.first_ask, **res.summary()}
            result.update(second_ask_s=res.second_ask, exit_code=res.exit_code)
        else:
            app_id = f"cmp-{run_id}-ask-faust-r{r}"
            try:
                result = systems.faust_ask(
                    args.broker, app_id, tmp, ASK_RATE, args.ask_seconds, ASK_PARTITIONS
                )
            finally:
                delete_topics(args.broker, containing=app_id)
        print(
            f"  first ask {result['first_ask_s'] * 1000:,.0f} ms; p50 {result['p50_ms']:.2f} "
            f"ms, p99 {result['p99_ms']:.2f} ms, p99.9 {result['p999_ms']:.2f} ms "
            f"({result['count']} asks, {result['timeouts']} timeouts)",
            flush=True,
        )
        args.results["ask"].setdefault(system, []).append(result)


def show(result: dict[str, Any]) -> None:
    cpu = result.get("cpu_us")
    print(
        f"  {result['rate']:,.0f} events/s, "
        + (f"{cpu:.1f} CPU us/event" if cpu else "CPU not measured"),
        flush=True,
    )


def note(args: argparse.Namespace, text: str) -> None:
    if text not in args.results["notes"]:
        args.results["notes"].append(text)
        print(f"note: {text}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default=os.environ.get(BROKER_ENV, "127.0.0.1:29092"))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick")
    mode.add_argument("--full", dest="mode", action="store_const", const="full")
    parser.add_argument("--events", type=int, help="events of workloads 1, 2 and 4")
    parser.add_argument("--rounds", type=int, help="rounds (systems alternate; medians)")
    parser.add_argument("--count-events", type=int, help="events of workload 5")
    parser.add_argument("--count-keys", type=int, help="distinct keys of workload 5")
    parser.add_argument("--ask-seconds", type=float, help="seconds of asks at 200/s")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="a subset of these")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="a subset of these")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--chart", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--output", type=Path, default=report.RESULTS / "latest.json")
    parser.add_argument("--chart-path", type=Path, default=report.CHART)
    args = parser.parse_args(argv)
    args.mode = args.mode or "quick"
    for name, value in MODES[args.mode].items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.systems = [s for s in args.systems.split(",") if s]
    unknown = set(args.workloads) - set(WORKLOADS) | set(args.systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown workloads or systems: {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.pop(BROKER_ENV, None)  # shoal would read it as a setting, and reject it
    install_event_loop_policy()
    started = time.perf_counter()
    run_id = uuid.uuid4().hex[:8]
    args.results = report.new_results(args, machine(), os.getloadavg()[0])
    print(f"compare {args.mode}, run {run_id}, broker {args.broker}", flush=True)
    vers = args.results["versions"]
    vers["shoal"] = shoal_versions()
    for system in ("quix", "faust"):
        if system in args.systems:
            vers[system] = versions(system)  # makes its virtualenv on first use
    tmp = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    source = f"cmp-{run_id}-in"
    try:
        if {"adding", "groupby", "workers"} & set(args.workloads):
            create_topics(args.broker, [source], systems.PARTITIONS)
            preproduce(args.broker, source, args.events, systems.PARTITIONS)
        if "count" in args.workloads:
            count_source = f"cmp-{run_id}-count-in"
            create_topics(args.broker, [count_source], bench_tables.PARTITIONS)
            bench_tables.produce_keyed(
                args.broker, count_source, args.count_events, args.count_keys
            )
        for r in range(args.rounds):
            stateless(args, run_id, source, r, tmp)
            if "ask" in args.workloads:
                ask(args, run_id, r, tmp)
            if "count" in args.workloads:
                count(args, run_id, r, tmp)
        if args.profile and "shoal" in args.systems:
            summary = profile_shoal.profile_adding(args.broker, max(PROFILE_EVENTS, args.events))
            profile_shoal.print_summary(summary)
            args.results["profile"] = summary
    finally:
        delete_topics(args.broker, containing=f"cmp-{run_id}")
        shutil.rmtree(tmp, ignore_errors=True)
    args.results["load_after"] = os.getloadavg()[0]
    args.results["seconds"] = round(time.perf_counter() - started, 1)
    report.finish(args.results)
    paths = report.write(args.results, args.output)
    print(report.markdown(args.results))
    if args.chart:
        print(f"chart: {report.chart(args.output, args.chart_path)}")
    print(f"results: {', '.join(str(p) for p in paths)}; {args.results['seconds']:.0f} s in all")


if __name__ == "__main__":
    main()

"""Run the chaos suite and print its table: ``python -m tests.chaos.run [--full]``.

The short form is what CI runs (as tests/chaos/test_chaos.py); ``--full`` is the one in
docs/reliability.md: 4 workers, 16 partitions, 1,000 events/s, broker pauses of 10 and 60 s
(about 7 minutes).
``ops/chaos`` sets up the virtualenv and runs this.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.chaos.harness import ChaosBroker, Result
from tests.chaos.scenarios import Params, all_scenarios

HEADER = (
    "| scenario | events | lost | duplicates | order violations | recovery (s) | hangs "
    "| asks ok / timed out | slowest ask (s) | first ask past timeout (s) | notes |"
)


def row(r: Result) -> str:
    recovery = "-" if r.recovery is None else f"{r.recovery:.1f}"
    asks = f"{r.asks.ok} / {r.asks.timeouts}"
    hangs = r.hangs + r.asks.hangs
    return (
        f"| {r.scenario} | {r.events:,} | {r.lost} | {r.duplicates:,} | {r.order_violations} "
        f"| {recovery} | {hangs} | {asks} | {r.asks.slowest:.2f} "
        f"| {max(0.0, r.asks.first_ask_overshoot):.2f} | {'; '.join(r.notes)} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the full sizes (about 7 min)")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (supervisors' logs)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s [runner] %(name)s %(levelname)s: %(message)s"
    )
    params = Params.full() if args.full else Params.short()
    scenarios = all_scenarios(params)
    chosen = [name for name in args.only.split(",") if name] or list(scenarios)
    unknown = [name for name in chosen if name not in scenarios]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(scenarios)}")
    workdir = Path(tempfile.mkdtemp(prefix="shoal-chaos-"))
    broker = ChaosBroker(workdir / "kafka")
    broker.start()
    print(f"chaos broker on {broker.bootstrap}; {params}", flush=True)
    results: list[Result] = []
    started = time.monotonic()
    try:
        for name in chosen:
            scene_dir = workdir / name
            scene_dir.mkdir()
            print(f"==> {name}", flush=True)
            try:
                result = scenarios[name](broker, scene_dir, params)
            except Exception:
                traceback.print_exc()
                result = Result(name, hangs=1, notes=["the scenario failed; see above"])
            results.append(result)
            print(row(result), flush=True)
    finally:
        broker.stop()
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{len(results)} scenarios in {time.monotonic() - started:.0f} s\n")
    print(HEADER)
    print("|" + "---|" * 11)
    for result in results:
        print(row(result))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

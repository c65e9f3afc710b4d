"""compare.py's results: the JSON file, the markdown table, the chart (made by bench/plot.py in
the plotting virtualenv: matplotlib is never a dependency of shoal)."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.systems import NAMES
from bench.venvs import venv_python

RESULTS = ROOT / ".cache" / "bench-results"
CHART = ROOT / "docs" / "benchmarks.png"
#: Rows of the throughput table: (label, workload in the results, systems in order).
ROWS = (
    ("1. stateless map", "adding", ("bare", "shoal", "quix", "faust")),
    ("2. group_by", "groupby", ("shoal", "quix", "faust")),
    ("4. stateless map, workers", "adding", ("shoal", "shoal-2w")),
    ("5. stateful count", "count", ("shoal", "quix")),
)
ASK_FIELDS = ("first_ask_ms", "p50_ms", "p99_ms", "p999_ms", "max_ms", "count", "timeouts")


def new_results(args: argparse.Namespace, machine: dict[str, Any], load: float) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": args.mode,
        "command": " ".join([".venv/bin/python", "bench/compare.py", *sys.argv[1:]]),
        "machine": machine,
        "load_before": load,
        "settings": {
            "events": args.events,
            "rounds": args.rounds,
            "count_events": args.count_events,
            "count_keys": args.count_keys,
            "ask_rate": 200,
            "ask_seconds": args.ask_seconds,
            "partitions": 8,
        },
        "versions": {},
        "throughput": {},
        "ask": {},
        "notes": [],
    }


def median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def finish(results: dict[str, Any]) -> None:
    """Medians over the rounds, and each rate's ratio to the bare loop's on workload 1."""
    # The systems' names go with the figures: bench/plot.py runs where shoal is not installed.
    summary: dict[str, Any] = {"throughput": {}, "ask": {}, "names": dict(NAMES)}
    for workload, by_system in results["throughput"].items():
        for system, runs in by_system.items():
            summary["throughput"].setdefault(workload, {})[system] = {
                "rate": median([r["rate"] for r in runs]),
                "cpu_us": median([r.get("cpu_us") for r in runs]),
                "runs": len(runs),
            }
    bare = summary["throughput"].get("adding", {}).get("bare")
    for by_system in summary["throughput"].values():
        for figures in by_system.values():
            figures["vs_bare"] = figures["rate"] / bare["rate"] if bare else None
    for system, runs in results["ask"].items():
        for run in runs:
            run["first_ask_ms"] = run["first_ask_s"] * 1000
        summary["ask"][system] = {f: median([r[f] for r in runs]) for f in ASK_FIELDS}
        summary["ask"][system]["runs"] = len(runs)
    results["summary"] = summary


def write(results: dict[str, Any], output: Path) -> list[Path]:
    """The results as JSON at ``output`` and a dated copy beside it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    stamp = results["date"].replace(":", "").replace("-", "")[:15]
    dated = output.parent / f"compare-{stamp}-{results['mode']}.json"
    text = json.dumps(results, indent=1)
    for path in (output, dated):
        path.write_text(text + "\n")
    return [output, dated]


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def ratio(value: float | None) -> str:
    """2 significant digits, so a ratio of 0.014 does not print as 0.01."""
    return "-" if value is None else f"{value:.2f}x" if value >= 0.1 else f"{value:.3f}x"


def versions_line(versions: dict[str, dict[str, str]]) -> str:
    parts = []
    for found in versions.values():
        main, *rest = found.items()
        extra = ", ".join(f"{k} {v}" for k, v in rest)
        parts.append(f"{main[0]} {main[1]}" + (f" ({extra})" if extra else ""))
    return "; ".join(parts)


def markdown(results: dict[str, Any]) -> str:
    s, m = results["settings"], results["machine"]
    lines = [
        f"\n{results['date']}, {results['mode']} mode, `{results['command']}`",
        f"Machine: {m['cores']} cores, {m['cpu_model']}, {m['memory_gib']} GiB, Python "
        f"{m['python']}; load average {results['load_before']:.1f} before, "
        f"{results.get('load_after', 0):.1f} after; {results.get('seconds', 0):.0f} s in all",
        f"Versions: {versions_line(results['versions'])}",
        f"Sizes: {s['events']:,} events on {s['partitions']} partitions (workloads 1, 2, 4), "
        f"{s['count_events']:,} events over {s['count_keys']:,} keys (5), asks at "
        f"{s['ask_rate']}/s for {s['ask_seconds']:g} s (3); medians of {s['rounds']} round(s)",
        "",
        "| workload | system | events/s | vs bare loop | CPU µs/event | runs |",
        "|---|---|---:|---:|---:|---:|",
    ]
    table = results["summary"]["throughput"]
    for label, workload, order in ROWS:
        for system in order:
            f = table.get(workload, {}).get(system)
            if f is None or (label.startswith("4.") and "shoal-2w" not in table.get("adding", {})):
                continue
            lines.append(
                f"| {label} | {NAMES[system]} | {fmt(f['rate'], ',.0f')} "
                f"| {ratio(f['vs_bare'])} | {fmt(f['cpu_us'], '.1f')} | {f['runs']} |"
            )
    asks = results["summary"]["ask"]
    if asks:
        lines += [
            "",
            "| 3. ask, 200/s | first ask (ms) | p50 (ms) | p99 (ms) | p99.9 (ms) | max (ms) "
            "| asks | timeouts |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for system, a in asks.items():
            lines.append(
                f"| {NAMES[system]} | {a['first_ask_ms']:,.0f} | {a['p50_ms']:.2f} "
                f"| {a['p99_ms']:.2f} | {a['p999_ms']:.2f} | {a['max_ms']:.2f} "
                f"| {a['count']:.0f} | {a['timeouts']:.0f} |"
            )
    lines += [""] + [f"Note: {n}" for n in results["notes"]]
    lines.append(
        "events/s: over the middle 80% of each run's outputs (10% to 90% of them in), timed on "
        "arrival (the output topic's end offsets polled); CPU µs/event: user + system time of "
        "all the system's processes over the same window (psutil); vs bare loop: events/s "
        "over the bare loop's on workload 1 (the bare loop runs workload 1 only)."
    )
    return "\n".join(lines)


def chart(results_json: Path, png: Path) -> Path:
    """The bar chart, drawn by bench/plot.py with the plotting virtualenv's python."""
    python = venv_python("plot")
    subprocess.run(
        [str(python), str(ROOT / "bench" / "plot.py"), str(results_json), str(png)], check=True
    )
    return png

"""compare.py's results as a bar chart: events/s and CPU µs/event per workload and system, and
the ask latencies. Run with the plotting virtualenv's python (matplotlib; never shoal's)::

    .cache/bench-venvs/plot/bin/python bench/plot.py RESULTS.json OUT.png
"""

from __future__ import annotations

import json
import sys
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator

COLORS = {
    "bare": "#9e9e9e",
    "shoal": "#1f77b4",
    "shoal-2w": "#6baed6",
    "quix": "#ff7f0e",
    "faust": "#2ca02c",
}
#: The systems' names, from the results (bench/systems.py has them).
NAMES: dict[str, str] = {}
GROUPS = (
    ("adding", "1. stateless map"),
    ("groupby", "2. group_by"),
    ("count", "5. stateful count"),
)


def bars(ax: Any, table: dict[str, Any], field: str, title: str) -> None:
    """One group of bars per workload, holding only the systems that ran it."""
    labelled: set[str] = set()
    for g, (workload, _) in enumerate(GROUPS):
        present = [s for s in COLORS if table.get(workload, {}).get(s, {}).get(field)]
        width = 0.8 / max(1, len(present))
        for i, system in enumerate(present):
            x = g + (i - (len(present) - 1) / 2) * width
            value = table[workload][system][field]
            label = NAMES[system] if system not in labelled else None
            labelled.add(system)
            drawn = ax.bar([x], [value], width, label=label, color=COLORS[system])
            ax.bar_label(drawn, fmt="{:,.0f}" if field == "rate" else "{:.1f}", fontsize=7)
    ax.set_xticks(range(len(GROUPS)), [label for _, label in GROUPS])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)


def main() -> None:
    with open(sys.argv[1]) as f:
        results = json.load(f)
    NAMES.update(results["summary"]["names"])
    summary = results["summary"]
    asks = summary["ask"]
    fig, axes = plt.subplots(1, 3 if asks else 2, figsize=(16 if asks else 11, 4.8))
    bars(axes[0], summary["throughput"], "rate", "events/s (higher is better)")
    bars(axes[1], summary["throughput"], "cpu_us", "CPU µs per event, log scale (lower is better)")
    axes[1].set_yscale("log")
    axes[1].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].legend(fontsize=8)
    if asks:
        ax = axes[2]
        fields = (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"))
        width = 0.8 / len(asks)
        for i, (system, figures) in enumerate(asks.items()):
            xs = [f + (i - (len(asks) - 1) / 2) * width for f in range(len(fields))]
            ys = [figures[name] for name, _ in fields]
            label = f"{NAMES[system]} (first ask {figures['first_ask_ms'] / 1000:.1f} s)"
            drawn = ax.bar(xs, ys, width, label=label, color=COLORS[system])
            ax.bar_label(drawn, fmt="{:.1f}", fontsize=7)
        ax.set_xticks(range(len(fields)), [label for _, label in fields])
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_title("3. ask round trip at 200/s, ms (lower is better)")
        ax.legend(fontsize=8)
    m = results["machine"]
    fig.suptitle(
        f"{results['date'][:10]}, {m['cores']} cores ({m['cpu_model']}), broker on the same "
        f"machine; {results['mode']} mode, medians of {results['settings']['rounds']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()

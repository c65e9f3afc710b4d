"""A table's keys and values drawn as a terminal table (Faust's ``as_ansitable``)."""

from __future__ import annotations

from typing import Any


def draw(
    title: str,
    rows: list[tuple[str, str]],
    *,
    key: str = "Key",
    value: str = "Value",
    sort: bool = False,
    sortkey: Any = None,
    target: Any = None,
) -> str:
    """A box-drawn table of ``rows`` under ``title``; Faust's keyword names are accepted."""
    if sort or sortkey is not None:
        rows = sorted(rows, key=sortkey or (lambda r: r[0]))
    widths = [
        max([len(key), *(len(r[0]) for r in rows)]),
        max([len(value), *(len(r[1]) for r in rows)]),
    ]
    width = widths[0] + widths[1] + 3

    def line(left: str, mid: str, right: str) -> str:
        return left + "─" * (widths[0] + 2) + mid + "─" * (widths[1] + 2) + right

    def row(a: str, b: str) -> str:
        return f"│ {a.ljust(widths[0])} │ {b.ljust(widths[1])} │"

    out = ["┌" + "─" * (width + 2) + "┐", f"│ {title[:width].ljust(width)} │"]
    out += [line("├", "┬", "┤"), row(key, value), line("├", "┼", "┤")]
    out += [row(a, b) for a, b in rows]
    out.append(line("└", "┴", "┘"))
    return "\n".join(out)

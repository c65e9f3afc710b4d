"""Which windowed keys of each partition end when, so that they close once they expire."""

from __future__ import annotations

import heapq
from collections import defaultdict
from typing import Any

from shoal.tables.windows import Window


def is_windowed(key: Any) -> bool:
    """True for a windowed table's key, ``(key, (start, end))``."""
    return isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], tuple)


class Expiry:
    """Which windowed keys of each partition end when, to close them once they expire."""

    def __init__(self) -> None:
        self._ends: dict[int, list[float]] = defaultdict(list)
        self._keys: dict[tuple[int, float], set[Any]] = defaultdict(set)
        #: The latest window end seen per partition (Faust's relative_to_now in an agent).
        self.latest: dict[int, float] = defaultdict(float)

    def add(self, partition: int, wkey: Any) -> None:
        end = wkey[1][1]
        keys = self._keys[(partition, end)]
        if not keys:
            heapq.heappush(self._ends[partition], end)
        keys.add(wkey)
        if end > self.latest[partition]:
            self.latest[partition] = end

    def discard(self, partition: int, wkey: Any) -> None:
        keys = self._keys.get((partition, wkey[1][1]))
        if keys is not None:
            keys.discard(wkey)

    def stale(self, partition: int, window: Window, now: float) -> list[Any]:
        """The keys of ``partition`` whose window expired at ``now``, oldest first."""
        ends = self._ends.get(partition)
        out: list[Any] = []
        while ends and window.stale(ends[0], now):
            end = heapq.heappop(ends)
            out.extend(sorted(self._keys.pop((partition, end), ()), key=repr))
        return out

    def drop(self, partition: int) -> None:
        self._ends.pop(partition, None)
        self.latest.pop(partition, None)
        for key in [k for k in self._keys if k[0] == partition]:
            del self._keys[key]

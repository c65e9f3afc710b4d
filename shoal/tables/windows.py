"""Window types: which time ranges an event's timestamp falls in, and when a range is stale.

Faust's semantics, so that a windowed Faust program counts the same: a range is
``(start, start + size - 0.1)``; a hopping window of ``size`` and ``step`` puts a timestamp in
every range that covers it (``size / step`` of them), the latest one is ``current``; a range
expires ``expires`` seconds after the latest range of its partition. Sliding windows are
Quix Streams' (a range of ``before`` seconds up to each event), which Faust defines but its
tables cannot use; here they can.
"""

from __future__ import annotations

import math
from datetime import timedelta

#: ``(start, end)`` of one window, in seconds since the epoch.
WindowRange = tuple[float, float]


def seconds(value: float | timedelta | None) -> float | None:
    """Faust's ``Seconds``: a number of seconds or a timedelta."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _positive(name: str, value: float | timedelta) -> float:
    out = seconds(value)
    if out is None or out <= 0:
        raise ValueError(f"a window's {name} must be more than 0 seconds, not {value!r}")
    return out


def range_from_start(start: float, size: float) -> WindowRange:
    return (start, start + size - 0.1)


class Window:
    """What every window type answers."""

    expires: float | None

    def ranges(self, timestamp: float) -> list[WindowRange]:
        """Every range ``timestamp`` falls in, oldest first."""
        raise NotImplementedError

    def current(self, timestamp: float) -> WindowRange:
        """The latest range ``timestamp`` falls in."""
        raise NotImplementedError

    def earliest(self, timestamp: float) -> WindowRange:
        """The oldest range ``timestamp`` falls in."""
        raise NotImplementedError

    def delta(self, timestamp: float, d: float | timedelta) -> WindowRange:
        """The current range of ``d`` seconds before ``timestamp``."""
        return self.current(timestamp - (seconds(d) or 0.0))

    def stale(self, end: float, now: float) -> bool:
        """True when a range that ends at ``end`` has expired at ``now`` (Faust's rule: it
        ended before the current range of ``expires`` seconds ago started)."""
        if self.expires is None:
            return False
        return end <= self.current(now - self.expires)[0]


class HoppingWindow(Window):
    """Fixed-size, overlapping windows that start every ``step`` seconds."""

    def __init__(
        self,
        size: float | timedelta,
        step: float | timedelta,
        expires: float | timedelta | None = None,
    ) -> None:
        self.size = _positive("size", size)
        self.step = _positive("step", step)
        if self.step > self.size:
            raise ValueError(
                f"a hopping window's step ({self.step:g} s) must not be longer than its size "
                f"({self.size:g} s): events between two windows would be counted in none"
            )
        self.expires = seconds(expires) or None

    def _first_start(self, timestamp: float) -> float:
        return (timestamp // self.step) * self.step - self.size + self.step

    def ranges(self, timestamp: float) -> list[WindowRange]:
        first = self._first_start(timestamp)
        count = max(1, round(self.size / self.step))
        return [range_from_start(first + i * self.step, self.size) for i in range(count)]

    def current(self, timestamp: float) -> WindowRange:
        first = self._first_start(timestamp)
        m = math.floor((timestamp - first) / self.step)
        return range_from_start(first + self.step * m, self.size)

    def earliest(self, timestamp: float) -> WindowRange:
        return range_from_start(self._first_start(timestamp), self.size)

    def __repr__(self) -> str:
        return f"HoppingWindow(size={self.size:g}, step={self.step:g}, expires={self.expires})"


class TumblingWindow(HoppingWindow):
    """Fixed-size windows without gaps or overlaps: a hopping window whose step is its size."""

    def __init__(self, size: float | timedelta, expires: float | timedelta | None = None) -> None:
        super().__init__(size, size, expires)

    def __repr__(self) -> str:
        return f"TumblingWindow(size={self.size:g}, expires={self.expires})"


class SlidingWindow(Window):
    """A window around each event: from ``before`` seconds before it to ``after`` seconds
    after it (Quix Streams' sliding windows take ``after=0``)."""

    def __init__(
        self,
        before: float | timedelta,
        after: float | timedelta = 0.0,
        expires: float | timedelta | None = None,
    ) -> None:
        self.before = _positive("before", before)
        self.after = seconds(after) or 0.0
        self.expires = seconds(expires) or None

    def ranges(self, timestamp: float) -> list[WindowRange]:
        return [self.current(timestamp)]

    def current(self, timestamp: float) -> WindowRange:
        return (timestamp - self.before, timestamp + self.after)

    def earliest(self, timestamp: float) -> WindowRange:
        return self.current(timestamp)

    def __repr__(self) -> str:
        return f"SlidingWindow(before={self.before:g}, after={self.after:g})"

"""When a worker slot that keeps crashing may start again.

A crash-looping worker must never take its healthy siblings down (the supervisor gives up only
on an app that cannot boot, as gunicorn does), nor burn a core restarting: each slot restarts
at once after a crash, then waits 0.5 s, 1 s, 2 s ... up to ``max_delay`` while it keeps
crashing. A worker that stayed up ``reset_after`` seconds is healthy again, and its next crash
restarts at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

FIRST_DELAY = 0.5


class RestartBackoff:
    """The restart delays of one worker slot.

    ``clock`` is injectable so tests move time without sleeping; it must be monotonic.

    >>> backoff = RestartBackoff(max_delay=30.0, reset_after=60.0)
    >>> [backoff.crashed(started_at=backoff.now()) for _ in range(4)]
    [0.0, 0.5, 1.0, 2.0]
    """

    def __init__(
        self,
        max_delay: float,
        reset_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_delay < 0:
            raise ValueError(f"max_delay must be >= 0 seconds, got {max_delay}")
        if reset_after <= 0:
            raise ValueError(f"reset_after must be > 0 seconds, got {reset_after}")
        self.max_delay = max_delay
        self.reset_after = reset_after
        self._clock = clock
        #: Crashes in a row, each within ``reset_after`` of its start.
        self.streak = 0

    def now(self) -> float:
        return self._clock()

    def running(self, started_at: float) -> None:
        """A process started at ``started_at`` is running: once it ran ``reset_after``
        seconds its slot is healthy again (the streak shown in status and metrics is 0)."""
        if self.streak and self._clock() - started_at >= self.reset_after:
            self.streak = 0

    def crashed(self, started_at: float) -> float:
        """Record a crash of a process started at ``started_at`` (this clock's time); returns
        the seconds to wait before starting the next one."""
        if self._clock() - started_at >= self.reset_after:
            self.streak = 0  # it ran long enough to count as healthy
        self.streak += 1
        if self.streak == 1:
            return 0.0
        return min(self.max_delay, FIRST_DELAY * 2.0 ** (self.streak - 2))

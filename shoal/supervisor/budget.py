"""How many worker restarts the supervisor tolerates before it gives up.

A worker that crashes on every start would otherwise be respawned forever; like a systemd
``StartLimitBurst``, the supervisor allows ``max_restarts`` within a sliding ``window`` and exits
non-zero past that, so the failure surfaces to whoever runs the supervisor.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RestartBudget:
    """At most ``max_restarts`` restarts within any ``window`` seconds.

    ``clock`` is injectable so tests can move time without sleeping; it must be monotonic
    (wall-clock jumps would empty or overfill the window).

    >>> budget = RestartBudget(max_restarts=1, window=60.0)
    >>> budget.record()
    True
    >>> budget.record()
    False
    """

    def __init__(
        self,
        max_restarts: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {max_restarts}")
        if window <= 0:
            raise ValueError(f"window must be > 0 seconds, got {window}")
        self.max_restarts = max_restarts
        self.window = window
        self._clock = clock
        self._times: deque[float] = deque()

    def record(self) -> bool:
        """Record a restart now; False once more than ``max_restarts`` fall within the window.

        False means the budget is exhausted: the supervisor should stop rather than restart.
        """
        now = self._clock()
        self._expire(now)
        self._times.append(now)
        return len(self._times) <= self.max_restarts

    def recent(self) -> int:
        """How many restarts fall within the window ending now."""
        self._expire(self._clock())
        return len(self._times)

    def _expire(self, now: float) -> None:
        # A restart exactly `window` seconds old has left the window.
        horizon = now - self.window
        while self._times and self._times[0] <= horizon:
            self._times.popleft()

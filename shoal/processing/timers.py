"""Timers and crontabs: coroutines an app runs on a schedule, in every worker or on the leader.

Faust's semantics, which programs written for it rely on:

- ``@app.timer(interval)`` first runs one interval after the worker started, then every
  ``interval`` seconds *after the previous run ended* (the time the function takes is added
  to the period); a late or early wake-up is corrected on the next sleep by at most
  ``max_drift_correction`` seconds.
- ``@app.crontab(cron_format, timezone=...)`` runs at each time the cron expression names, in
  ``timezone`` (the app's ``timezone`` setting by default, UTC unless set), never at start.
- ``on_leader=True`` runs the function only in the one process of the whole cluster that
  is the leader at that moment; the others wake up and skip.
- The function gets the app if it takes an argument. An exception crashes the worker, as
  it does in Faust: catch what the function may raise if it should carry on.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from shoal.exceptions import ConfigError

log = logging.getLogger(__name__)

TimerFun = Callable[..., Coroutine[Any, Any, Any]]
#: Sleeps up to its argument; returns early (True) when the app stops.
Sleep = Callable[[float], Awaitable[bool]]


def takes_app(fun: Callable[..., Any]) -> bool:
    """True when ``fun`` wants the app as its argument (Faust passes it to those that do)."""
    return len(inspect.signature(fun).parameters) >= 1


@dataclass
class Timer:
    """``@app.timer(interval)``: see the module docstring."""

    fun: TimerFun
    interval: float
    on_leader: bool = False
    name: str = ""
    max_drift_correction: float = 0.1

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ConfigError(f"timer {self.name!r}: the interval must be > 0, not {self.interval}")
        self.name = self.name or self.fun.__qualname__

    async def run(self, sleep: Sleep, is_leader: Callable[[], bool], app: Any) -> None:
        """Call the function on schedule until ``sleep`` says the app stops."""
        args = (app,) if takes_app(self.fun) else ()
        delay = self.interval
        while True:
            asleep = time.monotonic()
            if await sleep(delay):
                return
            slept = time.monotonic() - asleep
            delay = next_delay(self.interval, delay, slept, self.max_drift_correction)
            if self.on_leader and not is_leader():
                continue
            began = time.monotonic()
            await self.fun(*args)
            took = time.monotonic() - began
            if took > self.interval:
                log.warning(
                    "timer %s took %.2f s, longer than its interval of %.2f s",
                    self.name,
                    took,
                    self.interval,
                )


def next_delay(interval: float, last_delay: float, slept: float, max_correction: float) -> float:
    """The next sleep: ``interval``, corrected by how far the last one overshot (or fell
    short of) what was asked, by at most ``max_correction`` either way (none for intervals
    not longer than the correction)."""
    if interval <= max_correction:
        return interval
    drift = last_delay - slept  # < 0: woke up late, so sleep less next time
    correction = max(-max_correction, min(max_correction, drift))
    return interval + correction


def zone(name: str | tzinfo | None) -> tzinfo | None:
    """A time zone from its IANA name (``'Europe/Oslo'``) or a tzinfo; None stays None."""
    if name is None or isinstance(name, tzinfo):
        return name
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}: expected an IANA name such as 'UTC' or 'Europe/Oslo'"
        ) from None


def next_time(cron_format: str, after: datetime, tz: tzinfo) -> datetime:
    """The first time after ``after`` that ``cron_format`` names, read in ``tz``:
    ``'30 9 * * mon-fri'`` in Europe/Oslo is 09:30 Oslo time, on either side of a
    daylight-saving change."""
    following: datetime = croniter(cron_format, after.astimezone(tz)).get_next(datetime)
    return following


@dataclass
class Crontab:
    """``@app.crontab(cron_format)``: see the module docstring."""

    fun: TimerFun
    cron_format: str
    timezone: tzinfo | None = None  # None: the app's ``timezone`` setting
    on_leader: bool = False

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron_format):
            raise ConfigError(
                f"crontab {self.fun.__qualname__}: {self.cron_format!r} is not a cron "
                "expression (five fields: minute hour day-of-month month day-of-week)"
            )

    async def run(
        self, sleep: Sleep, is_leader: Callable[[], bool], app: Any, default_tz: tzinfo
    ) -> None:
        """Call the function at each time the expression names, until the app stops."""
        args = (app,) if takes_app(self.fun) else ()
        tz = self.timezone or default_tz
        target = next_time(self.cron_format, datetime.now(tz), tz)
        while True:
            if await sleep(max(0.0, target.timestamp() - time.time())):
                return
            if not self.on_leader or is_leader():
                await self.fun(*args)
            # From the time just served, not from the clock (a timer may wake a hair early,
            # and must not serve the same time twice); after a long run, from now.
            target = next_time(self.cron_format, max(target, datetime.now(tz)), tz)

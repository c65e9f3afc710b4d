"""Timers and crontabs, on a clock the test drives: when they call, on whom, in which zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shoal.exceptions import ConfigError
from shoal.processing.timers import Crontab, Timer, next_delay, next_time, zone


class Clock:
    """A ``sleep`` that returns at once, records what was asked, and says "stop" after
    ``rounds`` sleeps."""

    def __init__(self, rounds: int) -> None:
        self.asked: list[float] = []
        self.rounds = rounds

    async def sleep(self, seconds: float) -> bool:
        self.asked.append(seconds)
        return len(self.asked) > self.rounds


async def test_a_timer_calls_after_each_interval_with_the_app_if_it_wants_it() -> None:
    calls: list[Any] = []

    async def with_app(app: Any) -> None:
        calls.append(app)

    async def without() -> None:
        calls.append("-")

    clock = Clock(rounds=3)
    await Timer(with_app, 2.0).run(clock.sleep, lambda: True, "the app")
    assert calls == ["the app"] * 3
    assert clock.asked[0] == 2.0  # the first call comes one interval after the start
    calls.clear()
    await Timer(without, 2.0).run(Clock(rounds=2).sleep, lambda: True, "the app")
    assert calls == ["-", "-"]


async def test_a_leader_timer_skips_its_calls_while_this_process_is_not_the_leader() -> None:
    leading = iter([False, True, False, True])
    calls: list[int] = []

    async def tick() -> None:
        calls.append(1)

    await Timer(tick, 1.0, on_leader=True).run(Clock(rounds=4).sleep, lambda: next(leading), None)
    assert len(calls) == 2


async def test_an_exception_in_a_timer_reaches_its_runner() -> None:
    async def boom() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await Timer(boom, 1.0).run(Clock(rounds=5).sleep, lambda: True, None)


def test_drift_is_corrected_by_at_most_max_drift_correction() -> None:
    assert next_delay(5.0, 5.0, 5.05, 0.1) == pytest.approx(4.95)  # woke 50 ms late
    assert next_delay(5.0, 5.0, 6.0, 0.1) == pytest.approx(4.9)  # a second late: capped
    assert next_delay(5.0, 5.0, 4.8, 0.1) == pytest.approx(5.1)  # early
    assert next_delay(0.05, 0.05, 0.2, 0.1) == 0.05  # not for intervals under the cap


def test_a_timer_needs_a_positive_interval() -> None:
    async def tick() -> None: ...

    with pytest.raises(ConfigError, match="interval must be > 0"):
        Timer(tick, 0.0)


def test_cron_times_are_read_in_their_zone_across_daylight_saving() -> None:
    oslo = ZoneInfo("Europe/Oslo")
    # 09:30 in Oslo is 07:30 UTC in summer and 08:30 UTC in winter.
    summer = next_time("30 9 * * *", datetime(2026, 6, 1, 0, 0, tzinfo=oslo), oslo)
    winter = next_time("30 9 * * *", datetime(2026, 12, 1, 0, 0, tzinfo=oslo), oslo)
    assert summer.astimezone(ZoneInfo("UTC")).hour == 7
    assert winter.astimezone(ZoneInfo("UTC")).hour == 8
    # A time the change skips (02:30 on 29 March 2026) moves to the next that exists.
    skipped = next_time("30 2 * * *", datetime(2026, 3, 28, 23, 0, tzinfo=oslo), oslo)
    assert skipped.day == 29 and skipped.utcoffset() is not None
    # Strictly after: the time just served is never served twice.
    at = datetime(2026, 6, 1, 9, 30, tzinfo=oslo)
    assert next_time("30 9 * * *", at, oslo).day == 2


async def test_a_crontab_sleeps_until_each_time_in_its_zone() -> None:
    calls: list[int] = []

    async def job() -> None:
        calls.append(1)

    clock = Clock(rounds=2)
    kathmandu = ZoneInfo("Asia/Kathmandu")
    now = datetime.now(kathmandu)
    # Every day at the minute after next, Kathmandu time: at most 2 minutes away there.
    minute = (now.minute + 2) % 60
    hour = (now.hour + (now.minute + 2) // 60) % 24
    await Crontab(job, f"{minute} {hour} * * *", kathmandu).run(
        clock.sleep, lambda: True, None, ZoneInfo("UTC")
    )
    assert calls == [1, 1]
    assert 60 <= clock.asked[0] <= 120 + 1  # read in UTC it would be hours away
    assert clock.asked[1] > 23 * 3600  # the next one: the same minute tomorrow


def test_a_bad_cron_expression_or_zone_is_refused_with_what_is_wrong() -> None:
    async def job() -> None: ...

    with pytest.raises(ConfigError, match="not a cron expression"):
        Crontab(job, "every day")
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")
    assert zone(None) is None and zone("UTC") == ZoneInfo("UTC")

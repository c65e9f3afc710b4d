"""Restart delays of a crash-looping worker slot: immediate, then doubling, capped, reset."""

from __future__ import annotations

import pytest

from shoal.supervisor.backoff import RestartBackoff


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_crash_restarts_at_once_then_the_delay_doubles_up_to_the_cap() -> None:
    clock = FakeClock()
    backoff = RestartBackoff(max_delay=5.0, reset_after=60.0, clock=clock)
    delays = []
    for _ in range(7):
        started = clock.now
        clock.now += 0.1  # crashes right after each start
        delays.append(backoff.crashed(started))
        clock.now += delays[-1]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.streak == 7


def test_a_worker_that_ran_long_enough_restarts_at_once_again() -> None:
    clock = FakeClock()
    backoff = RestartBackoff(max_delay=30.0, reset_after=60.0, clock=clock)
    for _ in range(4):
        backoff.crashed(clock.now)
    assert backoff.streak == 4
    started = clock.now
    clock.now += 61.0  # healthy for over reset_after
    assert backoff.crashed(started) == 0.0
    assert backoff.streak == 1


def test_a_crash_just_short_of_healthy_keeps_backing_off() -> None:
    clock = FakeClock()
    backoff = RestartBackoff(max_delay=30.0, reset_after=60.0, clock=clock)
    backoff.crashed(clock.now)
    started = clock.now
    clock.now += 59.0
    assert backoff.crashed(started) == 0.5


@pytest.mark.parametrize(("max_delay", "reset_after"), [(-1.0, 60.0), (30.0, 0.0)])
def test_invalid_arguments_are_refused(max_delay: float, reset_after: float) -> None:
    with pytest.raises(ValueError):
        RestartBackoff(max_delay, reset_after)

from __future__ import annotations

import pytest

from shoal.supervisor.budget import RestartBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_restarts_within_budget_are_allowed_then_exhausted() -> None:
    clock = FakeClock()
    budget = RestartBudget(max_restarts=3, window=60.0, clock=clock)
    assert [budget.record() for _ in range(3)] == [True, True, True]
    assert budget.record() is False
    assert budget.recent() == 4


def test_old_restarts_slide_out_of_the_window() -> None:
    clock = FakeClock()
    budget = RestartBudget(max_restarts=2, window=60.0, clock=clock)
    assert budget.record()
    clock.now += 30
    assert budget.record()
    clock.now += 30  # the first restart is now exactly one window old: it no longer counts
    assert budget.recent() == 1
    assert budget.record()
    assert budget.recent() == 2
    clock.now += 1
    assert budget.record() is False


def test_recent_counts_nothing_after_a_quiet_window() -> None:
    clock = FakeClock()
    budget = RestartBudget(max_restarts=5, window=10.0, clock=clock)
    for _ in range(4):
        budget.record()
    assert budget.recent() == 4
    clock.now += 10.5
    assert budget.recent() == 0


def test_a_crash_loop_exhausts_the_budget_however_long_it_runs() -> None:
    clock = FakeClock()
    budget = RestartBudget(max_restarts=5, window=60.0, clock=clock)
    results = []
    for _ in range(10):
        results.append(budget.record())
        clock.now += 1
    assert results == [True] * 5 + [False] * 5


def test_zero_restarts_allowed_means_the_first_crash_stops() -> None:
    budget = RestartBudget(max_restarts=0, window=60.0, clock=FakeClock())
    assert budget.record() is False


@pytest.mark.parametrize(("max_restarts", "window"), [(-1, 60.0), (3, 0.0)])
def test_invalid_arguments_are_rejected(max_restarts: int, window: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        RestartBudget(max_restarts, window)

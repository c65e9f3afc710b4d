from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.supervisor.assignment import TP, moves, plan, worker_for

topics = st.sampled_from(["orders", "payments", "users.v2", "t"])
tps = st.sets(st.tuples(topics, st.integers(min_value=0, max_value=63)), max_size=60)
worker_counts = st.integers(min_value=1, max_value=12)


def apply(
    old: dict[int, set[TP]], revoke: dict[int, set[TP]], assign: dict[int, set[TP]]
) -> dict[int, set[TP]]:
    """What the supervisor ends with after revoking, then assigning."""
    result: dict[int, set[TP]] = {}
    for index in old.keys() | revoke.keys() | assign.keys():
        before = old.get(index, set())
        # A revoke must name only partitions the worker owns; an assign only new ones.
        assert revoke.get(index, set()) <= before
        assert not assign.get(index, set()) & before
        result[index] = (before - revoke.get(index, set())) | assign.get(index, set())
    return result


def non_empty(owned: dict[int, set[TP]]) -> dict[int, set[TP]]:
    return {index: tp_set for index, tp_set in owned.items() if tp_set}


def test_worker_for_is_partition_modulo_workers() -> None:
    assert [worker_for(p, 3) for p in range(7)] == [0, 1, 2, 0, 1, 2, 0]


@pytest.mark.parametrize("workers", [0, -1])
def test_no_workers_is_an_error(workers: int) -> None:
    with pytest.raises(ValueError, match="workers must be >= 1"):
        plan([("t", 0)], workers)


def test_every_worker_is_a_key_even_with_nothing_to_do() -> None:
    assert plan([("t", 0)], 3) == {0: {("t", 0)}, 1: set(), 2: set()}


@given(tps, worker_counts)
def test_plan_is_disjoint_and_complete(partitions: set[TP], workers: int) -> None:
    owned = plan(partitions, workers)
    assert set(owned) == set(range(workers))
    flat = [tp for tp_set in owned.values() for tp in tp_set]
    assert len(flat) == len(set(flat))
    assert set(flat) == partitions


@given(tps, worker_counts)
def test_plan_keeps_co_partitioned_topics_together(partitions: set[TP], workers: int) -> None:
    owner_of_number: dict[int, int] = {}
    for index, tp_set in plan(partitions, workers).items():
        for _topic, number in tp_set:
            assert owner_of_number.setdefault(number, index) == index


@given(tps, worker_counts, tps, worker_counts)
def test_moves_applied_to_old_give_new(
    old_tps: set[TP], old_workers: int, new_tps: set[TP], new_workers: int
) -> None:
    old = plan(old_tps, old_workers)
    new = plan(new_tps, new_workers)
    revoke, assign = moves(old, new)
    assert non_empty(apply(old, revoke, assign)) == non_empty(new)
    # Only workers with something to do are mentioned.
    assert all(revoke.values()) and all(assign.values())


@given(tps, worker_counts, worker_counts)
def test_scaling_moves_only_what_changes_owner(
    partitions: set[TP], before: int, after: int
) -> None:
    revoke, assign = moves(plan(partitions, before), plan(partitions, after))
    revoked = {tp for tp_set in revoke.values() for tp in tp_set}
    assigned = {tp for tp_set in assign.values() for tp in tp_set}
    assert revoked == assigned == {tp for tp in partitions if tp[1] % before != tp[1] % after}


def test_scaling_down_revokes_everything_from_the_removed_worker() -> None:
    old = plan([("t", 0), ("t", 1), ("t", 2)], 3)
    revoke, assign = moves(old, plan([("t", 0), ("t", 1), ("t", 2)], 2))
    assert revoke == {2: {("t", 2)}}
    assert assign == {0: {("t", 2)}}

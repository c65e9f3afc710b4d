from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shoal.runtime.offsets import PartitionOffsets


def test_in_order_acks_advance_one_by_one() -> None:
    p = PartitionOffsets("t", 0)
    for offset in (5, 6, 7):
        p.delivered(offset, 1)
    assert p.committable() is None
    p.ack(5)
    assert p.committable() == 6
    p.ack(6)
    p.ack(7)
    assert p.committable() == 8
    assert p.in_flight == 0


def test_a_gap_holds_the_commit_back() -> None:
    p = PartitionOffsets("t", 0)
    for offset in range(10, 14):
        p.delivered(offset, 1)
    p.ack(11)
    p.ack(12)
    p.ack(13)
    assert p.committable() is None
    p.ack(10)
    assert p.committable() == 14


def test_two_subscribers_both_must_ack() -> None:
    p = PartitionOffsets("t", 0)
    p.delivered(0, 2)
    p.ack(0)
    assert p.committable() is None
    p.ack(0)
    assert p.committable() == 1


def test_message_without_subscribers_is_done_once_those_before_are() -> None:
    p = PartitionOffsets("t", 0)
    p.delivered(0, 1)
    p.delivered(1, 0)
    assert p.committable() is None
    p.ack(0)
    assert p.committable() == 2
    p.delivered(2, 0)
    assert p.committable() == 3


def test_committed_offset_is_not_offered_again() -> None:
    p = PartitionOffsets("t", 0)
    p.delivered(0, 1)
    p.ack(0)
    assert p.committable() == 1
    p.committed = 1
    assert p.committable() is None


@given(st.permutations(list(range(30))), st.integers(min_value=0, max_value=29))
def test_never_commits_past_an_unacked_offset(order: list[int], hole: int) -> None:
    p = PartitionOffsets("t", 0)
    for offset in range(30):
        p.delivered(offset, 1)
    for offset in order:
        if offset != hole:
            p.ack(offset)
    assert (p.committable() or 0) <= hole
    p.ack(hole)
    assert p.committable() == 30

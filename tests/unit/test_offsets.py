from __future__ import annotations

from typing import Any

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


def test_an_ack_of_an_offset_already_done_changes_nothing() -> None:
    p = PartitionOffsets("t", 0)
    p.delivered_each([3, 4])
    p.ack(3)
    p.ack(3)  # a second ack of 3 (not made by an Event, which acks once)
    p.ack(2)  # never delivered here
    assert p.committable() == 4 and p.in_flight == 1


@given(
    st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=25),
    st.randoms(use_true_random=False),
)
def test_commits_follow_the_oldest_message_not_done_whatever_the_subscribers(
    subscribers: list[int], rnd: Any
) -> None:
    # Each offset went to 0-3 subscribers; their acks come in any order. The committable
    # offset is always the oldest offset with an ack missing.
    p = PartitionOffsets("t", 0)
    for offset, n in enumerate(subscribers):
        p.delivered(offset, n)
    acks = [offset for offset, n in enumerate(subscribers) for _ in range(n)]
    rnd.shuffle(acks)
    missing = list(subscribers)

    def oldest_not_done() -> int:
        return next((o for o, left in enumerate(missing) if left), len(missing))

    assert (p.done or 0) == oldest_not_done()
    for offset in acks:
        p.ack(offset)
        missing[offset] -= 1
        assert (p.done or 0) == oldest_not_done()
    assert p.committable() == len(subscribers) and p.in_flight == 0

"""The commit loop with no Kafka: the barrier before every commit, what a round commits, and
which failures stop the worker."""

from __future__ import annotations

from collections import Counter

import pytest

from shoal.config import load_settings
from shoal.kafka.producer import DeliveryError, DeliveryTimeout
from shoal.runtime.committer import MIN_COMMIT_INTERVAL, Committer
from shoal.runtime.offsets import PartitionOffsets
from shoal.types import TP


class Target:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.commits: list[dict[TP, int]] = []

    async def commit(self, offsets: dict[TP, int]) -> bool:
        self.commits.append(offsets)
        return self.ok


class Barrier:
    def __init__(self) -> None:
        self.calls = 0
        self.error: Exception | None = None

    async def __call__(self, timeout: float) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


def setup(target: Target, barrier: Barrier) -> tuple[Committer, dict[TP, PartitionOffsets], list]:
    conf = load_settings({"broker_commit_interval": 2.0}, env={}, config_file=False)
    offsets: dict[TP, PartitionOffsets] = {}
    crashes: list[BaseException] = []
    committer = Committer(conf, offsets, barrier, target, crashes.append, Counter())
    return committer, offsets, crashes


def done_through(tracker: PartitionOffsets, last: int) -> None:
    for offset in range(last + 1):
        tracker.delivered(offset, 1)
        tracker.ack(offset)


async def test_a_round_waits_for_the_barrier_then_commits_what_is_done() -> None:
    target, barrier = Target(), Barrier()
    committer, offsets, _ = setup(target, barrier)
    offsets[("t", 0)] = tracker = PartitionOffsets("t", 0)
    done_through(tracker, 4)
    tracker.delivered(5, 1)  # in flight: holds the commit at 5
    assert await committer.commit() == {("t", 0): 5}
    assert barrier.calls == 1 and target.commits == [{("t", 0): 5}]
    assert tracker.committed == 5
    assert await committer.commit() == {}  # nothing new is done
    assert barrier.calls == 1


async def test_revoked_partitions_and_refused_commits_are_left_for_later() -> None:
    target, barrier = Target(ok=False), Barrier()
    committer, offsets, _ = setup(target, barrier)
    offsets[("t", 0)] = tracker = PartitionOffsets("t", 0)
    offsets[("t", 1)] = gone = PartitionOffsets("t", 1)
    done_through(tracker, 1)
    done_through(gone, 1)
    gone.revoked = True
    assert await committer.commit() == {}  # the supervisor said no (a rebalance)
    assert target.commits == [{("t", 0): 2}] and tracker.committed is None


async def test_outputs_not_stored_yet_postpone_a_round_and_lost_ones_crash() -> None:
    target, barrier = Target(), Barrier()
    committer, offsets, crashes = setup(target, barrier)
    offsets[("t", 0)] = tracker = PartitionOffsets("t", 0)
    done_through(tracker, 0)
    barrier.error = DeliveryTimeout("the broker is away")
    with pytest.raises(DeliveryTimeout):
        await committer.commit()
    assert target.commits == [] and crashes == []
    barrier.error = DeliveryError("1 produced messages failed")
    with pytest.raises(DeliveryError):
        await committer.commit()
    assert target.commits == []


def test_rounds_come_often_while_commits_are_cheap_and_never_past_the_interval() -> None:
    committer, _, _ = setup(Target(), Barrier())
    committer._last_cost = 0.001
    assert committer._next_in() == MIN_COMMIT_INTERVAL
    committer._last_cost = 0.05
    assert committer._next_in() == pytest.approx(0.5)
    committer._last_cost = 5.0
    assert committer._next_in() == 2.0


def test_many_fetched_messages_ask_for_a_round_at_once() -> None:
    conf = load_settings({"broker_commit_every": 10}, env={}, config_file=False)
    committer = Committer(conf, {}, Barrier(), Target(), lambda exc: None, Counter())
    committer.received(9)
    assert not committer._soon.is_set()
    committer.received(1)
    assert committer._soon.is_set()

"""The supervisor's part of the group with stand-in workers and member: the plan, revocations
answered with final offsets, lost partitions, commits only of what a worker owns, rescaling."""

from __future__ import annotations

from typing import Any

from shoal.config import load_settings
from shoal.ipc.messages import Assign, Message, Revoke
from shoal.supervisor.group import Group
from shoal.supervisor.workers import WorkerHandle
from shoal.types import TP
from tests.unit.test_pool import make_pool


class Member:
    def __init__(self) -> None:
        self.commits: list[dict[TP, int]] = []

    async def commit(self, offsets: dict[TP, int]) -> None:
        self.commits.append(offsets)


class Workers:
    """Records what the group sends each worker; answers revocations as a worker would."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, Message]] = []
        self.group: Group | None = None
        self.final: dict[TP, int] = {}

    async def send(self, handle: WorkerHandle, message: Message) -> bool:
        self.sent.append((handle.index, message))
        if isinstance(message, Revoke) and self.group is not None:
            mine = {tp: o for tp, o in self.final.items() if tp in message.tps}
            self.group.revoked(message.id, mine)
        return True


def make_group(workers: int = 2) -> tuple[Group, Workers, Member]:
    pool, _, _ = make_pool(count=workers)
    conf = load_settings({"worker_drain_timeout": 1}, env={}, config_file=False)
    channel = Workers()
    group = Group(conf, "app", pool, channel.send)
    channel.group = group
    member = Member()
    group.member = member  # type: ignore[assignment]
    return group, channel, member


def tps(*numbers: int) -> list[TP]:
    return [("in", n) for n in numbers]


async def test_partition_n_goes_to_worker_n_mod_workers() -> None:
    group, channel, _ = make_group()
    await group._assigned(tps(0, 1, 2, 3))
    sent: dict[int, Any] = dict(channel.sent)
    assert sent[0] == Assign(tps(0, 2)) and sent[1] == Assign(tps(1, 3))
    assert group.owned == set(tps(0, 1, 2, 3))


async def test_a_revocation_returns_the_final_offsets_the_owners_report() -> None:
    group, channel, _ = make_group()
    await group._assigned(tps(0, 1, 2, 3))
    channel.sent.clear()
    channel.final = {("in", 0): 10, ("in", 1): 11, ("in", 3): 13}
    final = await group._revoked(tps(0, 1))
    assert final == {("in", 0): 10, ("in", 1): 11}  # not 3: it stays
    assert sorted((i, m.tps) for i, m in channel.sent if isinstance(m, Revoke)) == [
        (0, tps(0)),
        (1, tps(1)),
    ]
    assert group.owned == set(tps(2, 3))


async def test_lost_partitions_are_taken_back_without_a_commit() -> None:
    group, channel, member = make_group()
    await group._assigned(tps(0, 1))
    channel.sent.clear()
    await group._lost(tps(0, 1))
    assert all(isinstance(m, Revoke) and m.commit is False for _, m in channel.sent)
    assert group.owned == set() and member.commits == []


async def test_a_worker_commits_only_the_partitions_it_still_owns() -> None:
    group, _, member = make_group()
    await group._assigned(tps(0, 1))
    worker0 = group._pool.handles[0]
    assert await group.commit_for(worker0, {("in", 0): 5, ("in", 1): 6})
    assert member.commits == [{("in", 0): 5}]  # in[1] is worker 1's


async def test_scaling_down_moves_partitions_with_their_final_offsets_and_retires() -> None:
    group, channel, member = make_group(workers=2)
    await group._assigned(tps(0, 1, 2, 3))
    channel.sent.clear()
    channel.final = {("in", 1): 21, ("in", 3): 23}
    await group.rescale(1)
    assert member.commits == [{("in", 1): 21, ("in", 3): 23}]  # before they move
    assigned = [(i, m) for i, m in channel.sent if isinstance(m, Assign)]
    assert assigned == [(0, Assign(tps(1, 3)))]
    assert group._pool.size == 1
    assert group._pool.handles[0].partitions == set(tps(0, 1, 2, 3))


async def test_every_worker_hears_that_a_rebalance_ended_even_with_nothing_new() -> None:
    group, channel, _ = make_group()
    await group._assigned(tps(0, 1))
    channel.sent.clear()
    await group._assigned(tps(0, 1, 2))  # only worker 0 gains a partition
    assert sorted(channel.sent) == [(0, Assign(tps(2))), (1, Assign([]))]

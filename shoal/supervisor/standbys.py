"""Standby replicas: which partitions' table state this host keeps warm for another host.

After every rebalance the supervisor reads the group's members and their assignments from
the broker (``describe_consumer_groups``). Each member's partitions get ``replicas`` standby
members: the next ones in member-id order, never the owner itself. So with two hosts and one
replica each host follows the other's partitions, and with more hosts the work spreads
evenly. This host's workers then follow those partitions' changelogs (partition N on the
worker that would own N), and when the group moves a partition here its new owner starts
from that warm copy and replays only the tail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shoal.types import TP


def standby_partitions(members: Mapping[str, set[int]], me: str, replicas: int) -> set[int]:
    """The partition numbers ``me`` follows as a standby, given each member's partitions."""
    order = sorted(members)
    if me not in order or replicas <= 0 or len(order) < 2:
        return set()
    count = min(replicas, len(order) - 1)
    mine: set[int] = set()
    for i, member in enumerate(order):
        followers = {order[(i + k) % len(order)] for k in range(1, count + 1)}
        if me in followers:
            mine |= members[member]
    return mine - set(members[me])


def partition_numbers(tps: Iterable[TP], leader: str) -> set[int]:
    """The partition numbers of data topics among ``tps`` (the leader topic's left out)."""
    return {p for t, p in tps if t != leader}

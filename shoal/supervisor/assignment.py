"""Which local worker owns which partition, and what must move when the worker count changes.

The supervisor is the host's only group member; Kafka hands it a set of partitions and this
module splits them among its N workers. Pure functions, so the rules can be property-tested.
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal.types import TP

"""A topic partition: ``(topic, partition)``."""


def worker_for(partition: int, workers: int) -> int:
    """The index of the worker that owns ``partition`` (of any topic) among ``workers``.

    Only the partition number counts, never the topic: partition N of every co-partitioned
    topic must land in the same process so that a join or a table lookup by key stays local.

    >>> worker_for(5, 4)
    1
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return partition % workers


def plan(partitions: Iterable[TP], workers: int) -> dict[int, set[TP]]:
    """Split ``partitions`` among worker indexes ``0 .. workers - 1``.

    Every index is a key, even when it gets nothing (more workers than partitions), so the
    caller can tell each worker "you own nothing" rather than forget it.

    >>> owned = plan([("orders", 0), ("orders", 1), ("payments", 1)], 2)
    >>> sorted(owned[1])
    [('orders', 1), ('payments', 1)]
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    owned: dict[int, set[TP]] = {index: set() for index in range(workers)}
    for topic, partition in partitions:
        owned[worker_for(partition, workers)].add((topic, partition))
    return owned


def moves(
    old: dict[int, set[TP]], new: dict[int, set[TP]]
) -> tuple[dict[int, set[TP]], dict[int, set[TP]]]:
    """What to revoke from and assign to each worker to go from plan ``old`` to plan ``new``.

    Returns ``(to_revoke, to_assign)``. A partition that changes owner appears in the old
    owner's revoke set and the new owner's assign set: the caller revokes (drain, commit) first
    and assigns after, so two processes never consume one partition at once. Partitions that
    stay with their worker appear in neither. Only workers with something to do are keys;
    a worker present in ``old`` but not in ``new`` (scaling down) has everything revoked.

    >>> moves({0: {("t", 0), ("t", 1)}}, {0: {("t", 0)}, 1: {("t", 1)}})
    ({0: {('t', 1)}}, {1: {('t', 1)}})
    """
    to_revoke: dict[int, set[TP]] = {}
    to_assign: dict[int, set[TP]] = {}
    for index in sorted(old.keys() | new.keys()):
        before = old.get(index, set())
        after = new.get(index, set())
        if gone := before - after:
            to_revoke[index] = gone
        if added := after - before:
            to_assign[index] = added
    return to_revoke, to_assign

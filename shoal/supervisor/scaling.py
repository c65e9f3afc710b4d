"""Changing how many workers a supervisor runs: a new target, then one step at a time to it.

Requests (SIGTTIN/SIGTTOU, ``clusterctl scale`` over the control socket) only change the
pool's target; the supervisor's loop calls :func:`reconcile` each tick, which moves one
worker at a time, each step a handover inside this host (drain, commit, assign), so the
consumer group is never rebalanced by a scale.
"""

from __future__ import annotations

import asyncio
import logging

from shoal.exceptions import ShoalError
from shoal.supervisor.group import Group
from shoal.supervisor.pool import Pool

log = logging.getLogger(__name__)


def new_target(pool: Pool, *, delta: int | None = None, workers: int | None = None) -> int:
    """Set the pool's target to ``workers``, or to its target plus ``delta``; returns the old
    target. A supervisor keeps at least one worker: less raises :class:`ShoalError`."""
    before = pool.target
    after = workers if workers is not None else before + (delta or 0)
    if after < 1:
        raise ShoalError(f"a supervisor keeps at least one worker (asked for {after})")
    pool.target = after
    return before


async def reconcile(pool: Pool, group: Group, stop: asyncio.Event) -> None:
    """One worker at a time toward the target: start it (or pick it), move the partitions
    (drain, commit, assign), then let a surplus one go."""
    while pool.size != pool.target and not stop.is_set():
        before = pool.size
        after = before + (1 if pool.target > before else -1)
        if after > before and len(pool.handles) > before:
            return  # a retired worker is still exiting: its slot is free next tick
        log.info("scaling from %d to %d workers", before, after)
        if after > before:
            pool.grow(after)
            await pool.wait_ready(stop, boot=False)
        await group.rescale(after)
        log.info("scaled to %d workers; %d partitions on this host", after, len(group.owned))

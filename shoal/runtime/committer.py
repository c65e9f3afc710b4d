"""The commit loop: done offsets, made durable after the outputs before them are.

Every round takes the partitions' done offsets, waits for the producer **barrier** (every
output produced before those events were done is acknowledged by the broker, table changelog
records included), writes the tables' changes made before the barrier to their stores, then
hands the offsets to the commit target: at-least-once. A round whose outputs the broker has not
acknowledged *yet* is skipped (the next one waits for them again); a delivery the broker
refused stops the worker, so its events are processed again.

Rounds come every ``broker_commit_interval`` at most, and sooner, down to every 0.2 s, while a
commit takes under a tenth of the pause: so a crash repeats little work.

One commit-target protocol, two implementations: a group member commits itself
(:class:`MemberCommits`); a worker of a supervisor hands its offsets over the channel and the
supervisor commits them as the group member (``shoal.worker.process``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Protocol

from shoal import metrics
from shoal.config import Settings
from shoal.exceptions import ShoalError
from shoal.kafka.member import GroupMember
from shoal.kafka.producer import DeliveryTimeout
from shoal.runtime.offsets import PartitionOffsets
from shoal.runtime.state import PartitionState
from shoal.types import TP

log = logging.getLogger(__name__)

#: The shortest pause between two commits, while they are cheap.
MIN_COMMIT_INTERVAL = 0.2
#: A commit may take this share of the time between two commits.
COMMIT_COST_SHARE = 0.1


class CommitTarget(Protocol):
    """Where done offsets go: True once they are committed (False: not this time, retried)."""

    async def commit(self, offsets: dict[TP, int]) -> bool: ...


class MemberCommits:
    """A group member commits its own offsets."""

    def __init__(self, member: GroupMember) -> None:
        self._member = member

    async def commit(self, offsets: dict[TP, int]) -> bool:
        await self._member.commit(offsets)
        return True


class Committer:
    """The commit loop of one process; see the module docstring."""

    def __init__(
        self,
        conf: Settings,
        offsets: dict[TP, PartitionOffsets],
        barrier: Callable[[float], Awaitable[None]],
        target: CommitTarget,
        crash: Callable[[BaseException], None],
        stats: Counter[str],
        state: Callable[[], PartitionState | None] = lambda: None,
    ) -> None:
        self._conf = conf
        #: The tables, whose writes are made durable with every commit (before it).
        self._state = state
        self._offsets = offsets
        self._barrier = barrier
        self._target = target
        self._crash = crash
        self._stats = stats
        self._soon = asyncio.Event()
        self._since_commit = 0
        self._last_cost = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="commit loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def received(self, n: int) -> None:
        """``n`` more messages fetched: commit early after ``broker_commit_every``."""
        self._since_commit += n
        if self._since_commit >= self._conf.broker_commit_every:
            self._soon.set()

    def barrier_timeout(self) -> float:
        """How long a commit waits for the broker to acknowledge the outputs before it; a
        commit that gives up is made in a later round (nothing is lost)."""
        return max(10.0, 10 * self._conf.broker_commit_interval)

    def _next_in(self) -> float:
        """Seconds to the next round: as often as every ``MIN_COMMIT_INTERVAL`` while a
        commit costs at most ``COMMIT_COST_SHARE`` of the pause; never longer than
        ``broker_commit_interval``."""
        interval = self._conf.broker_commit_interval
        return min(interval, max(MIN_COMMIT_INTERVAL, self._last_cost / COMMIT_COST_SHARE))

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._soon.wait(), self._next_in())
            self._soon.clear()
            try:
                await self.commit()
            except DeliveryTimeout as exc:
                # The broker is slow or away: nothing is lost, the outputs are still queued.
                # The next round waits for them again and commits once they are stored.
                log.warning("not committing yet: %s", exc)
            except ShoalError as exc:
                # Not committing keeps the events to process again: at-least-once holds. A
                # producer that lost messages cannot be trusted further: stop the worker.
                log.error("commit failed: %s", exc)
                self._crash(exc)
                return

    async def commit(self) -> dict[TP, int]:
        """Commit every partition's done offset, after the outputs before it are stored."""
        self._since_commit = 0
        snapshot = {tp: t for tp, t in self._offsets.items() if t.committable() is not None}
        if not snapshot:
            return {}
        offsets = {tp: o for tp, t in snapshot.items() if (o := t.committable()) is not None}
        started = time.perf_counter()
        done: dict[TP, int] = {}
        try:
            done = await self._commit(snapshot, offsets)
            return done
        finally:
            self._last_cost = time.perf_counter() - started
            metrics.record.commit(self._last_cost, ok=bool(done))

    async def _commit(
        self, snapshot: dict[TP, PartitionOffsets], offsets: dict[TP, int]
    ) -> dict[TP, int]:
        state = self._state()
        token = state.prepare() if state is not None else None
        await self._barrier(self.barrier_timeout())
        if state is not None:
            state.flush(token)
        offsets = {tp: o for tp, o in offsets.items() if not snapshot[tp].revoked}
        if not offsets or not await self._target.commit(offsets):
            return {}  # revoked meanwhile, or not committed this time: the next round retries
        for tp, offset in offsets.items():
            snapshot[tp].committed = offset
        self._stats["commits"] += 1
        return offsets

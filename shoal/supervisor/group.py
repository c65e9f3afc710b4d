"""This host's part of the consumer group: membership, the plan, commits, hand-backs.

The supervisor is the host's only group member. It pauses every partition the group gives it
(so it fetches nothing) and hands partition N of every topic to worker ``N % workers``
(:mod:`~shoal.supervisor.assignment`). It commits the offsets its workers report, as the
member, and only for partitions the reporting worker still owns. When partitions must move
(the group revokes them, or workers are added or removed), their owners drain and report
their final offsets, which are committed before the partitions go. Partitions *lost* (the
group went on without this member while the broker was away) are taken back at once, with
nothing committed, and handed out afresh when the member rejoins.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

from shoal.config import Settings
from shoal.exceptions import ShoalError
from shoal.ipc.link import Link
from shoal.ipc.messages import Assign, Message, Revoke, Standby, pack_tps
from shoal.kafka.admin import group_members
from shoal.kafka.clients import consumer_config
from shoal.kafka.member import GroupMember
from shoal.supervisor.assignment import moves, plan, worker_for
from shoal.supervisor.metrics_server import MetricsServer
from shoal.supervisor.pool import Pool
from shoal.supervisor.standbys import partition_numbers, standby_partitions
from shoal.supervisor.workers import WorkerHandle
from shoal.types import TP, leader_topic

log = logging.getLogger(__name__)

#: How long a commit for a worker may wait for the broker's answer; the worker retries.
COMMIT_TIMEOUT = 30.0

Send = Callable[[WorkerHandle, Message], Awaitable[bool]]


class Group:
    """See the module docstring."""

    def __init__(self, conf: Settings, app_id: str, pool: Pool, send: Send) -> None:
        self._conf = conf
        self._app_id = app_id
        self._pool = pool
        self._send = send
        self.metrics: MetricsServer | None = None
        #: The partitions the group gave this host.
        self.owned: set[TP] = set()
        #: Topics the workers read (they say so when ready): what the member subscribes.
        self.topics: set[str] = set()
        self.member: GroupMember | None = None
        self._ids = itertools.count(1)
        self._revocations: dict[int, asyncio.Future[dict[TP, int]]] = {}
        self._revoked_over: dict[int, Link] = {}  # request -> the link it went over
        self._lock = asyncio.Lock()  # group callbacks and rescaling move partitions
        self._leaving = False  # stopping: drained, so new partitions are not handed out
        self.on_failure: Callable[[str], None] = lambda text: None
        #: The workers have tables: after each rebalance, pick partitions to keep warm.
        self.wants_standbys = False
        #: Partition numbers of other hosts whose table state this host keeps warm.
        self.standby: set[int] = set()
        self._standby_task: asyncio.Task[None] | None = None

    def join(self) -> None:
        topics = sorted(self.topics)
        self.member = GroupMember(
            consumer_config(self._conf, f"shoal-{self._app_id}", self._app_id),
            topics,
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._lost,
            paused=True,
            on_batch=_never,
            on_error=self._on_error,
            # It fetches nothing (all paused): polls only serve the group and the workers'
            # commits, which wait for the next one, so they are short.
            poll_timeout=0.02,
        )
        self.member.start()
        log.info("joined group %s for %s", self._app_id, ", ".join(topics))

    def _on_error(self, text: str) -> None:
        log.error("group consumer: %s", text)
        if self.member is not None and self.member.failure is not None:
            self.on_failure(f"the group consumer failed: {text}")

    def _rebalanced(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.supervisor.rebalance(kind)

    # -- the group's callbacks ---------------------------------------------------------------

    async def _assigned(self, tps: list[TP]) -> None:
        self._rebalanced("assign")
        async with self._lock:
            self.owned.update(tps)
            if self._leaving:  # they go to the next owner when this member leaves
                return
            layout = plan(self.owned, self._pool.size)
            for handle in self._pool.handles[: self._pool.size]:
                new = layout[handle.index] - handle.partitions
                handle.partitions = set(layout[handle.index])
                # Every worker hears that the rebalance ended, with nothing new maybe: its
                # app's on_rebalance_complete and rebalancing say so.
                await self._send(handle, Assign(pack_tps(new)))
        self._refresh_standbys()
        leader = (leader_topic(self._app_id), 0)
        data = len(self.owned - {leader})
        lead = ", and leads the app" if leader in self.owned else ""
        log.info("this host owns %d partitions over %d workers%s", data, self._pool.size, lead)

    # -- standby replicas (shoal.supervisor.standbys) ----------------------------------------

    def _refresh_standbys(self) -> None:
        if not self.wants_standbys or self._conf.table_standby_replicas <= 0:
            return
        if self._standby_task is not None:
            self._standby_task.cancel()
        self._standby_task = asyncio.get_running_loop().create_task(
            self._pick_standbys(), name="standbys"
        )

    async def _pick_standbys(self, attempts: int = 10) -> None:
        """Read the group's assignment and tell each worker which partitions to follow.
        Every member gets its assignment in the same round; a member still without one is
        asked again shortly (bounded), so the picture settles."""
        leader = leader_topic(self._app_id)
        for attempt in range(attempts):
            if self.member is None:
                return
            try:
                me = await self.member.member_id()
                members = await group_members(self._conf.bootstrap_servers, self._app_id)
            except ShoalError as exc:
                log.warning("cannot pick standby partitions now: %s", exc)
                members, me = {}, ""
            parts = {m: partition_numbers(tps, leader) for m, tps in members.items()}
            if me in parts and all(parts.values()):
                break
            await asyncio.sleep(0.5 * (attempt + 1))  # the group's picture settles; retried
        else:
            return
        wanted = standby_partitions(parts, me, self._conf.table_standby_replicas)
        if wanted != self.standby:
            log.info(
                "keeping the tables of partitions %s warm for other hosts",
                ", ".join(map(str, sorted(wanted))) or "none",
            )
        self.standby = wanted
        for handle in self._pool.handles[: self._pool.size]:
            await self.send_standbys(handle)

    async def send_standbys(self, handle: WorkerHandle) -> None:
        """Tell a worker which standby partitions are its (partition N on the worker that
        would own N), so that a partition moving here finds its state warm there."""
        if not self.wants_standbys or handle.index >= self._pool.size:
            return
        size = self._pool.size
        mine = sorted(p for p in self.standby if worker_for(p, size) == handle.index)
        await self._send(handle, Standby(mine))

    async def _revoked(self, tps: list[TP]) -> dict[TP, int]:
        """Ask each owning worker to drain and report; their final offsets get committed."""
        gone = set(tps)
        self._rebalanced("revoke")
        if self.metrics is not None:
            self.metrics.supervisor.forget_partitions(gone)
        async with self._lock:
            final = await self._take_back(self._owners_of(gone))
            self.owned -= gone
        return final

    async def _lost(self, tps: list[TP]) -> None:
        """The group went on without this member (its session expired while the broker was
        away): the workers stop those partitions at once, nothing is committed (their new
        owner may have moved on), and the rejoin assigns afresh from the committed offsets."""
        gone = set(tps)
        self._rebalanced("lost")
        if self.metrics is not None:
            self.metrics.supervisor.forget_partitions(gone)
        async with self._lock:
            await self._take_back(self._owners_of(gone), commit=False)
            self.owned -= gone

    def _owners_of(self, tps: set[TP]) -> dict[int, set[TP]]:
        return {h.index: h.partitions & tps for h in self._pool.handles if h.partitions & tps}

    # -- moving partitions -------------------------------------------------------------------

    async def _take_back(
        self, per_worker: dict[int, set[TP]], *, commit: bool = True
    ) -> dict[TP, int]:
        """Revoke partitions from workers; returns the final offsets they reported."""
        waits: list[asyncio.Future[dict[TP, int]]] = []
        requests: list[int] = []
        for index, theirs in per_worker.items():
            handle = self._pool.handles[index]
            handle.partitions -= theirs
            request = next(self._ids)
            requests.append(request)
            future: asyncio.Future[dict[TP, int]] = asyncio.get_running_loop().create_future()
            self._revocations[request] = future  # before sending: the answer may be quick
            if handle.link is not None:
                self._revoked_over[request] = handle.link
            if await self._send(handle, Revoke(request, pack_tps(theirs), commit)):
                waits.append(future)
            else:
                self._revocations.pop(request, None)
        final: dict[TP, int] = {}
        if waits:
            done, pending = await asyncio.wait(waits, timeout=self._conf.worker_drain_timeout + 10)
            wanted = set().union(*per_worker.values())
            for future in done:
                final.update({tp: o for tp, o in future.result().items() if tp in wanted})
            if pending:
                log.error("%d workers did not report their final offsets in time", len(pending))
        for request in requests:
            self._revocations.pop(request, None)
            self._revoked_over.pop(request, None)
        return final

    def revoked(self, request: int, offsets: dict[TP, int]) -> None:
        """A worker's answer to a revocation: its final offsets."""
        future = self._revocations.pop(request, None)
        if future is not None and not future.done():
            future.set_result(offsets)

    def abandon(self, link: Link) -> None:
        """A worker that died while draining reports nothing: stop waiting for it (the group
        waits too), and let its partitions resume from the last committed offsets."""
        for request in [r for r, over in self._revoked_over.items() if over is link]:
            del self._revoked_over[request]
            future = self._revocations.pop(request, None)
            if future is not None and not future.done():
                future.set_result({})

    async def rescale(self, target: int) -> None:
        """Move partitions between this host's workers for ``target`` of them: revoke from
        the old owners (drain, report, commit), assign to the new ones, and retire the
        workers past ``target``; the group is not rebalanced."""
        self._rebalanced("scale")
        async with self._lock:
            old = {h.index: set(h.partitions) for h in self._pool.handles}
            to_revoke, to_assign = moves(old, plan(self.owned, target))
            final = await self._take_back(to_revoke)
        # The commit needs the group consumer's thread, which a group revocation may hold
        # while it waits for the lock: commit outside it. Offsets of partitions the group
        # revoked meanwhile are left out by the commit itself.
        if final:
            await self.commit(final, "after rescaling")
        async with self._lock:
            for index, tps in to_assign.items():
                still_ours = tps & self.owned
                if still_ours:
                    handle = self._pool.handles[index]
                    handle.partitions |= still_ours
                    await self._send(handle, Assign(pack_tps(still_ours)))
            if target < self._pool.size:
                await self._pool.retire(target)

    # -- commits -----------------------------------------------------------------------------

    async def commit(self, offsets: dict[TP, int], why: str) -> bool:
        """Commit ``offsets`` as the member; False (logged) when it could not be done now."""
        if not offsets:
            return True
        if self.member is None:
            return False
        try:
            await asyncio.wait_for(self.member.commit(offsets), COMMIT_TIMEOUT)
        except (ShoalError, TimeoutError) as exc:
            reason = str(exc) or f"no answer within {COMMIT_TIMEOUT:g} s"
            log.warning("commit %s failed (those events may repeat): %s", why, reason)
            return False
        if self.metrics is not None:
            self.metrics.supervisor.committed(offsets)
        return True

    async def commit_for(self, handle: WorkerHandle, offsets: dict[TP, int]) -> bool:
        """A worker's done offsets: only those of partitions it still owns, so a late report
        cannot move back an offset the partition's next owner has committed since."""
        mine = {tp: o for tp, o in offsets.items() if tp in handle.partitions}
        if not mine:
            return not offsets
        return await self.commit(mine, f"for worker {handle.index} (retried next round)")

    async def hand_back(self) -> None:
        """Drain every worker and commit their final offsets while still a live member.

        librdkafka stops heartbeating once close() starts, so a drain inside the revoke
        callback that close() runs has only what is left of the session timeout: a slow
        one lost its commit (UNKNOWN_MEMBER_ID) and the next owner did the work again.
        """
        async with self._lock:
            self._leaving = True
            final = await self._take_back(
                {h.index: set(h.partitions) for h in self._pool.handles if h.partitions}
            )
        await self.commit(final, "of the final offsets")

    async def leave(self, timeout: float) -> None:
        """Leave the group; that revokes what is left (nothing, unless the drain failed)."""
        if self.member is not None:
            await self.member.stop(timeout)


async def _never(batch: object) -> None:
    raise AssertionError("the supervisor's consumer pauses everything; it fetches nothing")

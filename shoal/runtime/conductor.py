"""The partitions one process owns: fetching them, and letting them go cleanly.

Two ways to own partitions, one path through the code. A worker of a supervisor is handed
partitions (:meth:`Conductor.assign`, :meth:`Conductor.release`) and hands its done offsets to
the supervisor, which commits them as the host's group member. An app run in one process is a
group member itself: the group's callbacks call the same steps (``_track``, ``_finish``), and
it commits its own offsets. Either way, partitions taken away are drained (their fetched
events finish, their outputs are acknowledged) and their final offsets committed before they
move; partitions *lost* (the group went on without this member) are dropped at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from confluent_kafka import TopicPartition

from shoal.config import Settings
from shoal.exceptions import ShoalError
from shoal.kafka.clients import consumer_config
from shoal.kafka.consumer import AssignedConsumer, Batch, ConsumerThread, format_tps
from shoal.kafka.member import GroupMember
from shoal.kafka.producer import DeliveryError, DeliveryTimeout
from shoal.runtime.committer import CommitTarget, Committer, MemberCommits
from shoal.runtime.dispatch import DeadLetters, Dispatch
from shoal.runtime.offsets import PartitionOffsets
from shoal.runtime.rebalances import Rebalances
from shoal.runtime.state import PartitionState
from shoal.runtime.subscriptions import Subscriptions
from shoal.types import TP

log = logging.getLogger(__name__)


class Conductor:
    """Owns the consumer thread, the partitions' offsets and the commit loop of a process.

    ``target`` None makes it a group member that commits itself; else it fetches what it is
    assigned and hands done offsets to ``target``.
    """

    def __init__(
        self,
        conf: Settings,
        client_id: str,
        subscriptions: Subscriptions,
        dead_letters: DeadLetters,
        barrier: Callable[[float], Awaitable[None]],
        crash: Callable[[BaseException], None],
        stats: Counter[str],
        target: CommitTarget | None = None,
        rebalances: Rebalances | None = None,
        state: Callable[[], PartitionState | None] = lambda: None,
    ) -> None:
        self._conf = conf
        #: The tables: brought up to date before their partitions are fetched.
        self._state = state
        self._rebalances = rebalances or Rebalances()
        self._subscriptions = subscriptions
        self._crash = crash
        self._barrier = barrier
        self.offsets: dict[TP, PartitionOffsets] = {}
        #: Counts of what happened to fetched messages (received, dead_lettered, commits...).
        self.stats = stats
        self._stopping = False
        config = consumer_config(conf, client_id, conf.id or client_id)
        self._consumer: ConsumerThread
        if target is None:
            member = GroupMember(
                config,
                subscriptions.topic_names(),
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
                on_batch=self._on_batch,
                on_error=self._on_consumer_error,
                batch_size=conf.consumer_max_batch,
            )
            self._member: GroupMember | None = member
            self._consumer, target = member, MemberCommits(member)
        else:
            self._member = None
            self._consumer = AssignedConsumer(
                config,
                on_batch=self._on_batch,
                on_error=self._on_consumer_error,
                batch_size=conf.consumer_max_batch,
            )
        self._target = target
        self._committer = Committer(conf, self.offsets, barrier, target, crash, self.stats, state)
        self._dispatch = Dispatch(
            subscriptions, self.offsets, dead_letters, self.stats, self._committer.received
        )

    async def _on_batch(self, batch: Batch) -> None:
        # The consumer is made before the dispatch (which needs its committer, which needs
        # the consumer to commit with): it calls this, which the dispatch is ready for.
        await self._dispatch(batch)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._consumer.start()
        self._committer.start()

    def resubscribe(self) -> None:
        """A stream subscribed to a new topic while running: fetch it too."""
        if self._member is not None:
            self._member.subscribe(self._subscriptions.topic_names())

    async def stop(self, drain_timeout: float) -> None:
        """Stop fetching and commit what is done: a group member's close revokes its
        partitions (which commits them); an assigned consumer releases them and hands their
        final offsets to its target (its supervisor)."""
        if self._member is None and self.offsets:
            final = await self.release(list(self.offsets), drain_timeout)
            if final:
                await self._target.commit(final)
        self._stopping = True
        for inbox in self._subscriptions.inboxes():
            inbox.maxsize = 1 << 62  # let a fetch blocked on back-pressure through
            inbox.drop_revoked()
        await self._consumer.stop()
        await self._committer.stop()

    @property
    def fetching(self) -> bool:
        """True while the consumer thread runs (a dead one is a dead worker)."""
        return self._consumer.alive

    def _on_consumer_error(self, text: str) -> None:
        log.error("%s", text)
        self.stats["consumer_errors"] += 1
        if self._consumer.failure is not None and not self._stopping:
            self._crash(ShoalError(text))

    async def commit(self) -> dict[TP, int]:
        """Commit every done offset now (the commit loop does it on its own)."""
        return await self._committer.commit()

    # -- owning partitions -------------------------------------------------------------------

    def _track(self, tps: Iterable[TP]) -> list[TP]:
        new = [tp for tp in tps if tp not in self.offsets]
        for tp in new:
            self.offsets[tp] = PartitionOffsets(*tp)
        return new

    async def assign(self, tps: Iterable[TP]) -> None:
        """Start processing ``tps`` from the group's committed offsets (assigned)."""
        assert isinstance(self._consumer, AssignedConsumer)
        new = self._track(tps)
        self._rebalances.assigned(new)
        if new and not await self._hold():
            return
        new = [tp for tp in new if tp in self.offsets]  # not released meanwhile
        await self._consumer.assign(new)

    async def _hold(self) -> bool:
        """Bring the tables of the owned partitions up to date. Nothing of a partition is
        fetched, so nothing processed or committed, until its tables are recovered; a
        recovery that fails stops the process (its replacement tries again)."""
        state = self._state()
        if state is None:
            return True
        try:
            await state.hold(list(self.offsets))
        except Exception as exc:
            log.exception("recovering the tables failed")
            self._crash(exc)
            return False
        return True

    async def release(
        self, tps: Iterable[TP], timeout: float, *, commit: bool = True
    ) -> dict[TP, int]:
        """Hand ``tps`` back: stop fetching them, let the events already fetched finish
        (up to ``timeout`` seconds), wait for their outputs, and return the final offsets.

        A clean handover: the next owner starts where this one stopped, nothing twice. With
        ``commit=False`` (the group lost them) the events are stopped at once instead.
        """
        assert isinstance(self._consumer, AssignedConsumer)
        # No longer ours from here on: an assignment of the same partitions that arrives
        # while this one drains starts afresh from the committed offsets.
        trackers = [t for tp in tps if (t := self.offsets.pop(tp, None))]
        # Once unassign returns, no batch with these partitions is on its way any more.
        await self._consumer.unassign([(t.topic, t.partition) for t in trackers])
        if commit:
            try:
                async with asyncio.timeout(timeout):
                    for tracker in trackers:
                        await tracker.wait_idle()
            except TimeoutError:
                busy = [f"{t.topic}[{t.partition}]" for t in trackers if t.in_flight]
                log.warning(
                    "events of %s still running after %.0f s; they will be processed again "
                    "by the next owner",
                    ", ".join(busy),
                    timeout,
                )
        return await self._finish(trackers, commit=commit)

    async def _on_assign(self, tps: list[TP]) -> None:
        self._rebalances.assigned(self._track(tps))
        # The group fetches once this returns: recover the tables first.
        if not await self._hold():
            # Fetched events of these partitions must not be processed: drop the partitions.
            for tp in tps:
                tracker = self.offsets.pop(tp, None)
                if tracker is not None:
                    tracker.revoked = True

    async def _on_revoke(self, tps: list[TP]) -> dict[TP, int]:
        """The group takes ``tps``: stop their events, return their final offsets."""
        return await self._finish([t for tp in tps if (t := self.offsets.pop(tp, None))])

    async def _on_lost(self, tps: list[TP]) -> None:
        """Partitions the group gave away while this member was out of touch: stop their
        events at once; nothing is committed (their new owner may have moved on)."""
        await self._finish([t for tp in tps if (t := self.offsets.pop(tp, None))], commit=False)

    async def _finish(
        self, trackers: list[PartitionOffsets], *, commit: bool = True
    ) -> dict[TP, int]:
        """Mark partitions no longer ours and, with ``commit``, return their final offsets
        once the outputs before them are stored ({} when the broker does not confirm them in
        time: the next owner then repeats the events after the last commit)."""
        final: dict[TP, int] = {}
        self._rebalances.revoked([(t.topic, t.partition) for t in trackers])
        for tracker in trackers:
            tracker.revoked = True
            offset = tracker.committable()
            if offset is not None:
                final[(tracker.topic, tracker.partition)] = offset
        for inbox in self._subscriptions.inboxes():
            inbox.drop_revoked()
        state = self._state()
        try:
            if not commit or (not final and state is None):
                return {}
            token = state.prepare() if state is not None else None
            try:
                await self._barrier(self._committer.barrier_timeout())
            except DeliveryTimeout as exc:
                log.warning("not committing the final offsets of %s: %s", format_tps(final), exc)
                return {}
            except DeliveryError as exc:
                # Outputs are lost: their events must be processed again, here as elsewhere.
                log.error("not committing the final offsets of %s: %s", format_tps(final), exc)
                self._crash(exc)
                return {}
            if state is not None:
                state.flush(token)
            if final:
                self.stats["commits"] += 1
            return final
        finally:
            if state is not None:
                # Lost partitions (commit=False) may have a new owner writing already: their
                # stores must not claim the changelog's end.
                await state.let_go(list(self.offsets), seal=commit)

    async def lag(self) -> tuple[int, dict[TP, int]]:
        """Messages behind the high watermarks of the partitions owned here, and those high
        watermarks (from the last fetch responses: no request to the broker)."""
        if not self.offsets:
            return 0, {}
        trackers = list(self.offsets.values())

        def measure(kafka: Any) -> tuple[int, dict[TP, int]]:
            behind = 0
            highs: dict[TP, int] = {}
            parts = [TopicPartition(t.topic, t.partition) for t in trackers]
            positions = {(p.topic, p.partition): p.offset for p in kafka.position(parts)}
            for tracker in trackers:
                tp = (tracker.topic, tracker.partition)
                _low, high = kafka.get_watermark_offsets(TopicPartition(*tp), cached=True)
                done = tracker.done if tracker.done is not None else positions.get(tp, -1)
                if high >= 0:
                    highs[tp] = high
                    if done >= 0:
                        behind += max(0, high - done)
            return behind, highs

        result: tuple[int, dict[TP, int]] = await self._consumer.call(measure)
        return result

"""A consumer-group member: the supervisor (paused: it only serves the group) or an app that
runs in one process (it fetches what the group gives it).

Group callbacks (assign/revoke/lost) run inside ``consume`` on the consumer's thread.
Revocation blocks there until the owner has stopped the revoked partitions' events and handed
back the offsets to commit, so the partitions move only after their final offsets are
committed.

A broker outage is not a crash: nothing that raises inside a callback may escape it (the client
re-raises it from ``consume``, which would end the thread), and a member whose session expired
while the broker was away is told its partitions are *lost* (not revoked: another member may
own them already, so nothing is committed) and simply rejoins. Commits are asynchronous, their
answers served by a later poll: a commit the broker cannot answer (it is away) must not stop
the thread from serving the group meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from typing import Any

import confluent_kafka
from confluent_kafka import TopicPartition

from shoal.exceptions import BrokerError
from shoal.kafka.consumer import ConsumerThread, format_tps
from shoal.types import TP

log = logging.getLogger("shoal.kafka.consumer")  # the same lines as a consumer thread's


class GroupMember(ConsumerThread):
    """A consumer-group member subscribed to ``topics``. With ``paused`` it pauses what it is
    assigned and fetches nothing (a supervisor owns partitions for its workers)."""

    def __init__(
        self,
        config: dict[str, Any],
        topics: Sequence[str],
        *,
        on_assign: Callable[[list[TP]], Awaitable[None]],
        on_revoke: Callable[[list[TP]], Awaitable[dict[TP, int]]],
        on_lost: Callable[[list[TP]], Awaitable[None]],
        paused: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__({**config, "on_commit": self._committed}, **kw)
        self._topics = sorted(set(topics))
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_lost = on_lost
        self._paused = paused
        self._resubscribe = threading.Event()
        #: How often each partition was revoked (counted on the loop): a commit asked for
        #: before a revocation must not land after the final commit the revocation made.
        self._revocations: Counter[TP] = Counter()
        #: Commits sent and not answered yet, by what they commit (touched on this thread).
        self._commit_waiters: dict[frozenset[tuple[str, int, int]], list[Future[None]]] = {}

    async def member_id(self) -> str:
        """The id the group coordinator gave this member ('' before it joined)."""
        result: str = await self.call(lambda kafka: kafka.memberid() or "")
        return result

    def subscribe(self, topics: Sequence[str]) -> None:
        """Change the subscription (a stream added a repartition topic at run time)."""
        wanted = sorted(set(topics))
        if wanted != self._topics:
            self._topics = wanted
            self._resubscribe.set()
            self._wake.set()

    # -- on the consumer thread ---------------------------------------------------------------

    def _opened(self, kafka: Any) -> None:
        if self._topics:  # librdkafka refuses an empty subscription
            self._subscribe(kafka)

    def _before_fetch(self, kafka: Any) -> None:
        if self._resubscribe.is_set():
            self._resubscribe.clear()
            self._subscribe(kafka)

    def _has_work(self) -> bool:
        return bool(self._topics)

    def _subscribe(self, kafka: Any) -> None:
        kafka.subscribe(
            self._topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.info("assigned %s", format_tps(tps))
        try:
            self._call(self._on_assign(tps))
        except Exception:
            log.exception("handling the assignment of %s failed", format_tps(tps))
        if self._paused:
            # A supervisor owns partitions for its workers and must not fetch them itself.
            try:
                consumer.assign(partitions)
                consumer.pause(partitions)
            except Exception:
                log.exception("pausing %s failed", format_tps(tps))

    def _revoked(self, consumer: Any, partitions: list[Any]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        if not tps:
            return
        log.info("revoking %s", format_tps(tps))
        try:
            offsets = self._call(self._revoking(tps))
        except Exception:
            log.exception("could not drain revoked partitions; their offsets are not committed")
            return
        try:
            self.commit_now(offsets)
        except BrokerError as exc:
            log.warning(
                "%s; their next owner processes the events after the last commit again", exc
            )

    def _lost(self, consumer: Any, partitions: list[Any]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        if not tps:
            return
        log.warning(
            "lost %s: the group went on without this member (its session expired: the broker "
            "was unreachable, or this process stalled); rejoining. Events after the last "
            "commit of these partitions will be processed again.",
            format_tps(tps),
        )
        try:
            self._call(self._losing(tps))
        except Exception:
            log.exception("handling the loss of %s failed", format_tps(tps))

    async def _revoking(self, tps: list[TP]) -> dict[TP, int]:
        # Counted on the loop before the owner hears of it, so a commit asked for from now
        # on sees the new count, and one asked for before is told apart by commit().
        self._revocations.update(tps)
        return await self._on_revoke(tps)

    async def _losing(self, tps: list[TP]) -> None:
        self._revocations.update(tps)  # a commit asked for before must not land after
        await self._on_lost(tps)

    async def commit(self, offsets: dict[TP, int]) -> None:
        """Commit ``offsets`` (as this consumer's group member) from the consumer thread, and
        wait for the broker's answer.

        The commit waits for the thread, which may first run a revocation of some of these
        partitions and commit their final offsets: those are then left out, not moved back
        to what was done when this commit was asked for.
        """
        if not offsets:
            return
        asked = {tp: self._revocations[tp] for tp in offsets}

        def commit(_kafka: Any) -> Future[None]:
            current = {tp: o for tp, o in offsets.items() if self._revocations[tp] == asked[tp]}
            if len(current) < len(offsets):
                log.debug(
                    "not committing %s: revoked since", format_tps(list(offsets.keys() - current))
                )
            return self._commit_async(current)

        answered: Future[None] = await self.call(commit)
        await asyncio.wrap_future(answered)

    def _commit_async(self, offsets: dict[TP, int]) -> Future[None]:
        """Send a commit (on the consumer thread); the future is resolved by the commit
        callback, which a later poll of this thread serves."""
        future: Future[None] = Future()
        if not offsets:
            future.set_result(None)
            return future
        key = frozenset((t, p, o) for (t, p), o in offsets.items())
        self._commit_waiters.setdefault(key, []).append(future)
        try:
            self._kafka.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=True,
            )
        except confluent_kafka.KafkaException as exc:
            self._commit_waiters[key].remove(future)
            future.set_exception(BrokerError(f"commit of {format_tps(offsets)} failed: {exc}"))
        return future

    def _committed(self, err: Any, partitions: list[Any]) -> None:
        """librdkafka's commit callback (on this thread, in a poll)."""
        key = frozenset((p.topic, p.partition, p.offset) for p in partitions)
        waiters = self._commit_waiters.get(key)
        if not waiters:
            return  # a synchronous commit's: it was answered already
        future = waiters.pop(0)
        if not waiters:
            del self._commit_waiters[key]
        failed = [p for p in partitions if p.error is not None]
        if future.done():  # its asker gave up
            return
        if err is not None or failed:
            cause = err if err is not None else failed[0].error
            tps = format_tps((p.topic, p.partition) for p in partitions)
            future.set_exception(BrokerError(f"commit of {tps} failed: {cause}"))
        else:
            future.set_result(None)

    def commit_now(self, offsets: dict[TP, int]) -> None:
        """Commit synchronously; only from the consumer thread (or its callbacks)."""
        if not offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self._kafka.commit(offsets=tps, asynchronous=False)
        except confluent_kafka.KafkaException as exc:
            raise BrokerError(f"commit of {format_tps(list(offsets))} failed: {exc}") from exc

    def _closing(self) -> None:
        for waiters in self._commit_waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(BrokerError("the consumer closed before the answer"))
        self._commit_waiters.clear()

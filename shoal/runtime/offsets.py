"""Which offset of a partition may be committed, given out-of-order acks.

A message may be delivered to more than one subscriber (two agents on one topic); it is done
when every one of them acked it. The committable offset is one past the highest offset whose
message, and every message before it, is done: an unacked event holds the commit back even
when later events were acked (``concurrency > 1``), so a crash never skips it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable


class PartitionOffsets:
    """The delivered-but-not-done messages of one partition, oldest first.

    Kept for the common case, which costs a compare and a ``popleft`` per ack: each message
    went to one subscriber, and acks come in order. A message sent to several subscribers
    counts its acks in ``_shared``; one done before an older one waits in ``_early`` until
    the older ones are done too.
    """

    __slots__ = (
        "_early",
        "_idle",
        "_pending",
        "_shared",
        "committed",
        "done",
        "partition",
        "revoked",
        "topic",
    )

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self._pending: deque[int] = deque()
        #: Acks still wanted, for messages delivered to more than one subscriber.
        self._shared: dict[int, int] = {}
        #: Pending messages that are done, behind an older one that is not.
        self._early: set[int] = set()
        #: One past the highest offset that is done with everything before it done too.
        self.done: int | None = None
        #: The offset last committed to Kafka (what a restart resumes from).
        self.committed: int | None = None
        #: Set when the partition is taken away: acks after that are ignored.
        self.revoked = False
        self._idle: asyncio.Future[None] | None = None

    def delivered(self, offset: int, subscribers: int) -> None:
        """Record that the message at ``offset`` went to ``subscribers`` streams."""
        pending = self._pending
        if subscribers == 1:
            pending.append(offset)
        elif subscribers > 1:
            pending.append(offset)
            self._shared[offset] = subscribers
        elif not pending:
            self.done = offset + 1
        else:
            # Nothing subscribed: done at once, but only committable once those before it are.
            pending.append(offset)
            self._early.add(offset)

    def delivered_each(self, offsets: Iterable[int]) -> None:
        """Record that each message of ``offsets`` (in order) went to one stream."""
        self._pending.extend(offsets)

    def ack(self, offset: int) -> None:
        """One subscriber is done with ``offset``."""
        pending = self._pending
        if pending and pending[0] == offset and not self._shared:
            # The common case (one subscriber, in-order acks): the oldest one is done.
            pending.popleft()
            self.done = offset + 1
            if self._early:
                self._drain()
            elif not pending and self._idle is not None:
                self._wake_idle()
            return
        self._ack_other(offset)

    def _ack_other(self, offset: int) -> None:
        shared = self._shared
        left = shared.get(offset)
        if left is not None:
            if left > 1:
                shared[offset] = left - 1
                return
            del shared[offset]
        pending = self._pending
        if not pending or offset < pending[0]:
            return  # not in flight: done already
        if offset == pending[0]:
            pending.popleft()
            self.done = offset + 1
        else:
            self._early.add(offset)
        self._drain()

    def _drain(self) -> None:
        pending, early = self._pending, self._early
        while pending and pending[0] in early:
            offset = pending.popleft()
            early.discard(offset)
            self.done = offset + 1
        if not pending and self._idle is not None:
            self._wake_idle()

    def _wake_idle(self) -> None:
        idle, self._idle = self._idle, None
        if idle is not None and not idle.done():
            idle.set_result(None)

    async def wait_idle(self) -> None:
        """Wait until every delivered message is done (a drain before a handover)."""
        while self._pending:
            if self._idle is None:
                self._idle = asyncio.get_running_loop().create_future()
            await self._idle

    @property
    def in_flight(self) -> int:
        """Messages delivered and not yet done."""
        return len(self._pending)

    def committable(self) -> int | None:
        """The offset to commit now, or None when nothing new is done since the last commit."""
        if self.done is None or self.done == self.committed:
            return None
        return self.done

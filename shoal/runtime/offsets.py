"""Which offset of a partition may be committed, given out-of-order acks.

A message may be delivered to more than one subscriber (two agents on one topic); it is done
when every one of them acked it. The committable offset is one past the highest offset whose
message, and every message before it, is done: an unacked event holds the commit back even
when later events were acked (``concurrency > 1``), so a crash never skips it.
"""

from __future__ import annotations

import asyncio
from collections import deque


class PartitionOffsets:
    """The delivered-but-not-done messages of one partition, oldest first."""

    __slots__ = (
        "_idle",
        "_pending",
        "_remaining",
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
        self._remaining: dict[int, int] = {}
        #: One past the highest offset that is done with everything before it done too.
        self.done: int | None = None
        #: The offset last committed to Kafka (what a restart resumes from).
        self.committed: int | None = None
        #: Set when the partition is taken away: acks after that are ignored.
        self.revoked = False
        self._idle: asyncio.Future[None] | None = None

    def delivered(self, offset: int, subscribers: int) -> None:
        """Record that the message at ``offset`` went to ``subscribers`` streams."""
        if subscribers <= 0:
            self._advance_past(offset)
            return
        self._pending.append(offset)
        self._remaining[offset] = subscribers

    def _advance_past(self, offset: int) -> None:
        if not self._pending:
            self.done = offset + 1
        else:
            # Nothing subscribed: done at once, but only committable once those before it are.
            self._pending.append(offset)
            self._remaining[offset] = 0
            self._drain()

    def ack(self, offset: int) -> None:
        """One subscriber is done with ``offset``."""
        remaining = self._remaining
        left = remaining.get(offset)
        if left is None:
            return
        pending = self._pending
        if left == 1 and pending[0] == offset:
            # The common case (in-order acks): the oldest pending offset is now done.
            pending.popleft()
            del remaining[offset]
            self.done = offset + 1
            if pending:
                if remaining[pending[0]] <= 0:
                    self._drain()
            elif self._idle is not None:
                self._wake_idle()
            return
        remaining[offset] = left - 1

    def _drain(self) -> None:
        pending, remaining = self._pending, self._remaining
        while pending and remaining[pending[0]] <= 0:
            offset = pending.popleft()
            del remaining[offset]
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

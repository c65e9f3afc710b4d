"""Where decoded events wait for the streams that read them.

One inbox per subscriber (an agent, or a ``topic.stream()``): the agent's ``concurrency``
instances all read the same inbox, so each event goes to exactly one of them. An inbox with
``lanes > 1`` gives each instance the partitions ``p % lanes == i``: used after ``group_by``,
where every event of a key must reach the same instance, in order.
"""

from __future__ import annotations

import asyncio
from collections import deque

from shoal.model.events import Event


def _wake_one(getters: deque[asyncio.Future[None]]) -> None:
    """Wake the first reader of a lane still waiting."""
    while getters:
        getter = getters.popleft()
        if not getter.done():
            getter.set_result(None)
            return


class Inbox:
    """A bounded, lane-aware queue of events, cheaper per event than asyncio.Queue."""

    __slots__ = ("_getters", "_lanes", "_space", "maxsize", "owner", "size")

    def __init__(self, maxsize: int = 4096, lanes: int = 1, owner: str = "") -> None:
        #: Who reads it (an agent's name): the ``agent`` label of its metrics.
        self.owner = owner
        self._lanes: list[deque[Event]] = [deque() for _ in range(lanes)]
        self._getters: list[deque[asyncio.Future[None]]] = [deque() for _ in range(lanes)]
        self._space: asyncio.Future[None] | None = None
        self.maxsize = maxsize
        self.size = 0

    @property
    def lanes(self) -> int:
        return len(self._lanes)

    def lane_for(self, partition: int) -> int:
        """The lane of ``partition``: ``partition % lanes``."""
        n = len(self._lanes)
        return partition % n if n > 1 else 0

    def push(self, event: Event) -> None:
        """Add an event without waiting; callers respect :attr:`full` for back-pressure."""
        lane = self.lane_for(event.message.partition)
        self._lanes[lane].append(event)
        self.size += 1
        getters = self._getters[lane]
        if getters:
            _wake_one(getters)

    def push_run(self, events: list[Event], partition: int) -> None:
        """Add events of one partition, in order, without waiting (see :meth:`push`)."""
        lane = self.lane_for(partition)
        self._lanes[lane].extend(events)
        self.size += len(events)
        getters = self._getters[lane]
        for _ in range(min(len(events), len(getters))):
            _wake_one(getters)

    @property
    def full(self) -> bool:
        return self.size >= self.maxsize

    async def wait_for_space(self) -> None:
        while self.size >= self.maxsize:
            if self._space is None or self._space.done():
                self._space = asyncio.get_running_loop().create_future()
            await self._space

    def get_nowait(self, lane: int = 0) -> Event | None:
        """The next event of ``lane``, or None if it has none right now (no await: the
        per-event fast path of streams)."""
        queue = self._lanes[lane % len(self._lanes)]
        if not queue:
            return None
        self.size -= 1
        space = self._space
        if space is not None and not space.done() and self.size < self.maxsize:
            space.set_result(None)
        return queue.popleft()

    async def get(self, lane: int = 0) -> Event:
        """The next event of ``lane``, waiting for one if needed."""
        queue = self._lanes[lane % len(self._lanes)]
        while not queue:
            getter = asyncio.get_running_loop().create_future()
            self._getters[lane % len(self._lanes)].append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                getter.cancel()
                raise
        self.size -= 1
        space = self._space
        if space is not None and not space.done() and self.size < self.maxsize:
            space.set_result(None)
        return queue.popleft()

    def drop_revoked(self) -> int:
        """Forget buffered events whose partition was taken away; returns how many."""
        dropped = 0
        for queue in self._lanes:
            keep = [e for e in queue if not e.revoked]
            dropped += len(queue) - len(keep)
            queue.clear()
            queue.extend(keep)
        self.size -= dropped
        space = self._space
        if dropped and space is not None and not space.done():
            space.set_result(None)
        return dropped


class PartitionInbox(Inbox):
    """An inbox with a lane of its own for each partition number, however many there are:
    the inbox of an agent with ``isolated_partitions=True``, whose actor for partition N
    reads lane :meth:`lane_for` (N)."""

    __slots__ = ("_index",)

    def __init__(self, maxsize: int = 4096, owner: str = "") -> None:
        super().__init__(maxsize, 1, owner)
        self._index: dict[int, int] = {}

    def lane_for(self, partition: int) -> int:
        """The lane of ``partition`` (made on first use; lanes are never renumbered)."""
        lane = self._index.get(partition)
        if lane is None:
            lane = len(self._index)
            if lane >= len(self._lanes):
                self._lanes.append(deque())
                self._getters.append(deque())
            self._index[partition] = lane
        return lane

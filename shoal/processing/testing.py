"""Unit-testing agents without Kafka: ``async with agent.test_context() as ctx``.

The agent runs on an in-memory inbox. ``await ctx.put(value)`` hands it one value and returns
once the agent moved past it (or raised on it); what it yielded for that event is in
``ctx.results[event.offset]``, and errors in ``ctx.errors``. Sinks are not called; what
would have gone to them is in ``ctx.sunk``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from shoal.model.events import Event, Message
from shoal.runtime.inbox import Inbox
from shoal.runtime.offsets import PartitionOffsets

Deliver = Callable[[Any, Event | None], Awaitable[None]]
OnError = Callable[[Exception, Event | None], Awaitable[bool]]
#: An agent's instance loop: (index, inbox, deliver, on_error).
RunInstance = Callable[[int, Inbox, Deliver, OnError], Coroutine[Any, Any, None]]


class _WatchedInbox(Inbox):
    """An inbox that wakes the test whenever an agent instance comes back for more."""

    __slots__ = ("activity",)

    def __init__(self) -> None:
        super().__init__()
        self.activity = asyncio.Event()

    async def get(self, lane: int = 0) -> Event:
        self.activity.set()
        return await super().get(lane)


class _WatchedOffsets(PartitionOffsets):
    """Offsets that wake the test on every ack (a take() batch is acked without a new get)."""

    __slots__ = ("activity",)

    def __init__(self, topic: str, activity: asyncio.Event) -> None:
        super().__init__(topic, 0)
        self.activity = activity

    def ack(self, offset: int) -> None:
        super().ack(offset)
        self.activity.set()


class AgentTestContext:
    """Runs one agent in memory (``agent.test_context()`` makes one); see the module
    docstring."""

    def __init__(self, topic: str, concurrency: int, run_instance: RunInstance) -> None:
        self.topic = topic
        self.concurrency = concurrency
        self._run_instance = run_instance
        self.results: dict[int, list[Any]] = {}
        self.errors: list[tuple[Event, BaseException]] = []
        self.sunk: list[Any] = []
        self._offsets: _WatchedOffsets | None = None
        self._inbox: _WatchedInbox | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._next_offset = 0

    async def __aenter__(self) -> AgentTestContext:
        self._inbox = _WatchedInbox()
        self._offsets = _WatchedOffsets(self.topic, self._inbox.activity)
        context = self

        async def deliver(value: Any, event: Event | None) -> None:
            if event is not None:
                context.results.setdefault(event.offset, []).append(value)
            context.sunk.append(value)

        async def on_error(exc: Exception, event: Event | None) -> bool:
            if event is None:
                raise exc
            context.errors.append((event, exc))
            event.ack()
            return True

        loop = asyncio.get_running_loop()
        for index in range(self.concurrency):
            self._tasks.append(
                loop.create_task(self._run_instance(index, self._inbox, deliver, on_error))
            )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def put(self, value: Any = None, *, key: Any = None, timeout: float = 10.0) -> Event:
        """Give the agent one value; return its Event once the agent is done with it."""
        assert self._inbox is not None and self._offsets is not None, (
            "use: async with agent.test_context() as ctx"
        )
        offset = self._next_offset
        self._next_offset += 1
        message = Message(self.topic, 0, offset, None, None, None)
        event = Event(key, value, message, self._offsets)
        self._offsets.delivered(offset, 1)
        self._inbox.push(event)
        async with asyncio.timeout(timeout):
            while not event.acked and not any(e is event for e, _ in self.errors):
                self._inbox.activity.clear()
                await self._inbox.activity.wait()
        return event

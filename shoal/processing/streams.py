"""Streams: async iteration over the events of a topic, with Faust's stream operators.

A stream hands out values; the Event behind the value is ``stream.current_event``. Moving to
the next value acks the events behind the previous one, which is what lets the committer
advance. Operators (``filter``, ``items``, ``take`` ...) return new streams that share the
same cursor, so ``current_event`` and replies keep working whichever stream the agent iterates.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from shoal.model.events import Event
from shoal.model.records import field_getter, field_name
from shoal.runtime import context
from shoal.runtime.inbox import Inbox
from shoal.runtime.runtime import Runtime
from shoal.runtime.subscriptions import TopicLike


class Channel(TopicLike, Protocol):
    """What a stream needs of its topic (:class:`shoal.processing.topics.Topic`)."""

    value_type: Any
    value_serializer: Any
    partitions: int | None

    def encode_key(self, key: Any) -> bytes | None: ...

    def derive(self, name: str, **options: Any) -> Channel: ...


log = logging.getLogger(__name__)

GetEvent = Callable[[], Awaitable[Event]]
#: Seconds a stream may hand out events from a full inbox without yielding to the loop.
YIELD_EVERY = 0.01
_UNSAFE_TOPIC_CHARS = re.compile(r"[^A-Za-z0-9._-]")
T = TypeVar("T")


class AgentStats:
    """Counts kept on the per-event path and read once a second for metrics: plain integer
    increments here, prometheus-client's (much dearer) calls only at the flush."""

    __slots__ = ("processed", "reported", "samples")

    #: Processing-time samples kept between two flushes (every 16th event is timed).
    MAX_SAMPLES = 256

    def __init__(self) -> None:
        self.processed = 0
        self.reported = 0
        self.samples: list[float] = []


class Cursor:
    """The event an agent instance is working on; shared by all streams derived in it."""

    __slots__ = ("concurrency", "current_event", "owner", "started", "stats")

    def __init__(self, owner: str, stats: AgentStats | None = None, concurrency: int = 1) -> None:
        self.current_event: Event | None = None
        self.owner = owner
        self.stats = stats
        self.started = 0.0
        #: Instances of the agent that share its partitions (tables refuse their writes).
        self.concurrency = concurrency


def _count_done(cursor: Cursor, stats: AgentStats) -> None:
    """One more event processed, and the time it took if it was one of the timed ones."""
    stats.processed += 1
    if cursor.started:
        _count_done_timed(cursor, stats)


def _count_done_timed(cursor: Cursor, stats: AgentStats) -> None:
    """The time the event took, from when it was handed out (``cursor.started``)."""
    started, cursor.started = cursor.started, 0.0
    if len(stats.samples) < AgentStats.MAX_SAMPLES:
        stats.samples.append(time.perf_counter() - started)


def _present_value(event: Event) -> Any:
    return event.value


class Stream(Generic[T]):
    """An async iterable of values from a topic (or several, merged with ``&``).

    ``Stream[Add]`` works in annotations, like Faust's ``StreamT[Add]``.
    """

    def __init__(
        self,
        runtime: Runtime,
        get_event: GetEvent,
        *,
        channel: Channel | None = None,
        cursor: Cursor | None = None,
        present: Callable[[Event], Any] = _present_value,
        autoack: bool = True,
        lane: int = 0,
        concurrency: int = 1,
        take: Callable[[int], Event | None] | None = None,
    ) -> None:
        self._runtime = runtime
        self.channel = channel
        self._get_event = get_event
        #: The inbox's ``get_nowait`` when ``get_event`` reads it directly: __anext__ takes
        #: a waiting event without a coroutine per event, ``get_event`` is the slow path.
        self._take = take
        #: When the fast path gives the loop a turn next (time.monotonic).
        self._yield_at = 0.0
        self._present = present
        self._cursor = cursor or Cursor(channel.get_topic_name() if channel else "stream")
        self._autoack = autoack
        self._unacked: Event | list[Event] | None = None
        self._lane = lane
        self._concurrency = concurrency
        #: Faust's: the partitions an isolated-partitions actor reads; None for the others.
        self.active_partitions: set[Any] | None = None

    @classmethod
    def from_inbox(
        cls,
        runtime: Runtime,
        inbox: Inbox,
        *,
        channel: Channel | None = None,
        cursor: Cursor | None = None,
        lane: int = 0,
        concurrency: int = 1,
    ) -> Stream[Any]:
        get_nowait = inbox.get_nowait
        clock = time.monotonic
        last_yield = clock()

        async def get_event() -> Event:
            nonlocal last_yield
            while True:
                event = get_nowait(lane)
                if event is None:
                    event = await inbox.get(lane)
                    last_yield = clock()
                elif clock() - last_yield > YIELD_EVERY:
                    # A full inbox never makes this stream wait: give the loop a turn now
                    # and then, or heartbeats and the supervisor's requests starve behind
                    # a busy agent (a stalled worker gets killed).
                    await asyncio.sleep(0)
                    last_yield = clock()
                if not event.revoked:
                    return event

        return cls(
            runtime,
            get_event,
            channel=channel,
            cursor=cursor,
            lane=lane,
            concurrency=concurrency,
            take=get_nowait,
        )

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> Stream[Any]:
        # The task that iterates finds the event it works on (tables key by its partition).
        context.enter(self._cursor)
        return self

    async def __anext__(self) -> Any:
        done = self._unacked
        cursor = self._cursor
        stats = cursor.stats
        if done is not None:  # _ack_previous(), inlined: this runs once per event
            self._unacked = None
            if self._autoack:
                if isinstance(done, Event):
                    if not done._acked:  # Event.ack(), inlined too
                        done._acked = True
                        tracker = done._tracker
                        if tracker is not None:
                            tracker.ack(done.message.offset)
                else:
                    for previous in done:
                        previous.ack()
            if stats is not None:
                stats.processed += 1  # _count_done(), inlined but for the timed events
                if cursor.started:
                    _count_done_timed(cursor, stats)
        event = None
        take = self._take
        if take is not None:
            # The fast path: an event waits in the inbox (no coroutine per event).
            event = take(self._lane)
            if event is not None:
                if time.monotonic() > self._yield_at:
                    # A full inbox never makes this stream wait: give the loop a turn now
                    # and then, or heartbeats and the supervisor's requests starve behind
                    # a busy agent (a stalled worker gets killed).
                    await asyncio.sleep(0)
                    self._yield_at = time.monotonic() + YIELD_EVERY
                if (tracker := event._tracker) is not None and tracker.revoked:
                    event = None  # the slow path skips it, and any other revoked one
        if event is None:
            event = await self._get_event()
            self._yield_at = time.monotonic() + YIELD_EVERY
        self._unacked = event
        cursor.current_event = event
        if stats is not None and not (stats.processed + 1) & 15:
            cursor.started = time.perf_counter()  # every 16th event is timed
        present = self._present
        return event.value if present is _present_value else present(event)

    def _ack_previous(self) -> None:
        done = self._unacked
        if done is None:
            return
        self._unacked = None
        if self._cursor.stats is not None:
            _count_done(self._cursor, self._cursor.stats)
        if not self._autoack:
            return
        if isinstance(done, Event):
            done.ack()
        else:
            for event in done:
                event.ack()

    @property
    def current_event(self) -> Event | None:
        """The Event behind the value last handed out (key, headers, topic, partition...)."""
        return self._cursor.current_event

    @property
    def source(self) -> Stream[Any]:
        return self

    def _derive(
        self,
        get_event: GetEvent | None = None,
        *,
        present: Callable[[Event], Any] | None = None,
        autoack: bool | None = None,
        channel: Channel | None = None,
    ) -> Stream[Any]:
        return Stream(
            self._runtime,
            get_event or self._get_event,
            channel=channel or self.channel,
            cursor=self._cursor,
            present=present or self._present,
            autoack=self._autoack if autoack is None else autoack,
            lane=self._lane,
            concurrency=self._concurrency,
            take=self._take if get_event is None else None,
        )

    # -- operators ---------------------------------------------------------------------------

    def events(self) -> Stream[Any]:
        """Iterate Events instead of values."""
        return self._derive(present=lambda event: event)

    def items(self) -> Stream[Any]:
        """Iterate ``(key, value)`` pairs."""
        return self._derive(present=lambda event: (event.key, event.value))

    def enumerate(self, start: int = 0) -> Stream[Any]:
        """Iterate ``(index, value)`` pairs."""
        counter = iter(range(start, 1 << 62))
        present = self._present
        return self._derive(present=lambda event: (next(counter), present(event)))

    def noack(self) -> Stream[Any]:
        """A stream that does not ack: call ``event.ack()`` yourself when done with it."""
        return self._derive(autoack=False)

    def filter(self, predicate: Callable[[Any], Any]) -> Stream[Any]:
        """Only values for which ``predicate`` (a function or coroutine function) is true."""
        source = self._get_event
        is_async = inspect.iscoroutinefunction(predicate)

        async def get_event() -> Event:
            while True:
                event = await source()
                keep = predicate(event.value)
                if is_async:
                    keep = await keep
                if keep:
                    return event
                event.ack()  # filtered out: done with it

        return self._derive(get_event)

    def take(self, max_: int, within: float | None = None) -> AsyncIterator[list[Any]]:
        """Lists of up to ``max_`` values; with ``within``, a list is handed out when that many
        seconds passed since its first value arrived, even if shorter."""
        if max_ < 1:
            raise ValueError("take() needs max_ >= 1")
        return _Take(self, max_, within)

    def __and__(self, other: Stream[Any]) -> Stream[Any]:
        """Merge two streams: values of either, as they arrive."""
        merged: asyncio.Queue[Event] = asyncio.Queue(maxsize=1)
        pumps: list[asyncio.Task[None]] = []

        async def pump(get: GetEvent) -> None:
            while True:
                await merged.put(await get())

        async def get_event() -> Event:
            if not pumps:
                for get in (self._get_event, other._get_event):
                    pumps.append(asyncio.get_running_loop().create_task(pump(get)))
            return await merged.get()

        return self._derive(get_event)

    def through(self, topic: Channel | str) -> Stream[Any]:
        """Forward every event to ``topic`` and continue with a stream of that topic."""
        if isinstance(topic, str):
            if self.channel is None:
                raise ValueError("through() a topic name needs a stream of a topic")
            topic = self.channel.derive(topic)
        return self._reroute(topic, key_of=None)

    def group_by(
        self,
        key: Any,
        *,
        name: str | None = None,
        topic: Channel | None = None,
        partitions: int | None = None,
    ) -> Stream[Any]:
        """Repartition by ``key`` (a Record field such as ``Transfer.account_id``, or a
        function of the value): events are re-sent through a repartition topic keyed by it,
        so every event of one key reaches the same partition, and so the same instance."""
        getter = field_getter(key)
        suffix = name or field_name(key)
        if topic is None:
            if suffix is None:
                raise ValueError("group_by() with a function as key needs name=")
            if self.channel is None:
                raise ValueError("group_by() on a stream without a topic needs topic=")
            # The owner is an agent's qualified name: a function defined in a function has
            # "<locals>" in it, and Kafka topic names allow only [A-Za-z0-9._-].
            owner = _UNSAFE_TOPIC_CHARS.sub("_", self._cursor.owner)
            source = self.channel
            # The internal topic behind group_by: same value type, keyed anew.
            topic = source.derive(
                f"{self._runtime.app_id}-{owner}-{suffix}-repartition",
                value_type=source.value_type,
                value_serializer=source.value_serializer,
                partitions=partitions or source.partitions,
                internal=True,
            )
        return self._reroute(topic, key_of=getter)

    def _reroute(self, topic: Channel, key_of: Callable[[Any], Any] | None) -> Stream[Any]:
        runtime = self._runtime
        inbox = runtime.subscriptions.subscribe(
            topic, owner=self._cursor.owner, lanes=self._concurrency if key_of else 1
        )
        source = self._get_event
        producer = runtime.producers.main()
        topic_name = topic.get_topic_name()

        async def forward() -> None:
            while True:
                event = await source()
                message = event.message
                key = message.key if key_of is None else topic.encode_key(key_of(event.value))
                producer.send_soon(topic_name, key, message.value, headers=message.headers)
                event.ack()  # the commit waits for the forwarded copy (producer barrier)

        runtime.tasks.spawn(forward(), name=f"forward {self.channel} -> {topic_name}")
        stream = Stream.from_inbox(
            runtime,
            inbox,
            channel=topic,
            cursor=self._cursor,
            lane=self._lane,
            concurrency=self._concurrency,
        )
        stream._autoack = self._autoack
        return stream


class _Take:
    """The async iterator behind ``Stream.take``."""

    def __init__(self, stream: Stream[Any], max_: int, within: float | None) -> None:
        self._stream = stream
        self._max = max_
        self._within = within
        self._next: asyncio.Task[Event] | None = None

    def __aiter__(self) -> _Take:
        return self

    async def _pull(self, timeout: float | None) -> Event | None:
        if self._next is None:
            self._next = asyncio.ensure_future(self._stream._get_event())
        done, _ = await asyncio.wait({self._next}, timeout=timeout)
        if not done:
            return None
        event = self._next.result()
        self._next = None
        return event

    async def __anext__(self) -> list[Any]:
        stream = self._stream
        stream._ack_previous()
        loop = asyncio.get_running_loop()
        first = await self._pull(None)
        assert first is not None
        batch = [first]
        deadline = None if self._within is None else loop.time() + self._within
        while len(batch) < self._max:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            if timeout == 0.0:
                break
            event = await self._pull(timeout)
            if event is None:
                break
            batch.append(event)
        stream._unacked = batch
        stream._cursor.current_event = batch[-1]
        return [stream._present(e) for e in batch]

"""Agents: async functions iterating a stream, and the ways to talk to them.

``@app.agent(topic)`` wraps a function that takes one stream. What it yields goes to its sinks
and, when the event carried a reply address (``ask``), back to the asker. ``concurrency=N``
runs N instances over one shared inbox. Asking goes through the runtime's asker
(:mod:`shoal.rpc.asker`), which the client library uses too.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from shoal.exceptions import AgentError
from shoal.kafka.metadata import AgentInfo
from shoal.kafka.producer import RecordMetadata
from shoal.model.events import Event
from shoal.model.recordmeta import RecordMeta
from shoal.processing.channels import Channel
from shoal.processing.streams import AgentStats, Cursor, Stream
from shoal.processing.topics import HeadersArg, Topic, normalize_headers
from shoal.rpc.asker import with_none_keys
from shoal.rpc.request import Request, new_correlation_id
from shoal.runtime import context
from shoal.runtime.inbox import Inbox, PartitionInbox
from shoal.runtime.runtime import Runtime
from shoal.types import TopicPartition

log = logging.getLogger(__name__)

AgentFun = Callable[[Stream[Any]], Any]
Sink = Any  # a function, an async function, a Topic, a Channel or an Agent
#: Hands what an agent yields to its sinks (and its reply); an awaitable only when a sink
#: returned one.
Deliver = Callable[[Any, Event | None], Awaitable[None] | None]
OnError = Callable[[Exception, Event | None], Awaitable[bool]]


class SyncSinks:
    """Sinks that take a value with nothing to await (topics, agents, channels), then the
    reply to an ``ask``: what an agent does with each value it yields."""

    __slots__ = ("reply", "sends")

    def __init__(
        self, sends: list[Callable[[Any], Any]], reply: Callable[[Any, Event], None]
    ) -> None:
        self.sends = sends
        self.reply = reply

    def __call__(self, value: Any, event: Event | None) -> None:
        for send in self.sends:
            send(value)
        if event is not None and event.message.headers:
            self.reply(value, event)


class Agent:
    """A stream processor started by the app, and a handle to send it values."""

    def __init__(
        self,
        fun: AgentFun,
        *,
        runtime: Runtime,
        channel: Topic | Channel,
        name: str,
        concurrency: int = 1,
        sink: Iterable[Sink] | None = None,
        on_error: str | None = None,
        isolated_partitions: bool = False,
    ) -> None:
        if concurrency < 1:
            raise AgentError(f"agent {name!r}: concurrency must be >= 1, not {concurrency}")
        if isolated_partitions and concurrency != 1:
            raise AgentError(
                f"agent {name!r}: isolated_partitions=True runs one instance per partition "
                f"already; it cannot take concurrency={concurrency}"
            )
        #: Faust's: one instance (actor) per assigned partition, started and stopped with it.
        self.isolated_partitions = isolated_partitions
        self._actors: dict[int, asyncio.Task[None]] = {}
        self._inbox: Inbox | None = None
        self.fun = fun
        self._runtime = runtime
        self.channel = channel
        self.name = name
        self.concurrency = concurrency
        self._sinks = list(sink or ())
        self._deliver: Deliver | None = None  # made by start(): sinks and producer are known
        self._on_error_policy = on_error
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = AgentStats()
        self.__doc__ = fun.__doc__
        self.__wrapped__ = fun

    @property
    def error_policy(self) -> str:
        """``on_error=`` of the agent, else the app's ``agent_error_policy`` (read when it is
        needed: ``app.conf.agent_error_policy = ...`` before the start takes effect)."""
        return self._on_error_policy or self._runtime.conf.agent_error_policy

    def __repr__(self) -> str:
        return f"<Agent {self.name} topic={self.channel} concurrency={self.concurrency}>"

    def info(self) -> AgentInfo:
        """This agent as a client sees it (published on the app's metadata topic): its topic,
        serializers, value type and its JSON schema, concurrency."""
        topic = self.channel
        value_type = topic.value_type
        schema = None
        type_name = None
        if isinstance(value_type, type):
            type_name = f"{value_type.__module__}.{value_type.__qualname__}"
            if isinstance(value_type, RecordMeta) or value_type in (int, float, str, bool):
                schema = msgspec.json.schema(value_type)
        return AgentInfo(
            name=self.name,
            topic=topic.get_topic_name(),
            key_serializer=str(topic.key_serializer),
            value_serializer=str(topic.value_serializer),
            value_type=type_name,
            value_schema=schema,
            concurrency=self.concurrency,
        )

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)
        self._deliver = None

    # -- running -----------------------------------------------------------------------------

    def start(self, inbox: Inbox) -> list[asyncio.Task[None]]:
        """Start the instances reading ``inbox`` (called by the app); an agent with isolated
        partitions starts one per partition as they are assigned (:meth:`partitions_changed`)."""
        loop = asyncio.get_running_loop()
        self._inbox = inbox
        self._deliver = None  # a fresh one for this start's producer
        if self.isolated_partitions:
            return []
        self._tasks = [
            loop.create_task(self._run_instance(i, inbox), name=f"agent {self.name}#{i}")
            for i in range(self.concurrency)
        ]
        return self._tasks

    def partitions_changed(self, assigned: bool, tps: Iterable[tuple[str, int]]) -> None:
        """Start (assigned) or stop (revoked) the actors of an isolated-partitions agent."""
        if not self.isolated_partitions or self._inbox is None:
            return
        topics = set(getattr(self.channel, "topics", ()))
        for topic, partition in tps:
            if topic not in topics:
                continue
            actor = self._actors.pop(partition, None)
            if actor is not None:
                actor.cancel()  # revoked; or assigned again: a fresh actor
            if assigned:
                inbox = self._inbox
                lane = inbox.lane_for(partition) if isinstance(inbox, PartitionInbox) else 0
                self._actors[partition] = asyncio.get_running_loop().create_task(
                    self._run_instance(lane, inbox, active={TopicPartition(topic, partition)}),
                    name=f"agent {self.name}[{partition}]",
                )
        self._tasks = [*self._actors.values()]

    async def _run_instance(
        self,
        index: int,
        inbox: Inbox,
        deliver: Deliver | None = None,
        on_error: OnError | None = None,
        active: set[TopicPartition] | None = None,
    ) -> None:
        deliver = deliver or self._deliver or self._make_deliver()
        on_error = on_error or self._on_error
        while True:
            cursor = Cursor(self.name, self.stats, self.concurrency)
            context.enter(cursor)
            stream = Stream.from_inbox(
                self._runtime,
                inbox,
                channel=self.channel if isinstance(self.channel, Topic) else None,
                cursor=cursor,
                lane=index,
                concurrency=self.concurrency,
            )
            stream.active_partitions = active
            try:
                await self._drive(stream, cursor, deliver)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not await on_error(exc, cursor.current_event):
                    return

    async def _on_error(self, exc: Exception, event: Event | None) -> bool:
        return self._runtime.errors.handle(self.name, self.error_policy, exc, event)

    async def _drive(self, stream: Stream[Any], cursor: Cursor, deliver: Deliver) -> None:
        result = self.fun(stream)
        if inspect.isasyncgen(result) and isinstance(deliver, SyncSinks):
            # deliver(), inlined: this runs once per value.
            sends, reply = deliver.sends, deliver.reply
            async for value in result:
                for send in sends:
                    send(value)
                event = cursor.current_event
                if event is not None and event.message.headers:
                    reply(value, event)
        elif inspect.isasyncgen(result):
            async for value in result:
                pending = deliver(value, cursor.current_event)
                if pending is not None:  # a sink that awaits: not the per-event common case
                    await pending
        elif inspect.isawaitable(result):
            await result
        else:
            raise AgentError(f"agent {self.name!r} must be an async function taking a stream")

    def _make_deliver(self) -> Deliver:
        """What :meth:`_drive` calls with each value the agent yields: every sink in order,
        then the reply to an ``ask``. Made once per start, not per value. Topic, agent and
        channel sinks take a value without anything to await (no coroutine per value); only
        with a function sink, which may return an awaitable, is there one."""
        reply = self._reply
        if any(not isinstance(sink, Agent | Topic | Channel) for sink in self._sinks):
            calls = [self._sink_call(sink) for sink in self._sinks]

            async def deliver_awaiting(value: Any, event: Event | None) -> None:
                for call, may_await in calls:
                    outcome = call(value)
                    if may_await and inspect.isawaitable(outcome):
                        await outcome
                if event is not None and event.message.headers:
                    reply(value, event)

            self._deliver = deliver_awaiting
            return deliver_awaiting
        deliver = SyncSinks([self._sink_call(sink)[0] for sink in self._sinks], reply)
        self._deliver = deliver
        return deliver

    @staticmethod
    def _sink_call(sink: Sink) -> tuple[Callable[[Any], Any], bool]:
        """A sink as (call with a value, may return an awaitable)."""
        if isinstance(sink, Agent | Topic | Channel):
            topic = sink.channel if isinstance(sink, Agent) else sink
            return topic.value_sender(), False
        return sink, True

    def _reply(self, value: Any, event: Event) -> None:
        request = Request.of(event.message)
        if request is not None:
            self._runtime.replier.reply(request, value=value)

    async def stop(self) -> None:
        self._tasks = [*self._tasks, *self._actors.values()]
        self._actors = {}
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- talking to the agent ----------------------------------------------------------------

    async def send(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        reply_to: Agent | Topic | str | None = None,
        correlation_id: str | None = None,
        headers: HeadersArg = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Send a value to the agent's topic; with ``reply_to`` (an agent, a topic or a topic
        name) the agent's result for it is sent there."""
        request = None
        if reply_to is not None:
            target = reply_to.channel if isinstance(reply_to, Agent) else reply_to
            name = target.get_topic_name() if isinstance(target, Topic) else str(target)
            request = Request(name, correlation_id or new_correlation_id(), self.name)
        return await self._send(key, value, request, partition=partition, headers=headers)

    async def _send(
        self,
        key: Any,
        value: Any,
        request: Request | None,
        *,
        partition: int | None = None,
        headers: HeadersArg = None,
    ) -> asyncio.Future[RecordMetadata]:
        all_headers = normalize_headers(headers) or []
        if request is not None:
            all_headers += request.headers()
        return await self.channel.send(
            key=key, value=value, partition=partition, headers=all_headers or None
        )

    async def cast(
        self,
        value: Any = None,
        *,
        key: Any = None,
        partition: int | None = None,
        headers: HeadersArg = None,
    ) -> None:
        """Send a value and expect no reply."""
        await self.send(key=key, value=value, partition=partition, headers=headers)

    async def ask(
        self,
        value: Any = None,
        *,
        key: Any = None,
        partition: int | None = None,
        reply_to: Any = None,
        correlation_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send a value and wait for the agent's reply (what it yields for it).

        Raises :class:`~shoal.exceptions.RemoteAgentError` if the agent raised, and
        :class:`~shoal.exceptions.AskTimeoutError` after ``timeout`` seconds (the app's
        ``ask_timeout`` by default), which bounds the whole call.
        """

        def send(request: Request) -> Awaitable[object]:
            return self._send(key, value, request, partition=partition)

        return await self._runtime.asker.ask(
            self.name,
            send,
            timeout or self._runtime.conf.ask_timeout,
            correlation_id=correlation_id,
            reply_to=reply_to,
        )

    def _send_item(self, key: Any, value: Any, request: Request) -> Awaitable[object]:
        return self._send(key, value, request)

    async def kvmap(
        self,
        items: AsyncIterable[tuple[Any, Any]] | Iterable[tuple[Any, Any]],
        timeout: float | None = None,
    ) -> AsyncIterator[Any]:
        """Send ``(key, value)`` pairs and yield the replies as they arrive (unordered).

        At most ``MAP_WINDOW`` requests wait at once, so an endless input is fine.
        """
        wait = timeout or self._runtime.conf.ask_timeout
        async for reply in self._runtime.asker.kvmap(self.name, items, self._send_item, wait):
            yield reply

    async def map(
        self, values: AsyncIterable[Any] | Iterable[Any], timeout: float | None = None
    ) -> AsyncIterator[Any]:
        """Send values and yield the replies as they arrive (unordered)."""
        async for reply in self.kvmap(with_none_keys(values), timeout):
            yield reply

    async def kvjoin(
        self,
        items: AsyncIterable[tuple[Any, Any]] | Iterable[tuple[Any, Any]],
        timeout: float | None = None,
    ) -> list[Any]:
        """Send ``(key, value)`` pairs; return the replies in input order."""
        wait = timeout or self._runtime.conf.ask_timeout
        return await self._runtime.asker.kvjoin(self.name, items, self._send_item, wait)

    async def join(
        self, values: AsyncIterable[Any] | Iterable[Any], timeout: float | None = None
    ) -> list[Any]:
        """Send values; return the replies in input order."""
        return await self.kvjoin(with_none_keys(values), timeout)

    def test_context(self) -> Any:
        """Run this agent on an in-memory channel, without Kafka (see shoal.testing)."""
        from shoal.processing.testing import AgentTestContext

        return AgentTestContext(self.channel.get_topic_name(), self.concurrency, self._run_instance)


def qualified_name(fun: Callable[..., Any]) -> str:
    """An agent's default name, as Faust makes it: ``module.function``. A function of a
    script run as ``python app.py`` is named after the script (``app.function``), not
    ``__main__``, so that a worker that imports the module and the script agree."""
    module = fun.__module__
    if module == "__main__":
        module = _main_module_name()
    return f"{module}.{fun.__name__}"


def _main_module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:  # python -m package.module
        return str(spec.name)
    path = getattr(main, "__file__", None)
    if not path:
        return "__main__"
    file = Path(path).resolve()
    parts = [file.stem]
    folder = file.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)

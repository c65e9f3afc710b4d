"""Agents: async functions iterating a stream, and the ways to talk to them.

``@app.agent(topic)`` wraps a function that takes one stream. What it yields goes to its sinks
and, when the event carried a reply address (``ask``), back to the asker. ``concurrency=N``
runs N instances over one shared inbox.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from shoal.exceptions import AgentError, AskTimeoutError
from shoal.kafka import clients
from shoal.kafka.metadata import AgentInfo
from shoal.kafka.producer import RecordMetadata
from shoal.model.events import Event
from shoal.model.recordmeta import RecordMeta
from shoal.processing.streams import AgentStats, Cursor, Stream
from shoal.processing.topics import HeadersArg, Topic, normalize_headers
from shoal.rpc.replies import AGENT, CORRELATION_ID, REPLY_TO, ReplyFutures, new_correlation_id
from shoal.runtime.inbox import Inbox

if TYPE_CHECKING:
    from shoal.app import App

log = logging.getLogger(__name__)

AgentFun = Callable[[Stream[Any]], Any]
Sink = Any  # a function, an async function, a Topic or an Agent
Deliver = Callable[[Any, Event | None], Awaitable[None]]
OnError = Callable[[Exception, Event | None], Awaitable[bool]]

# How many map()/kvmap() requests may wait for replies at once (endless inputs stay bounded).
MAP_WINDOW = 1000


class Agent:
    """A stream processor started by the app, and a handle to send it values."""

    def __init__(
        self,
        fun: AgentFun,
        *,
        app: App,
        channel: Topic,
        name: str,
        concurrency: int = 1,
        sink: Iterable[Sink] | None = None,
        on_error: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise AgentError(f"agent {name!r}: concurrency must be >= 1, not {concurrency}")
        self.fun = fun
        self.app = app
        self.channel = channel
        self.name = name
        self.concurrency = concurrency
        self._sinks = list(sink or ())
        self._calls: list[tuple[Callable[[Any], Any], bool]] | None = None
        self.error_policy = on_error or app.conf.agent_error_policy
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = AgentStats()
        self.__doc__ = fun.__doc__
        self.__wrapped__ = fun

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
        self._calls = None

    # -- running -----------------------------------------------------------------------------

    def start(self, inbox: Inbox) -> list[asyncio.Task[None]]:
        """Start the instances reading ``inbox`` (called by the app)."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run_instance(i, inbox), name=f"agent {self.name}#{i}")
            for i in range(self.concurrency)
        ]
        return self._tasks

    async def _run_instance(
        self,
        index: int,
        inbox: Inbox,
        deliver: Deliver | None = None,
        on_error: OnError | None = None,
    ) -> None:
        deliver = deliver or self._deliver
        on_error = on_error or self._on_error
        while True:
            cursor = Cursor(self.name, self.stats)
            stream = Stream.from_inbox(
                self.app,
                inbox,
                channel=self.channel,
                cursor=cursor,
                lane=index,
                concurrency=self.concurrency,
            )
            try:
                await self._drive(stream, cursor, deliver)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not await on_error(exc, cursor.current_event):
                    return

    async def _on_error(self, exc: Exception, event: Event | None) -> bool:
        return await self.app.handle_agent_error(self, exc, event)

    async def _drive(self, stream: Stream[Any], cursor: Cursor, deliver: Deliver) -> None:
        result = self.fun(stream)
        if inspect.isasyncgen(result):
            async for value in result:
                await deliver(value, cursor.current_event)
        elif inspect.isawaitable(result):
            await result
        else:
            raise AgentError(f"agent {self.name!r} must be an async function taking a stream")

    def _sink_calls(self) -> list[tuple[Callable[[Any], Any], bool]]:
        """Each sink as (call, may return an awaitable), worked out once, not per event."""
        calls: list[tuple[Callable[[Any], Any], bool]] = []
        for sink in self._sinks:
            if isinstance(sink, Agent | Topic):
                topic = sink.channel if isinstance(sink, Agent) else sink
                calls.append((functools.partial(_send_value, topic), False))
            else:
                calls.append((sink, True))
        return calls

    async def _deliver(self, value: Any, event: Event | None) -> None:
        calls = self._calls
        if calls is None:
            calls = self._calls = self._sink_calls()
        for call, may_await in calls:
            outcome = call(value)
            if may_await and inspect.isawaitable(outcome):
                await outcome
        if event is not None and event.message.headers:
            reply_to = event.message.header(REPLY_TO)
            if reply_to is not None:
                self.app.reply(reply_to.decode(), event, value=value)

    async def stop(self) -> None:
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
        all_headers = normalize_headers(headers) or []
        if reply_to is not None:
            target = reply_to.channel if isinstance(reply_to, Agent) else reply_to
            name = target.get_topic_name() if isinstance(target, Topic) else str(target)
            all_headers.append((REPLY_TO, name.encode()))
            all_headers.append((CORRELATION_ID, (correlation_id or new_correlation_id()).encode()))
            all_headers.append((AGENT, self.name.encode()))
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
        ``ask_timeout`` by default).
        """
        wait = timeout or self.app.conf.ask_timeout
        deadline = asyncio.get_running_loop().time() + wait
        replies = await self._replies_within(wait)
        if reply_to is not None and str(reply_to) != replies.topic:
            raise AgentError(
                "ask() waits on this process's own reply topic; "
                "use send(reply_to=...) to have the reply sent elsewhere"
            )
        cid = correlation_id or new_correlation_id()
        future = replies.expect(cid, self.name)
        try:
            await self.send(
                key=key,
                value=value,
                partition=partition,
                reply_to=replies.topic,
                correlation_id=cid,
                headers=replies.request_headers(),
            )
        except BaseException:
            replies.forget(cid)
            raise
        remaining = deadline - asyncio.get_running_loop().time()
        return await replies.wait(cid, future, remaining, self._broker_hint(wait))

    async def _replies_within(self, timeout: float) -> ReplyFutures:
        """This process's replies; a first ask makes its reply topic, within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                return await self.app.ensure_replies()
        except TimeoutError:
            raise AskTimeoutError(
                f"ask of agent {self.name!r} gave up after {timeout:g} s: this process's reply "
                f"topic could not be made in that time{self._broker_hint(timeout)()}"
            ) from None

    def _broker_hint(self, within: float) -> Callable[[], str]:
        bootstrap = self.app.conf.bootstrap_servers
        return lambda: clients.describe_unreachable(bootstrap, within)

    async def kvmap(
        self,
        items: AsyncIterable[tuple[Any, Any]] | Iterable[tuple[Any, Any]],
        timeout: float | None = None,
    ) -> AsyncIterator[Any]:
        """Send ``(key, value)`` pairs and yield the replies as they arrive (unordered).

        At most ``MAP_WINDOW`` requests wait at once, so an endless input is fine.
        """
        wait = timeout or self.app.conf.ask_timeout
        replies = await self._replies_within(wait)
        hint = self._broker_hint(wait)
        window = asyncio.Semaphore(MAP_WINDOW)
        results: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()
        waiting = 0
        sent_all = False

        async def one(key: Any, value: Any) -> None:
            try:
                cid = new_correlation_id()
                future = replies.expect(cid, self.name)
                await self.send(
                    key=key,
                    value=value,
                    reply_to=replies.topic,
                    correlation_id=cid,
                    headers=replies.request_headers(),
                )
                results.put_nowait((True, await replies.wait(cid, future, wait, hint)))
            except Exception as exc:
                results.put_nowait((False, exc))
            finally:
                window.release()

        async def feed() -> None:
            nonlocal waiting, sent_all
            async for key, value in _aiter(items):
                await window.acquire()
                waiting += 1
                tasks.add(asyncio.ensure_future(one(key, value)))
            sent_all = True
            results.put_nowait((True, _DONE))

        tasks: set[asyncio.Future[None]] = set()
        feeder = asyncio.ensure_future(feed())
        try:
            while not (sent_all and waiting == 0):
                ok, item = await results.get()
                if item is _DONE:
                    continue
                waiting -= 1
                if not ok:
                    raise item
                yield item
            await feeder
        finally:
            feeder.cancel()
            for task in tasks:
                task.cancel()

    async def map(
        self, values: AsyncIterable[Any] | Iterable[Any], timeout: float | None = None
    ) -> AsyncIterator[Any]:
        """Send values and yield the replies as they arrive (unordered)."""
        async for reply in self.kvmap(_with_none_keys(values), timeout):
            yield reply

    async def kvjoin(
        self,
        items: AsyncIterable[tuple[Any, Any]] | Iterable[tuple[Any, Any]],
        timeout: float | None = None,
    ) -> list[Any]:
        """Send ``(key, value)`` pairs; return the replies in input order."""
        wait = timeout or self.app.conf.ask_timeout
        replies = await self._replies_within(wait)
        hint = self._broker_hint(wait)
        pending: list[tuple[str, asyncio.Future[Any]]] = []
        async for key, value in _aiter(items):
            cid = new_correlation_id()
            pending.append((cid, replies.expect(cid, self.name)))
            await self.send(
                key=key,
                value=value,
                reply_to=replies.topic,
                correlation_id=cid,
                headers=replies.request_headers(),
            )
        return list(
            await asyncio.gather(
                *(replies.wait(cid, future, wait, hint) for cid, future in pending)
            )
        )

    async def join(
        self, values: AsyncIterable[Any] | Iterable[Any], timeout: float | None = None
    ) -> list[Any]:
        """Send values; return the replies in input order."""
        return await self.kvjoin(_with_none_keys(values), timeout)

    def test_context(self) -> Any:
        """Run this agent on an in-memory channel, without Kafka (see shoal.testing)."""
        from shoal.processing.testing import AgentTestContext

        return AgentTestContext(self.channel.get_topic_name(), self.concurrency, self._run_instance)


_DONE = object()


def _send_value(topic: Topic, value: Any) -> None:
    topic.send_soon(value=value)


async def _aiter(items: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterator[Any]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def _with_none_keys(values: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterator[Any]:
    async for value in _aiter(values):
        yield None, value

"""Asking agents: ``ask``, ``map``/``kvmap`` and ``join``/``kvjoin``, for agents of this app
and for the client library alike.

The asker owns where this process's replies arrive: a reply topic of its own, made on the
first ask (:class:`~shoal.rpc.replytopics.ReplyTopic`), or for a worker of a supervisor its
host's, which the supervisor reads and routes (:meth:`Asker.use_host`). What sends a request
is given to it (an agent's topic, or the client's producer), so the same code serves both.
Every ask has a timeout, and it bounds the whole call, the first ask's reply topic included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from shoal.config import Settings
from shoal.exceptions import AgentError, AskTimeoutError
from shoal.kafka.clients import describe_unreachable
from shoal.kafka.producer import Producer
from shoal.rpc.futures import ReplyFutures
from shoal.rpc.replytopics import ReplyTopic
from shoal.rpc.request import CORRELATION_ID, ERROR, Request, new_correlation_id

#: How many map()/kvmap() requests may wait for replies at once (endless inputs stay bounded).
MAP_WINDOW = 1000

#: Sends one request (the key and value are the caller's).
Send = Callable[[Request], Awaitable[object]]
#: Sends the request for one (key, value) pair.
SendItem = Callable[[Any, Any, Request], Awaitable[object]]

_DONE = object()


class Asker:
    """This process's asks; see the module docstring."""

    def __init__(
        self,
        conf: Settings,
        app_id: str | Callable[[], str],
        producer: Callable[[], Awaitable[Producer]],
    ) -> None:
        self._conf = conf
        # A callable is asked at the first ask (the app id may change before the app starts).
        self._app_id = app_id if callable(app_id) else lambda: app_id
        self._producer = producer
        #: Where replies arrive; None until the first ask (or :meth:`use_host`).
        self.futures: ReplyFutures | None = None
        self._own: ReplyTopic | None = None
        self._lock: asyncio.Lock | None = None  # made on the loop, at the first ask

    def use_host(self, topic: str, route: str) -> None:
        """A worker of a supervisor: asks reply to the host's topic with ``route`` (the
        worker's index); the supervisor hands their replies over the local channel."""
        self.futures = ReplyFutures(topic, route)

    @property
    def pending(self) -> int:
        return self.futures.pending if self.futures is not None else 0

    async def replies(self) -> ReplyFutures:
        """Where this process's replies arrive: its own reply topic is made on first use."""
        if self.futures is not None:
            return self.futures
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # concurrent first asks make one topic
            if self.futures is None:
                producer = await self._producer()
                own = ReplyTopic(self._conf, self._app_id(), self._on_reply)
                await own.open(producer)
                self._own = own
                self.futures = ReplyFutures(own.topic)
        return self.futures

    def _on_reply(self, headers: dict[str, bytes], value: bytes | None) -> None:
        cid = headers.get(CORRELATION_ID)
        if cid is not None and self.futures is not None:
            self.futures.resolve(cid.decode(), value, headers.get(ERROR))

    async def _replies_within(self, agent: str, timeout: float) -> ReplyFutures:
        try:
            async with asyncio.timeout(timeout):
                return await self.replies()
        except TimeoutError:
            raise AskTimeoutError(
                f"ask of agent {agent!r} gave up after {timeout:g} s: this process's reply "
                f"topic could not be made in that time{self._hint(timeout)()}"
            ) from None

    def _hint(self, within: float) -> Callable[[], str]:
        bootstrap = self._conf.bootstrap_servers
        return lambda: describe_unreachable(bootstrap, within)

    # -- asking ------------------------------------------------------------------------------

    async def ask(
        self,
        agent: str,
        send: Send,
        timeout: float,
        *,
        correlation_id: str | None = None,
        reply_to: Any = None,
    ) -> Any:
        """Send one request with ``send`` and wait for its reply, ``timeout`` in all."""
        deadline = asyncio.get_running_loop().time() + timeout
        futures = await self._replies_within(agent, timeout)
        if reply_to is not None and str(reply_to) != futures.topic:
            raise AgentError(
                "ask() waits on this process's own reply topic; "
                "use send(reply_to=...) to have the reply sent elsewhere"
            )
        cid = correlation_id or new_correlation_id()
        request = Request(futures.topic, cid, agent, futures.route)
        future = futures.expect(request.correlation_id, agent)
        try:
            await send(request)
        except BaseException:
            futures.forget(request.correlation_id)
            raise
        remaining = deadline - asyncio.get_running_loop().time()
        return await futures.wait(
            request.correlation_id, future, remaining, self._hint(timeout), whole=timeout
        )

    async def kvmap(
        self,
        agent: str,
        items: AsyncIterable[tuple[Any, Any]] | Iterable[tuple[Any, Any]],
        send: SendItem,
        timeout: float,
    ) -> AsyncIterator[Any]:
        """Send a request per ``(key, value)`` and yield the replies as they arrive
        (unordered); at most ``MAP_WINDOW`` wait at once, so an endless input is fine."""
        futures = await self._replies_within(agent, timeout)
        hint = self._hint(timeout)
        window = asyncio.Semaphore(MAP_WINDOW)
        results: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()
        waiting = 0
        sent_all = False

        async def one(key: Any, value: Any) -> None:
            try:
                request = Request(futures.topic, new_correlation_id(), agent, futures.route)
                future = futures.expect(request.correlation_id, agent)
                await send(key, value, request)
                reply = await futures.wait(request.correlation_id, future, timeout, hint)
                results.put_nowait((True, reply))
            except Exception as exc:
                results.put_nowait((False, exc))
            finally:
                window.release()

        async def feed() -> None:
            nonlocal waiting, sent_all
            async for key, value in aiter_of(items):
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

    async def kvjoin(
        self,
        agent: str,
        items: AsyncIterable[tuple[Any, Any]] | Iterable[tuple[Any, Any]],
        send: SendItem,
        timeout: float,
    ) -> list[Any]:
        """Send a request per ``(key, value)``; return the replies in input order."""
        futures = await self._replies_within(agent, timeout)
        hint = self._hint(timeout)
        pending: list[tuple[str, asyncio.Future[Any]]] = []
        async for key, value in aiter_of(items):
            request = Request(futures.topic, new_correlation_id(), agent, futures.route)
            pending.append((request.correlation_id, futures.expect(request.correlation_id, agent)))
            await send(key, value, request)
        return list(
            await asyncio.gather(*(futures.wait(cid, f, timeout, hint) for cid, f in pending))
        )

    async def close(self, timeout: float = 15.0) -> None:
        """Stop reading this process's own reply topic and delete it (a clean close)."""
        if self._own is not None:
            await self._own.close(await self._producer(), timeout)
            self._own = None
            self.futures = None


async def aiter_of(items: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterator[Any]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def with_none_keys(values: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterator[Any]:
    async for value in aiter_of(values):
        yield None, value

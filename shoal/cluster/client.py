"""The bundled client library: talk to a running shoal cluster with only its app id and broker.

::

    from shoal.cluster.client import Client, SyncClient

    async with Client("agent-example", broker="kafka://localhost:9092") as client:
        assert await client.ask("adding", {"a": 4, "b": 4}) == 8

    with SyncClient("agent-example", broker="kafka://localhost:9092") as client:
        client.ask("adding", {"a": 1, "b": 2})      # for scripts and non-async web handlers
        client.table("word_counts")["hello"]        # a table's value, from its owner

Agents are found by their full name or function name in the descriptions the cluster's
workers publish on the app's metadata topic; values may be Records, dicts or anything JSON
can carry, and are encoded with the agent's serializer. The client's reply topic is made on
its first ``ask`` and deleted on ``close()``; one left by a client that died is removed by
``clusterctl clean`` once its liveness record is older than a few minutes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, TypeVar

import aiohttp

from shoal.cluster.remote import RemoteAgent
from shoal.cluster.tables import RemoteTable
from shoal.config import load_settings
from shoal.exceptions import AgentError, AskTimeoutError, BrokerError
from shoal.kafka.clients import producer_config
from shoal.kafka.metadata import AgentInfo, Metadata, read_metadata
from shoal.kafka.producer import Producer, RecordMetadata
from shoal.model import codecs
from shoal.rpc.asker import Asker

T = TypeVar("T")

#: How often a client looks again for an agent that is not published yet.
AGENT_POLL_INTERVAL = 0.25


class Client:
    """An asyncio client of one app's cluster."""

    def __init__(self, app_id: str, *, broker: Any = None, **settings: Any) -> None:
        if broker is not None:
            settings["broker"] = broker
        # A client sends single requests that someone waits for: batching them (linger)
        # would only add latency. Pass producer_linger_ms to choose otherwise.
        if "producer_linger" not in settings:
            settings.setdefault("producer_linger_ms", 0)
        self.conf = load_settings({**settings, "id": app_id})
        self.app_id = app_id
        self._producer: Producer | None = None
        self._asker = Asker(self.conf, app_id, self._ensure_producer)
        self._handles: dict[str, RemoteAgent] = {}
        self._metadata: Metadata | None = None
        self._http: aiohttp.ClientSession | None = None

    async def _ensure_producer(self) -> Producer:
        if self._producer is None:
            config = producer_config(self.conf, f"shoal-{self.app_id}", wait_out_outages=False)
            producer = Producer(config)
            producer.start()
            self._producer = producer
        return self._producer

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self, timeout: float = 10.0) -> None:
        """Delete this client's reply topic and deliver what is queued, waiting at most
        ``timeout`` seconds for the broker."""
        await self._asker.close(timeout)
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._producer is not None:
            await asyncio.to_thread(self._producer.stop, timeout)
            self._producer = None

    async def agents(self, *, refresh: bool = False, timeout: float = 10.0) -> dict[str, AgentInfo]:
        """The agents the cluster published, by full name."""
        if self._metadata is None or refresh:
            self._metadata = await asyncio.to_thread(
                read_metadata, self.conf.bootstrap_servers, self.app_id, timeout
            )
        return dict(self._metadata.agents)

    def table(self, name: str, *, timeout: float | None = None) -> RemoteTable:
        """Table ``name`` of the cluster: ``await client.table('counts')['hello']`` reads a
        key from the worker that holds it, through the hosts' web endpoints (see
        :mod:`shoal.cluster.tables`); KeyError for a key the table does not have."""
        return RemoteTable(
            name, self._read_metadata, self._session, timeout or self.conf.ask_timeout
        )

    async def _read_metadata(self, refresh: bool) -> Metadata:
        await self.agents(refresh=refresh)
        assert self._metadata is not None
        return self._metadata

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def agent(self, name: str, *, timeout: float | None = None) -> RemoteAgent:
        """A handle to agent ``name`` (full or function name). An agent that is not
        published yet (the cluster is starting) is waited for, up to ``timeout`` seconds
        (the app's ``ask_timeout`` by default)."""
        if name in self._handles:
            return self._handles[name]
        wait = timeout or self.conf.ask_timeout
        deadline = time.monotonic() + wait
        refresh = False
        while True:
            remaining = deadline - time.monotonic()
            try:
                await self.agents(refresh=refresh, timeout=max(0.1, remaining))
            except BrokerError as exc:
                if time.monotonic() >= deadline:
                    raise AskTimeoutError(
                        f"gave up on agent {name!r} after {wait:g} s: {exc}"
                    ) from None
            else:
                assert self._metadata is not None
                info = self._metadata.find_agent(name)
                if info is not None:
                    break
                if time.monotonic() >= deadline:
                    known = ", ".join(sorted(self._metadata.agents)) or "none published yet"
                    raise AgentError(
                        f"app {self.app_id!r} has no agent {name!r} (known: {known}; waited "
                        f"{wait:g} s for it); is a worker of the app running?"
                    )
            refresh = True
            await asyncio.sleep(min(AGENT_POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
        handle = RemoteAgent(info, self._ensure_producer, self._asker)
        self._handles[name] = handle
        return handle

    async def ask(
        self, agent: str, value: Any = None, *, key: Any = None, timeout: float | None = None
    ) -> Any:
        """Send ``value`` to ``agent`` and return its reply. ``timeout`` (the app's
        ``ask_timeout`` by default) bounds the whole call: finding the agent, making this
        client's reply topic on its first ask, and waiting for the reply."""
        wait = timeout or self.conf.ask_timeout
        deadline = time.monotonic() + wait
        handle = await self.agent(agent, timeout=wait)
        return await handle.ask(value, key=key, timeout=max(0.001, deadline - time.monotonic()))

    async def cast(self, agent: str, value: Any = None, *, key: Any = None) -> None:
        """Send ``value`` to ``agent``; no reply."""
        await (await self.agent(agent)).send(value, key=key)

    async def send(
        self,
        target: str,
        value: Any = None,
        *,
        key: Any = None,
        partition: int | None = None,
        reply_to: str | None = None,
    ) -> RecordMetadata:
        """Send to an agent (by name) or else a topic; returns where the broker stored it.
        With ``reply_to`` (a topic or agent topic name) the agent's reply goes there."""
        await self.agents()
        assert self._metadata is not None
        if self._metadata.find_agent(target) is not None:
            handle = await self.agent(target)
            future = await handle.send(value, key=key, partition=partition, reply_to=reply_to)
        else:
            producer = await self._ensure_producer()
            encode_key = codecs.make_encoder(self.conf.key_serializer)
            future = await producer.send(
                target,
                None if key is None else encode_key(key),
                codecs.make_encoder(self.conf.value_serializer)(value),
                partition=partition,
            )
        return await future

    async def map(
        self,
        agent: str,
        values: AsyncIterable[Any] | Iterable[Any],
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[Any]:
        """Replies for ``values`` as they arrive (unordered)."""
        handle = await self.agent(agent)
        async for reply in handle.map(values, timeout or self.conf.ask_timeout):
            yield reply

    async def join(
        self,
        agent: str,
        values: AsyncIterable[Any] | Iterable[Any],
        *,
        timeout: float | None = None,
    ) -> list[Any]:
        """Replies for ``values`` in input order."""
        return await (await self.agent(agent)).join(values, timeout or self.conf.ask_timeout)


class SyncClient:
    """The same calls, blocking: an event loop in a background thread does the work."""

    def __init__(self, app_id: str, *, broker: Any = None, **settings: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="shoal-sync-client", daemon=True
        )
        self._thread.start()
        self._client = Client(app_id, broker=broker, **settings)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def agents(self, *, refresh: bool = False) -> dict[str, AgentInfo]:
        return self._run(self._client.agents(refresh=refresh))

    def ask(
        self, agent: str, value: Any = None, *, key: Any = None, timeout: float | None = None
    ) -> Any:
        return self._run(self._client.ask(agent, value, key=key, timeout=timeout))

    def cast(self, agent: str, value: Any = None, *, key: Any = None) -> None:
        self._run(self._client.cast(agent, value, key=key))

    def send(self, target: str, value: Any = None, *, key: Any = None, **kw: Any) -> RecordMetadata:
        return self._run(self._client.send(target, value, key=key, **kw))

    def join(self, agent: str, values: Iterable[Any], *, timeout: float | None = None) -> list[Any]:
        return self._run(self._client.join(agent, values, timeout=timeout))

    def map(self, agent: str, values: Iterable[Any], *, timeout: float | None = None) -> list[Any]:
        """Replies in the order they arrived."""

        async def collect() -> list[Any]:
            return [r async for r in self._client.map(agent, values, timeout=timeout)]

        return self._run(collect())

    def table(self, name: str, *, timeout: float | None = None) -> SyncTable:
        """Table ``name``: ``client.table('counts')['hello']``."""
        return SyncTable(self._client.table(name, timeout=timeout), self._run)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class SyncTable:
    """A :class:`~shoal.cluster.tables.RemoteTable`, blocking."""

    def __init__(self, table: RemoteTable, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._table = table
        self._run = run

    def __getitem__(self, key: Any) -> Any:
        return self._run(self._table.lookup(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return self._run(self._table.get(key, default))

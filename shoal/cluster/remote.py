"""A handle to an agent that runs in a cluster: what the client library sends requests with.

Small on purpose: the agent's topic and serializers (from the description its workers
publish), a producer and the client's asker. It needs nothing of an App.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from shoal.exceptions import EncodeError
from shoal.kafka.metadata import AgentInfo
from shoal.kafka.producer import Producer, RecordMetadata
from shoal.model import codecs
from shoal.rpc.asker import Asker, with_none_keys
from shoal.rpc.request import Request, new_correlation_id


class RemoteAgent:
    """Send to, ask, map over and join with one agent of a cluster."""

    def __init__(
        self, info: AgentInfo, producer: Callable[[], Awaitable[Producer]], asker: Asker
    ) -> None:
        self.info = info
        self.name = info.name
        self._producer = producer
        self._asker = asker
        self._encode_key = codecs.make_encoder(info.key_serializer)
        self._encode_value = codecs.make_encoder(info.value_serializer)

    def __repr__(self) -> str:
        return f"<RemoteAgent {self.name} topic={self.info.topic}>"

    async def _send(
        self, key: Any, value: Any, request: Request | None, partition: int | None = None
    ) -> asyncio.Future[RecordMetadata]:
        try:
            data_key = None if key is None else self._encode_key(key)
            data = self._encode_value(value)
        except Exception as exc:
            raise EncodeError(f"agent {self.name}: cannot encode {value!r}: {exc}") from exc
        producer = await self._producer()
        return await producer.send(
            self.info.topic,
            data_key,
            data,
            partition=partition,
            headers=request.headers() if request is not None else None,
        )

    async def send(
        self,
        value: Any = None,
        *,
        key: Any = None,
        partition: int | None = None,
        reply_to: str | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Send a value; with ``reply_to`` (a topic name) the agent's result goes there."""
        request = None
        if reply_to is not None:
            request = Request(reply_to, new_correlation_id(), self.name)
        return await self._send(key, value, request, partition)

    async def ask(self, value: Any = None, *, key: Any = None, timeout: float) -> Any:
        """Send a value and wait for the agent's reply, ``timeout`` in all."""
        return await self._asker.ask(
            self.name, lambda request: self._send(key, value, request), timeout
        )

    def _send_item(self, key: Any, value: Any, request: Request) -> Awaitable[object]:
        return self._send(key, value, request)

    async def map(
        self, values: AsyncIterable[Any] | Iterable[Any], timeout: float
    ) -> AsyncIterator[Any]:
        """Replies for ``values`` as they arrive (unordered)."""
        async for reply in self._asker.kvmap(
            self.name, with_none_keys(values), self._send_item, timeout
        ):
            yield reply

    async def join(self, values: AsyncIterable[Any] | Iterable[Any], timeout: float) -> list[Any]:
        """Replies for ``values`` in input order."""
        return await self._asker.kvjoin(self.name, with_none_keys(values), self._send_item, timeout)

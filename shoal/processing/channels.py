"""In-memory channels: Faust's ``app.channel()``, a stream inside one process, no Kafka.

An agent can read a channel as it reads a topic (``@app.agent(channel)``), and anything in the
process can ``await channel.send(value=...)`` or ``await channel.put(value)``. Each reader
(an agent, a ``channel.stream()``) gets every value; an agent's ``concurrency`` instances
share one inbox, as they do for a topic. Values are not encoded, have no offsets and are not
committed: what a channel holds when the process stops is gone, as in Faust.

Unlike Faust, a value sent before anyone reads the channel is kept (up to ``maxsize``) for
the first reader rather than dropped, and a sender waits while a reader's inbox is full.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from shoal.exceptions import AgentError
from shoal.kafka.producer import RecordMetadata
from shoal.model.events import Event, Message
from shoal.processing.streams import Stream
from shoal.processing.topics import HeadersArg, normalize_headers
from shoal.runtime.inbox import Inbox
from shoal.runtime.runtime import Runtime

_ids = itertools.count()


class Channel:
    """See the module docstring."""

    internal = False
    partitions = None
    key_serializer = "-"
    value_serializer = "-"

    def __init__(
        self,
        runtime: Runtime,
        *,
        key_type: Any = None,
        value_type: Any = None,
        maxsize: int | None = None,
    ) -> None:
        self._runtime = runtime
        self.key_type = key_type
        self.value_type = value_type
        self.maxsize = maxsize
        self.name = f"<channel {next(_ids)}>"
        self.topics = (self.name,)
        self._readers: dict[str, Inbox] = {}
        #: Values sent before anyone reads: the first reader takes them.
        self._waiting: list[Event] = []
        self._offsets = itertools.count()

    def __repr__(self) -> str:
        return f"<Channel {self.name} value_type={self.value_type}>"

    def __str__(self) -> str:
        return self.name

    def get_topic_name(self) -> str:
        return self.name

    # -- reading -----------------------------------------------------------------------------

    def inbox(self, owner: str, lanes: int = 1) -> Inbox:
        """The inbox of reader ``owner`` (made once; the first reader takes what waits)."""
        inbox = self._readers.get(owner)
        if inbox is None:
            size = self.maxsize or self._runtime.conf.stream_buffer_maxsize
            inbox = self._readers[owner] = Inbox(size, lanes, owner)
            waiting, self._waiting = self._waiting, []
            for event in waiting:
                inbox.push(event)
        return inbox

    def stream(self) -> Stream[Any]:
        """A stream of the values sent from now on (and of those waiting for a reader)."""
        inbox = self.inbox(f"stream:{self.name}:{next(_ids)}")
        return Stream.from_inbox(self._runtime, inbox)

    def __aiter__(self) -> Stream[Any]:
        return self.stream()

    # -- writing -----------------------------------------------------------------------------

    def _event(self, key: Any, value: Any, partition: int | None, headers: HeadersArg) -> Event:
        message = Message(
            self.name,
            partition or 0,
            next(self._offsets),
            time.time(),
            None,
            None,
            normalize_headers(headers),
        )
        return Event(key, value, message)

    def send_soon(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        headers: HeadersArg = None,
    ) -> None:
        """Hand a value to every reader now, without waiting for room (sinks use this)."""
        event = self._event(key, value, partition, headers)
        if not self._readers:
            self._waiting.append(event)
            return
        for inbox in self._readers.values():
            inbox.push(event)

    def value_sender(self) -> Callable[[Any], None]:
        """``send_soon(value=value)`` as a function of the value: an agent's sink."""
        return lambda value: self.send_soon(value=value)

    async def send(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        headers: HeadersArg = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Hand a value to every reader, waiting while one's inbox is full. The returned
        future is done at once (there is no broker to wait for)."""
        if not self._readers and len(self._waiting) >= (
            self.maxsize or self._runtime.conf.stream_buffer_maxsize
        ):
            raise AgentError(f"{self}: nobody reads it and {len(self._waiting)} values wait")
        for inbox in self._readers.values():
            if inbox.full:
                await inbox.wait_for_space()
        self.send_soon(key=key, value=value, partition=partition, headers=headers)
        done: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        done.set_result(RecordMetadata(self.name, -1 if partition is None else partition, -1))
        return done

    async def put(self, value: Any = None, *, key: Any = None) -> None:
        """Faust's ``channel.put``: send one value."""
        await self.send(key=key, value=value)

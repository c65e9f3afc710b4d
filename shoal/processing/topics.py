"""Topics: names, key and value types, serializers, partitions; sending to them and
streaming from them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from shoal.exceptions import DecodeError, EncodeError
from shoal.kafka.admin import TopicSpec
from shoal.kafka.partitioner import KeySpace, key_type_name
from shoal.kafka.producer import RecordMetadata
from shoal.model import codecs
from shoal.model.events import Event, Message, Tracker
from shoal.processing.streams import Stream
from shoal.runtime.runtime import Runtime
from shoal.types import Headers

HeadersArg = Headers | dict[str, bytes | str] | None


def normalize_headers(headers: HeadersArg) -> Headers | None:
    if not headers:
        return None
    items = headers.items() if isinstance(headers, dict) else headers
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in items]


class Topic:
    """One or more Kafka topics read and written with the same key/value types.

    The first name is the main one: what an agent on this topic is sent to.
    """

    def __init__(
        self,
        runtime: Runtime,
        *topics: str,
        key_type: Any = None,
        value_type: Any = None,
        key_serializer: Any = None,
        value_serializer: Any = None,
        partitions: int | None = None,
        replicas: int | None = None,
        internal: bool = False,
        config: dict[str, str] | None = None,
    ) -> None:
        if not topics:
            raise ValueError("a topic needs at least one name")
        self._runtime = runtime
        self.topics = tuple(topics)
        self.key_type = key_type
        self.value_type = value_type
        self.key_serializer = key_serializer or runtime.conf.key_serializer
        self.value_serializer = value_serializer or runtime.conf.value_serializer
        self.partitions = partitions
        self.replicas = replicas
        self.internal = internal
        self.config = dict(config or {})
        # Keys are optional in Kafka whatever the key type: a missing key is None (to_event
        # never calls this with None).
        self._decode_key: Callable[[bytes | None], Any] = codecs.make_decoder(
            self.key_serializer, key_type
        )
        self._decode_value: Callable[[bytes | None], Any] = codecs.make_decoder(
            self.value_serializer, value_type
        )
        self._encode_key: Callable[[Any], bytes | None] = codecs.make_encoder(
            self.key_serializer, key_type
        )
        self._encode_value: Callable[[Any], bytes | None] = codecs.make_encoder(
            self.value_serializer, value_type
        )
        runtime.catalog.add(self)

    def derive(self, name: str, **options: Any) -> Topic:
        """The topic ``name`` of the same app: the one described already, or a new one."""
        existing = self._runtime.catalog.named(name)
        if existing is not None:
            return cast(Topic, existing)  # the catalog holds this layer's topics
        return Topic(self._runtime, name, **options)

    def specs(self, default_partitions: int) -> list[TopicSpec]:
        """How to declare its topics: ``partitions`` of them, else ``default_partitions``."""
        n = self.partitions or default_partitions
        return [TopicSpec(name, n, self.config) for name in self.topics]

    def get_topic_name(self) -> str:
        return self.topics[0]

    def keyspace(self) -> KeySpace:
        """How a key maps to a partition of the (main) topic, as the producer maps it."""
        return KeySpace(
            f"topic {self.topics[0]!r}",
            self.partitions or self._runtime.conf.topic_partitions,
            self.key_serializer,
            key_type_name(self.key_type),
        )

    def __str__(self) -> str:
        return self.topics[0]

    def __repr__(self) -> str:
        return f"<Topic {', '.join(self.topics)}>"

    # -- codecs ------------------------------------------------------------------------------

    def encode_key(self, key: Any) -> bytes | None:
        try:
            return self._encode_key(key)
        except Exception as exc:
            raise EncodeError(f"topic {self}: cannot encode key {key!r}: {exc}") from exc

    def encode_value(self, value: Any) -> bytes | None:
        try:
            return self._encode_value(value)
        except Exception as exc:
            raise self._encode_failed(value, exc) from exc

    def to_event(self, message: Message, tracker: Tracker | None) -> Event:
        """Decode a message; raises DecodeError saying which part failed, or that it has no
        value (a tombstone is not an event)."""
        value = message.value
        if value is None:
            raise DecodeError("message has no value")
        key = message.key
        if key is not None:
            try:
                key = self._decode_key(key)
            except DecodeError as exc:
                raise DecodeError(f"key: {exc}", field=exc.field) from exc
        return Event(key, self._decode_value(value), message, tracker)

    async def declare(self) -> None:
        """Create the topics if they do not exist (with the app's partition count unless
        ``partitions`` says otherwise), as the app does at start."""
        await self._runtime.declare(self.specs(self._runtime.conf.topic_partitions))

    async def maybe_declare(self) -> None:
        """Faust's name for :meth:`declare` (which is idempotent already)."""
        await self.declare()

    # -- reading and writing -----------------------------------------------------------------

    def stream(self) -> Stream[Any]:
        """A stream of this topic's values, for use outside agents (``app.task``, scripts)."""
        runtime = self._runtime
        inbox = runtime.subscriptions.subscribe(self, owner=f"stream:{self}:{id(self)}")
        return Stream.from_inbox(runtime, inbox, channel=self)

    def __aiter__(self) -> Stream[Any]:
        return self.stream()

    async def send(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        headers: HeadersArg = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Produce to the main topic; the returned future resolves when the broker stored it."""
        producer = await self._runtime.producers.ensure()
        return await producer.send(
            self.get_topic_name(),
            self.encode_key(key),
            self.encode_value(value),
            partition=partition,
            headers=normalize_headers(headers),
        )

    def value_sender(self) -> Callable[[Any], None]:
        """``send_soon(value=value)`` as a function of the value, bound to the running app's
        producer: an agent's sink, called once per value it yields. Made again when the app
        starts again (a new producer)."""
        return self._runtime.producers.main().value_sender(
            self.topics[0], self._encode_value, self._encode_failed
        )

    def _encode_failed(self, value: Any, exc: Exception) -> EncodeError:
        return EncodeError(f"topic {self}: cannot encode value {value!r}: {exc}")

    def send_soon(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        headers: HeadersArg = None,
    ) -> None:
        """Queue a message without waiting (inside a running app: sinks, forwarding)."""
        # None encodes to None whatever the serializer: skip the encoders for it (hot path).
        self._runtime.producers.main().send_soon(
            self.topics[0],
            None if key is None else self.encode_key(key),
            None if value is None else self.encode_value(value),
            partition=partition,
            headers=normalize_headers(headers) if headers else None,
        )

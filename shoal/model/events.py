"""Messages as they come off Kafka, and the Events that agents see."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from shoal.types import Headers, TopicPartition


class Tracker(Protocol):
    """What an Event reports its ack to: its partition's offsets, kept by the runtime
    (:class:`~shoal.runtime.offsets.PartitionOffsets`)."""

    revoked: bool

    def ack(self, offset: int) -> None: ...


class Message(NamedTuple):
    """One Kafka record: where it came from and its raw bytes.

    A named tuple: the consumer thread makes one per fetched record with ``tuple.__new__``,
    without a Python frame (:func:`shoal.kafka.consumer.to_messages`).
    """

    topic: str
    partition: int
    offset: int
    timestamp: float | None
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None

    @property
    def tp(self) -> TopicPartition:
        """Where it came from, Faust's ``message.tp``: ``tp.topic``, ``tp.partition``."""
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name``, or None."""
        found = None
        for key, value in self.headers or ():
            if key == name:
                found = value
        return found


class Event:
    """A decoded message on its way through a stream: key, value, headers and its Message.

    The event is acked when the stream moves past it (or on :meth:`ack`); a partition's
    committed offset never passes an unacked event.
    """

    __slots__ = ("_acked", "_tracker", "key", "message", "value")

    def __init__(
        self,
        key: Any,
        value: Any,
        message: Message,
        tracker: Tracker | None = None,
    ) -> None:
        self.key = key
        self.value = value
        self.message = message
        self._tracker = tracker
        self._acked = False

    @property
    def headers(self) -> dict[str, bytes]:
        return dict(self.message.headers or ())

    @property
    def topic(self) -> str:
        return self.message.topic

    @property
    def partition(self) -> int:
        return self.message.partition

    @property
    def offset(self) -> int:
        return self.message.offset

    @property
    def timestamp(self) -> float | None:
        return self.message.timestamp

    @property
    def revoked(self) -> bool:
        """True when this worker no longer owns the event's partition."""
        return self._tracker is not None and self._tracker.revoked

    def ack(self) -> bool:
        """Mark the event processed. Returns False if it was acked before."""
        if self._acked:
            return False
        self._acked = True
        if self._tracker is not None:
            self._tracker.ack(self.message.offset)
        return True

    @property
    def acked(self) -> bool:
        return self._acked

    def __repr__(self) -> str:
        m = self.message
        return f"<Event {m.topic}[{m.partition}]@{m.offset} key={self.key!r} value={self.value!r}>"

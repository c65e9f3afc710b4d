"""Who reads which Kafka topic: every topic an app knows, and the inbox of every subscriber.

A subscriber (an agent, a ``topic.stream()``, a ``group_by`` stream) gets one inbox per topic
it reads; an agent's ``concurrency`` instances share it. The dispatch of fetched batches looks
subscribers up by Kafka topic name here. Topics are the processing layer's; the runtime knows
them through :class:`TopicLike`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from shoal.kafka.admin import TopicSpec
from shoal.model.events import Event, Message, Tracker
from shoal.runtime.inbox import Inbox, PartitionInbox


class TopicLike(Protocol):
    """What the runtime needs of a topic (:class:`shoal.processing.topics.Topic`)."""

    topics: tuple[str, ...]
    internal: bool

    def get_topic_name(self) -> str: ...

    def to_event(self, message: Message, tracker: Tracker | None) -> Event:
        """The message decoded; DecodeError if it cannot be, or has no value."""
        ...

    def encode_value(self, value: Any) -> bytes | None: ...

    def specs(self, default_partitions: int) -> list[TopicSpec]: ...


class Catalog:
    """Every topic the app described, by name: what it declares at start, what a reply to
    another agent's topic is encoded with, and one object per ``group_by`` topic."""

    def __init__(self) -> None:
        self._topics: list[TopicLike] = []

    def add(self, topic: TopicLike) -> None:
        self._topics.append(topic)

    def named(self, name: str) -> TopicLike | None:
        """The first topic described with ``name`` among its names."""
        for topic in self._topics:
            if name in topic.topics:
                return topic
        return None

    def all(self) -> list[TopicLike]:
        return list(self._topics)


class Subscriptions:
    """The inboxes of an app's subscribers; see the module docstring."""

    def __init__(self, maxsize: int | Callable[[], int]) -> None:
        # A callable is asked at each subscription (the setting may change before start).
        self._maxsize = maxsize if callable(maxsize) else lambda: maxsize
        #: Kafka topic name -> (topic, inbox) of each subscriber, for the dispatch.
        self.by_topic: dict[str, list[tuple[TopicLike, Inbox]]] = {}
        self._inboxes: dict[tuple[str, str], Inbox] = {}
        #: Told of a subscription made while the app runs (a ``group_by`` topic): the
        #: runtime declares the topic and fetches it too.
        self.on_new: Callable[[TopicLike], None] | None = None

    def subscribe(
        self, topic: TopicLike, *, owner: str, lanes: int = 1, by_partition: bool = False
    ) -> Inbox:
        """The inbox of ``owner`` for ``topic`` (made once, shared by the owner's instances);
        ``by_partition``: one lane per partition number (isolated partitions)."""
        key = (owner, topic.get_topic_name())
        inbox = self._inboxes.get(key)
        if inbox is None:
            inbox = self._inboxes[key] = (
                PartitionInbox(self._maxsize(), owner)
                if by_partition
                else Inbox(self._maxsize(), lanes, owner)
            )
            for name in topic.topics:
                self.by_topic.setdefault(name, []).append((topic, inbox))
            if self.on_new is not None:
                self.on_new(topic)
        return inbox

    def watch(self, name: str) -> None:
        """Fetch topic ``name`` with nobody reading it: its partitions only say who owns
        them (the leader topic). Its messages, if any, count as done."""
        self.by_topic.setdefault(name, [])

    def topic_names(self) -> list[str]:
        """The Kafka topics read, sorted."""
        return sorted(self.by_topic)

    def topics(self) -> list[TopicLike]:
        """The subscribed topics (one per subscriber and topic)."""
        return [topic for subs in self.by_topic.values() for topic, _ in subs]

    def inboxes(self) -> list[Inbox]:
        return list(self._inboxes.values())

    def owned_inboxes(self) -> dict[tuple[str, str], Inbox]:
        """(owner, topic) -> inbox, for the metrics."""
        return dict(self._inboxes)

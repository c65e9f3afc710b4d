"""What a running app tells clients about itself, on one compacted topic per app.

Records keyed ``agent:<name>`` describe an agent (its topic, serializers, value type and JSON
schema, concurrency), so a client needs only the app id and a broker to talk to it. Records
keyed ``reply:<topic>`` say that a reply topic's owner is alive (rewritten every minute,
deleted on a clean close): ``clusterctl clean`` removes reply topics whose owner stopped
saying so. Records keyed ``table:<name>`` describe a table (how its keys are partitioned), and
``host:<id>`` a supervisor: its web address and the partitions its workers own (rewritten on
each rebalance and every few seconds, deleted when it stops), so any host or client can find
the owner of a key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import confluent_kafka
import msgspec

from shoal.exceptions import BrokerError
from shoal.kafka import clients
from shoal.kafka.admin import TopicSpec
from shoal.kafka.consumer import fetch
from shoal.kafka.partitioner import KeySpace

_NO_TOPIC = (
    confluent_kafka.KafkaError._UNKNOWN_PARTITION,
    confluent_kafka.KafkaError._UNKNOWN_TOPIC,
    confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,
)

AGENT_PREFIX = "agent:"
REPLY_PREFIX = "reply:"
TABLE_PREFIX = "table:"
HOST_PREFIX = "host:"
#: How often a host rewrites its record though nothing changed (seconds).
HOST_EVERY = 5.0
#: A host record older than this is from a host that stopped without saying so (killed).
HOST_STALE_AFTER = 4 * HOST_EVERY
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def metadata_topic(app_id: str) -> str:
    return f"{app_id}-shoal-metadata"


def metadata_topic_spec(app_id: str) -> TopicSpec:
    """How to declare the metadata topic: compacted, one partition."""
    return TopicSpec(metadata_topic(app_id), 1, {"cleanup.policy": "compact"})


def reply_topic_prefix(app_id: str) -> str:
    return f"{app_id}-reply-"


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """An agent as a client sees it."""

    name: str
    topic: str
    key_serializer: str
    value_serializer: str
    value_type: str | None
    value_schema: dict[str, Any] | None
    concurrency: int

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class TableInfo:
    """A table as a router sees it: where a key of it lives."""

    name: str
    partitions: int
    #: How keys are encoded to find their partition (the serializer of the events' keys).
    key_serializer: str
    #: ``int``, ``float``, ``bool``, ``str`` or None: what a key given as text is turned into.
    key_type: str | None
    is_global: bool = False
    windowed: bool = False
    help: str = ""

    def keyspace(self) -> KeySpace:
        """How its keys map to partitions (as the table's own ``keyspace()``)."""
        return KeySpace(f"table {self.name!r}", self.partitions, self.key_serializer, self.key_type)


@dataclass(frozen=True, slots=True)
class HostInfo:
    """A supervisor as a router sees it."""

    id: str
    url: str
    #: The partition numbers its workers own (every topic's partition N goes together).
    partitions: list[int]
    #: When it said so (its clock, seconds since the epoch): the newest claim wins.
    at: float
    workers: int = 0


def agent_record(info: AgentInfo) -> tuple[bytes, bytes]:
    return (AGENT_PREFIX + info.name).encode(), _encode(info)


def reply_alive_record(reply_topic: str) -> tuple[bytes, bytes]:
    return (REPLY_PREFIX + reply_topic).encode(), _encode({"alive_at": time.time()})


def reply_gone_record(reply_topic: str) -> tuple[bytes, None]:
    return (REPLY_PREFIX + reply_topic).encode(), None


def table_record(info: TableInfo) -> tuple[bytes, bytes]:
    return (TABLE_PREFIX + info.name).encode(), _encode(info)


def host_record(info: HostInfo) -> tuple[bytes, bytes]:
    return (HOST_PREFIX + info.id).encode(), _encode(info)


def host_gone_record(host_id: str) -> tuple[bytes, None]:
    return (HOST_PREFIX + host_id).encode(), None


@dataclass
class Metadata:
    agents: dict[str, AgentInfo] = field(default_factory=dict)
    reply_alive_at: dict[str, float] = field(default_factory=dict)
    tables: dict[str, TableInfo] = field(default_factory=dict)
    hosts: dict[str, HostInfo] = field(default_factory=dict)

    def live_hosts(self, exclude: str | None = None) -> list[HostInfo]:
        """The hosts whose records are current, but ``exclude``."""
        now = time.time()
        return [
            h for h in self.hosts.values() if h.id != exclude and now - h.at <= HOST_STALE_AFTER
        ]

    def owner(self, partition: int, exclude: str | None = None) -> HostInfo | None:
        """The live host that claimed ``partition`` most recently (None: none does)."""
        claims = [h for h in self.live_hosts(exclude) if partition in h.partitions]
        return max(claims, key=lambda h: h.at) if claims else None

    def apply(self, key: str, value: bytes | None) -> None:
        """One record of the topic (a None value deletes what its key named)."""
        kinds: tuple[tuple[str, dict[str, Any], type], ...] = (
            (AGENT_PREFIX, self.agents, AgentInfo),
            (TABLE_PREFIX, self.tables, TableInfo),
            (HOST_PREFIX, self.hosts, HostInfo),
        )
        for prefix, store, kind in kinds:
            if key.startswith(prefix):
                name = key[len(prefix) :]
                if value is None:
                    store.pop(name, None)
                else:
                    try:
                        store[name] = msgspec.json.decode(value, type=kind)
                    except msgspec.DecodeError:  # written by another version: not ours
                        store.pop(name, None)
                return
        if key.startswith(REPLY_PREFIX):
            reply = key[len(REPLY_PREFIX) :]
            if value is None:
                self.reply_alive_at.pop(reply, None)
            else:
                self.reply_alive_at[reply] = float(_decode(value).get("alive_at", 0.0))

    def find_agent(self, name: str) -> AgentInfo | None:
        """By full name (``examples.agent.adding``) or, when unambiguous, function name."""
        if name in self.agents:
            return self.agents[name]
        matches = [a for a in self.agents.values() if a.short_name == name]
        return matches[0] if len(matches) == 1 else None


def read_metadata(bootstrap: str, app_id: str, timeout: float = 10.0) -> Metadata:
    """Read the app's metadata topic from the beginning to its end (blocking, up to about
    ``timeout`` seconds). No topic yet means nothing published; a broker that does not
    answer raises :class:`BrokerError`."""
    topic = metadata_topic(app_id)
    consumer = confluent_kafka.Consumer(
        {
            **clients.client_config(bootstrap),
            "group.id": f"{app_id}-metadata-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    metadata = Metadata()
    try:
        part = confluent_kafka.TopicPartition(topic, 0)
        try:
            low, high = consumer.get_watermark_offsets(part, timeout=timeout)
        except confluent_kafka.KafkaException as exc:
            error = exc.args[0]
            if error.code() in _NO_TOPIC:
                return metadata  # no such topic yet: nothing published
            consumer.poll(0)  # serves error_cb: the reason librdkafka saw
            raise BrokerError(
                f"cannot read the metadata of app {app_id!r} from the broker at {bootstrap} "
                f"within {timeout:g} s: {error.str()}"
                f"{clients.describe_unreachable(bootstrap, timeout + 1)}"
            ) from None
        if high <= low:
            return metadata
        consumer.assign([confluent_kafka.TopicPartition(topic, 0, low)])
        deadline = time.monotonic() + timeout
        position = low
        while position < high and time.monotonic() < deadline:
            for msg in fetch(consumer, 1000, 0.2):
                if msg.error() is not None:
                    continue
                position = int(msg.offset() or 0) + 1
                metadata.apply((msg.key() or b"").decode(errors="replace"), msg.value())
    finally:
        consumer.close()
    return metadata

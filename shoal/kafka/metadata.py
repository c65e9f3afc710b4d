"""What a running app tells clients about itself, on one compacted topic per app.

Records keyed ``agent:<name>`` describe an agent (its topic, serializers, value type and JSON
schema, concurrency), so a client needs only the app id and a broker to talk to it. Records
keyed ``reply:<topic>`` say that a reply topic's owner is alive (rewritten every minute,
deleted on a clean close): ``clusterctl clean`` removes reply topics whose owner stopped
saying so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import confluent_kafka
import msgspec

from shoal.exceptions import BrokerError
from shoal.kafka import clients
from shoal.kafka.admin import TopicSpec
from shoal.kafka.consumer import fetch

_NO_TOPIC = (
    confluent_kafka.KafkaError._UNKNOWN_PARTITION,
    confluent_kafka.KafkaError._UNKNOWN_TOPIC,
    confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,
)

AGENT_PREFIX = "agent:"
REPLY_PREFIX = "reply:"
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


def agent_record(info: AgentInfo) -> tuple[bytes, bytes]:
    return (AGENT_PREFIX + info.name).encode(), _encode(info)


def reply_alive_record(reply_topic: str) -> tuple[bytes, bytes]:
    return (REPLY_PREFIX + reply_topic).encode(), _encode({"alive_at": time.time()})


def reply_gone_record(reply_topic: str) -> tuple[bytes, None]:
    return (REPLY_PREFIX + reply_topic).encode(), None


@dataclass
class Metadata:
    agents: dict[str, AgentInfo]
    reply_alive_at: dict[str, float]

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
    agents: dict[str, AgentInfo] = {}
    alive: dict[str, float] = {}
    try:
        part = confluent_kafka.TopicPartition(topic, 0)
        try:
            low, high = consumer.get_watermark_offsets(part, timeout=timeout)
        except confluent_kafka.KafkaException as exc:
            error = exc.args[0]
            if error.code() in _NO_TOPIC:
                return Metadata(agents, alive)  # no such topic yet: nothing published
            consumer.poll(0)  # serves error_cb: the reason librdkafka saw
            raise BrokerError(
                f"cannot read the metadata of app {app_id!r} from the broker at {bootstrap} "
                f"within {timeout:g} s: {error.str()}"
                f"{clients.describe_unreachable(bootstrap, timeout + 1)}"
            ) from None
        if high <= low:
            return Metadata(agents, alive)
        consumer.assign([confluent_kafka.TopicPartition(topic, 0, low)])
        deadline = time.monotonic() + timeout
        position = low
        while position < high and time.monotonic() < deadline:
            for msg in fetch(consumer, 1000, 0.2):
                if msg.error() is not None:
                    continue
                position = int(msg.offset() or 0) + 1
                key = (msg.key() or b"").decode()
                value = msg.value()
                if key.startswith(AGENT_PREFIX):
                    name = key[len(AGENT_PREFIX) :]
                    if value is None:
                        agents.pop(name, None)
                    else:
                        agents[name] = msgspec.json.decode(value, type=AgentInfo)
                elif key.startswith(REPLY_PREFIX):
                    reply = key[len(REPLY_PREFIX) :]
                    if value is None:
                        alive.pop(reply, None)
                    else:
                        alive[reply] = float(_decode(value).get("alive_at", 0.0))
    finally:
        consumer.close()
    return Metadata(agents, alive)

"""shoal: Faust's agent model on a multiprocess worker cluster, backed by Apache Kafka.

Write agents as in Faust; only the import changes::

    import shoal as faust

    app = faust.App('agent-example')
    topic = app.topic('adding', value_type=Add)

    @app.agent(topic)
    async def adding(stream):
        async for value in stream:
            yield value.a + value.b
"""

from __future__ import annotations

import uuid as _uuid

from shoal import cli, web
from shoal.app import App
from shoal.exceptions import (
    AskTimeoutError,
    ConfigError,
    DecodeError,
    RemoteAgentError,
    ShoalError,
)
from shoal.model.events import Event, Message
from shoal.model.records import Record
from shoal.processing.agents import Agent
from shoal.processing.channels import Channel
from shoal.processing.services import Service
from shoal.processing.streams import Stream
from shoal.processing.topics import Topic
from shoal.types import TopicPartition

# Faust's names for the types, in annotations (``stream: StreamT[Add]``).
StreamT = Stream
AgentT = Agent
ChannelT = Channel
EventT = Event
TopicT = Topic
ServiceT = Service


def uuid() -> str:
    """A random UUID as a string (Faust's ``faust.uuid()``)."""
    return str(_uuid.uuid4())


__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentT",
    "App",
    "AskTimeoutError",
    "Channel",
    "ChannelT",
    "ConfigError",
    "DecodeError",
    "Event",
    "EventT",
    "Message",
    "Record",
    "RemoteAgentError",
    "Service",
    "ServiceT",
    "ShoalError",
    "Stream",
    "StreamT",
    "Topic",
    "TopicPartition",
    "TopicT",
    "__version__",
    "cli",
    "uuid",
    "web",
]

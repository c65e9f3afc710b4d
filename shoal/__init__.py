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
from shoal.processing.streams import Stream
from shoal.processing.topics import Topic

#: Faust's name for the stream type in annotations (``stream: StreamT[Add]``).
StreamT = Stream

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "App",
    "AskTimeoutError",
    "ConfigError",
    "DecodeError",
    "Event",
    "Message",
    "Record",
    "RemoteAgentError",
    "ShoalError",
    "Stream",
    "StreamT",
    "Topic",
    "__version__",
]

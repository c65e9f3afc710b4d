"""Reply topics: made, read, kept alive and deleted, the one way every owner needs.

A process that asks and is not a worker of a supervisor (a script, the client library,
``clusterctl worker``) reads a reply topic of its own; a supervisor reads its host's, for its
workers. Either way the topic has one partition and ``reply_expires`` retention, is read from
its start by a consumer of its own (no group commits: a reply is wanted once, now), says every
minute on the app's metadata topic that its owner is alive (``clusterctl clean`` deletes
those that stopped saying so), and is deleted with that record on a clean close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from shoal.config import Settings
from shoal.kafka import admin
from shoal.kafka.clients import consumer_config
from shoal.kafka.metadata import (
    metadata_topic,
    metadata_topic_spec,
    reply_alive_record,
    reply_gone_record,
)
from shoal.kafka.producer import Producer
from shoal.kafka.tail import Tail

log = logging.getLogger(__name__)

#: How often a reply topic's owner says it is alive.
KEEPALIVE_EVERY = 60.0

#: (headers, value) of each reply, on the event loop.
OnReply = Callable[[dict[str, bytes], bytes | None], None]


def reply_topic_name(app_id: str, kind: str = "") -> str:
    """``<app id>-reply-<kind><16 random hex digits>``: unique without coordination."""
    return f"{app_id}-reply-{kind}{uuid.uuid4().hex[:16]}"


class ReplyTopic:
    """A reply topic of this process's own, for its whole life; see the module docstring."""

    def __init__(self, conf: Settings, app_id: str, on_reply: OnReply, *, kind: str = "") -> None:
        self._conf = conf
        self._app_id = app_id
        self.topic = reply_topic_name(app_id, kind)
        config = consumer_config(conf, f"shoal-{app_id}", self.topic)
        self._consumer = Tail(
            self.topic, config, lambda key, headers, value: on_reply(headers, value), name="replies"
        )
        self._keepalive: asyncio.Task[None] | None = None
        self.opened = False

    async def open(self, producer: Producer) -> None:
        """Make the topic (and the app's metadata topic), start reading it, keep it alive."""
        retention = str(int(self._conf.reply_expires * 1000))
        await admin.declare_topics(
            self._conf.bootstrap_servers,
            [
                admin.TopicSpec(self.topic, 1, {"retention.ms": retention}),
                metadata_topic_spec(self._app_id),
            ],
            self._conf.topic_replication_factor,
        )
        self._consumer.start()
        self._keepalive = asyncio.get_running_loop().create_task(self._say_alive(producer))
        self.opened = True

    async def _say_alive(self, producer: Producer) -> None:
        topic = metadata_topic(self._app_id)
        while True:
            key, value = reply_alive_record(self.topic)
            producer.send_soon(topic, key, value)
            await asyncio.sleep(KEEPALIVE_EVERY)  # the period of the liveness record

    async def close(self, producer: Producer, timeout: float = 15.0) -> None:
        """Stop reading; forget the liveness record and delete the topic (a clean close)."""
        self._consumer.stop()
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        key, value = reply_gone_record(self.topic)
        producer.send_soon(metadata_topic(self._app_id), key, value)
        await admin.delete_topic(self._conf.bootstrap_servers, self.topic, timeout)
        self.opened = False

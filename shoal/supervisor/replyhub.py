"""The host's reply topic, kept by the supervisor: asks of its workers are answered there.

The supervisor reads it (a :class:`~shoal.rpc.replies.ReplyRouter`) and hands each reply to the
worker that asked, by the route header. The topic says it is alive on the app's metadata
topic (so ``clusterctl clean`` leaves it alone) and is deleted when the supervisor stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shoal.app import App
from shoal.kafka.metadata import metadata_topic_spec
from shoal.rpc.replies import REPLY_KEEPALIVE_EVERY, ReplyRouter, drop_reply_topic, keep_alive

Forward = Callable[[str, str, bytes | None, bytes | None], None]


class ReplyHub:
    """Start, route through, and stop the host's reply topic."""

    def __init__(self, app: App, forward: Forward) -> None:
        self.app = app
        self.router = ReplyRouter(app.id, app.consumer_config(), forward)
        self._keepalive: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self.router.started

    @property
    def topic(self) -> str:
        return self.router.topic

    def count_late(self) -> None:
        """A reply for a worker that is gone: its ask died with it."""
        self.router.late += 1

    async def start(self) -> None:
        app = self.app
        retention = str(int(app.conf.reply_expires * 1000))
        await app.declare_topics(
            [(self.topic, 1, {"retention.ms": retention}), metadata_topic_spec(app.id)]
        )
        self.router.start()
        producer = await app.ensure_producer()
        self._keepalive = asyncio.get_running_loop().create_task(
            keep_alive(producer, app.id, self.topic, REPLY_KEEPALIVE_EVERY)
        )

    async def stop(self, timeout: float = 15.0) -> None:
        self.router.stop()
        if self._keepalive is not None:
            self._keepalive.cancel()
        await drop_reply_topic(
            self.app.producer_for_send(),
            self.app.conf.bootstrap_servers,
            self.app.id,
            self.topic,
            timeout=timeout,
        )

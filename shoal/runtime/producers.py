"""The app's two producers: outputs, batched, and replies, sent at once.

An asker waits for each reply, and batching replies would add up to ``producer_linger_ms`` to
every round trip; pipeline outputs keep the batching producer. Both start on first use, so a
script that imports an app can send without starting a worker. The at-least-once barrier
covers both: a commit waits until everything either produced before it is stored.
"""

from __future__ import annotations

import asyncio
import atexit
from collections.abc import Callable

from shoal.config import Settings
from shoal.exceptions import ShoalError
from shoal.kafka.clients import producer_config
from shoal.kafka.producer import Producer


class Producers:
    """Makes, starts and stops the app's producers; see the module docstring."""

    def __init__(self, conf: Settings, client_id: str | Callable[[], str]) -> None:
        self._conf = conf
        # A callable is asked when a producer is made (the app id may change before start).
        self._client_id = client_id if callable(client_id) else lambda: client_id
        self._main: Producer | None = None
        self._replies: Producer | None = None
        #: A worker's outputs wait out broker outages (set when the app starts).
        self.worker = False

    def _make(self, **overrides: object) -> Producer:
        config = producer_config(self._conf, self._client_id(), wait_out_outages=self.worker)
        producer = Producer({**config, **overrides})
        producer.start()
        if not self.worker:
            # A script that only sends: deliver what is queued when it exits.
            atexit.register(producer.stop, 10.0)
        return producer

    async def ensure(self) -> Producer:
        """The outputs' producer, started on first use."""
        if self._main is None:
            self._main = self._make()
        return self._main

    def main(self) -> Producer:
        """The started outputs' producer (inside a running app, where it always exists)."""
        if self._main is None:
            raise ShoalError("the producer is not started: await app.start() first")
        return self._main

    def replies(self) -> Producer:
        """The replies' producer (no linger), started on first use."""
        if self._replies is None:
            self._replies = self._make(**{"linger.ms": 0})
        return self._replies

    async def barrier(self, timeout: float = 60.0) -> None:
        """Wait until everything produced so far (outputs and replies) is stored."""
        await self.main().barrier(timeout)
        if self._replies is not None:
            await self._replies.barrier(timeout)

    def dead(self) -> list[str]:
        """Started producers whose delivery thread stopped."""
        return [
            "a producer's delivery thread"
            for producer in (self._main, self._replies)
            if producer is not None and not producer.alive
        ]

    async def stop(self, flush_timeout: float = 30.0) -> None:
        """Flush what is queued (waiting at most ``flush_timeout`` for the broker), stop."""
        for producer in (self._replies, self._main):
            if producer is not None:
                await asyncio.to_thread(producer.stop, flush_timeout)
        self._replies = self._main = None

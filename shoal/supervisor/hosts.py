"""Every host of the app: its web address and the partitions its workers own.

Each supervisor writes a ``host:<id>`` record on the app's metadata topic (shoal.kafka.metadata)
when what it owns changes and every ``HOST_EVERY`` seconds, and deletes it when it stops; each
reads the topic from its start for as long as it runs. A request for a partition this host
does not own goes to the host whose latest record claims it. A record that has not been
rewritten for ``HOST_STALE_AFTER`` seconds is from a host that is gone (killed), and is ignored;
during a rebalance the newest claim wins, and the host it names checks again (its workers
answer only for partitions they hold).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid

from shoal.config import Settings
from shoal.kafka.clients import consumer_config
from shoal.kafka.metadata import (
    HOST_EVERY,
    HOST_PREFIX,
    HostInfo,
    Metadata,
    host_gone_record,
    host_record,
    metadata_topic,
)
from shoal.kafka.producer import Producer
from shoal.kafka.tail import Tail

log = logging.getLogger(__name__)


class HostDirectory:
    """This host's record, written; the others', read. Runs on the supervisor's loop."""

    def __init__(self, conf: Settings, app_id: str) -> None:
        self._conf = conf
        self._app_id = app_id
        #: This supervisor's id: the machine, the process, and a random part (pids repeat).
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.url = ""
        self._metadata = Metadata()
        self._mine: tuple[frozenset[int], int] | None = None
        self._written_at = 0.0
        self._producer: Producer | None = None
        config = consumer_config(conf, f"shoal-{app_id}", f"{app_id}-hosts-{self.id}")
        self._tail = Tail(metadata_topic(app_id), config, self._on_record, name="hosts")
        self._started = False

    def _on_record(self, key: bytes | None, headers: dict[str, bytes], value: bytes | None) -> None:
        text = (key or b"").decode(errors="replace")
        if text.startswith(HOST_PREFIX):
            self._metadata.apply(text, value)

    def start(self, url: str, producer: Producer) -> None:
        """Start reading (the metadata topic exists: the reply topic declared it)."""
        self.url = url
        self._producer = producer
        self._tail.start()
        self._started = True

    def update(self, partitions: set[int], workers: int) -> None:
        """Write this host's record if what it owns changed, or it is due again."""
        if self._producer is None or not self.url:
            return
        mine = (frozenset(partitions), workers)
        if mine == self._mine and time.monotonic() - self._written_at < HOST_EVERY:
            return
        info = HostInfo(self.id, self.url, sorted(partitions), time.time(), workers)
        self._producer.send_soon(metadata_topic(self._app_id), *host_record(info))
        self._mine, self._written_at = mine, time.monotonic()

    def owner(self, partition: int) -> HostInfo | None:
        """The other host that claims ``partition`` most recently (None: none does)."""
        return self._metadata.owner(partition, exclude=self.id)

    def hosts(self) -> list[HostInfo]:
        """Every host with a current record (this one's as last read back)."""
        return self._metadata.live_hosts()

    async def stop(self) -> None:
        """Delete this host's record (others stop sending it requests) and stop reading."""
        if self._producer is not None and self._mine is not None:
            self._producer.send_soon(metadata_topic(self._app_id), *host_gone_record(self.id))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.barrier(), 5.0)
        if self._started:
            await asyncio.to_thread(self._tail.stop)
            self._started = False

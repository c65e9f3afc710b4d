"""Reading a one-partition topic from its start, for as long as the process runs.

A reply topic (each reply is wanted once, now) and the app's metadata topic (each host's web
address and partitions, as they change) are read this way: no consumer group and no commits,
a thread of its own, and each record handed to a callback on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

import confluent_kafka

from shoal.kafka.consumer import fetch

#: How long to wait for the partition's leader before assigning it anyway (seconds).
LEADER_TIMEOUT = 5.0

#: (key, headers, value) of each record, called on the event loop.
OnRecord = Callable[[bytes | None, dict[str, bytes], bytes | None], None]


class Tail:
    """The thread that reads partition 0 of ``topic`` from its start and hands each record to
    ``on_record`` on the loop that called :meth:`start`."""

    def __init__(
        self, topic: str, config: dict[str, Any], on_record: OnRecord, *, name: str = "tail"
    ) -> None:
        self.topic = topic
        self._config = {**config, "enable.auto.commit": False}
        self._config.setdefault("group.id", topic)
        self._on_record = on_record
        self._name = f"shoal-{name}"
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        kafka = confluent_kafka.Consumer(self._config)
        self._thread = threading.Thread(
            target=self._run, args=(kafka, loop), name=self._name, daemon=True
        )
        self._thread.start()

    def _run(self, kafka: Any, loop: asyncio.AbstractEventLoop) -> None:
        try:
            # The partition's leader first: assigned before the consumer knows it, librdkafka
            # asks for the start offset only after a fixed 500 ms (a client's first reply
            # would wait that long). A broker that is away: assigned anyway, and retried.
            with contextlib.suppress(confluent_kafka.KafkaException):
                kafka.list_topics(self.topic, timeout=LEADER_TIMEOUT)
            kafka.assign(
                [confluent_kafka.TopicPartition(self.topic, 0, confluent_kafka.OFFSET_BEGINNING)]
            )
            while not self._stopping.is_set():
                for msg in fetch(kafka, 100, 0.1):
                    if msg.error() is not None:
                        continue
                    if loop.is_closed():
                        return
                    headers = dict(msg.headers() or ())
                    loop.call_soon_threadsafe(self._on_record, msg.key(), headers, msg.value())
        finally:
            kafka.close()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

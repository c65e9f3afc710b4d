"""A confluent-kafka Consumer driven by one thread, feeding batches to the event loop.

librdkafka's ``consume`` blocks, so it runs in its own thread and hands each batch to the loop
with ``run_coroutine_threadsafe``; the thread waits for the loop to accept the batch, which is
the back-pressure: when agents fall behind, fetching stops.

Group callbacks (assign/revoke) run inside ``consume`` in this thread. Revocation blocks there
until the loop has stopped the revoked partitions' events and handed back the offsets to commit,
so the partitions move only after their final offsets are committed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import confluent_kafka
from confluent_kafka import TopicPartition

from shoal.events import Message
from shoal.exceptions import BrokerError

log = logging.getLogger(__name__)

Batch = list[Message]
TP = tuple[str, int]


def to_message(msg: Any) -> Message:
    _kind, ts = msg.timestamp()
    return Message(
        msg.topic(),
        msg.partition(),
        msg.offset(),
        ts / 1000.0 if ts > 0 else None,
        msg.key(),
        msg.value(),
        msg.headers(),
    )


class ConsumerThread:
    """One Kafka consumer (a group member) and the thread that polls it."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        on_batch: Callable[[Batch], Awaitable[None]],
        on_assign: Callable[[list[TP]], Awaitable[dict[TP, int]]],
        on_revoke: Callable[[list[TP]], Awaitable[dict[TP, int]]],
        on_error: Callable[[str], None],
        batch_size: int = 1000,
    ) -> None:
        self._config = dict(config)
        self._on_batch = on_batch
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_error = on_error
        self._batch_size = batch_size
        self._kafka: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._topics: list[str] = []
        self._resubscribe = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._commits: queue.SimpleQueue[tuple[dict[TP, int], concurrent.futures.Future[None]]] = (
            queue.SimpleQueue()
        )
        self.stopped = threading.Event()
        self.failure: BaseException | None = None

    def start(self, topics: Sequence[str]) -> None:
        self._loop = asyncio.get_running_loop()
        self._topics = sorted(set(topics))
        try:
            self._kafka = confluent_kafka.Consumer(self._config)
        except confluent_kafka.KafkaException as exc:
            raise BrokerError(f"cannot create a Kafka consumer: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name="shoal-consumer", daemon=True)
        self._thread.start()

    def subscribe(self, topics: Sequence[str]) -> None:
        """Change the subscription (a stream added a repartition topic at run time)."""
        wanted = sorted(set(topics))
        if wanted != self._topics:
            self._topics = wanted
            self._resubscribe.set()

    def _call(self, coro: Awaitable[Any]) -> Any:
        assert self._loop is not None
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(
            coro,  # type: ignore[arg-type]
            self._loop,
        )
        return future.result()

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.info("assigned %s", _fmt(tps))
        self._call(self._on_assign(tps))

    def _revoked(self, consumer: Any, partitions: list[Any]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        if not tps:
            return
        log.info("revoking %s", _fmt(tps))
        try:
            offsets = self._call(self._on_revoke(tps))
        except Exception:
            log.exception("could not drain revoked partitions; their offsets are not committed")
            return
        self.commit_now(offsets)

    async def commit(self, offsets: dict[TP, int]) -> None:
        """Commit ``offsets`` from the consumer's own thread, between two fetches.

        The client is not safe to use from two threads at once: a synchronous commit made
        while the thread sits in ``consume`` blocks until that returns, or forever.
        """
        if not offsets:
            return
        if self.stopped.is_set():
            raise BrokerError("the consumer is closed; offsets not committed")
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._commits.put((offsets, future))
        await asyncio.wrap_future(future)

    def _serve_commits(self) -> None:
        while True:
            try:
                offsets, future = self._commits.get_nowait()
            except queue.Empty:
                return
            try:
                self.commit_now(offsets)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)

    def commit_now(self, offsets: dict[TP, int]) -> None:
        """Commit synchronously; only from the consumer thread (or its callbacks)."""
        if not offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self._kafka.commit(offsets=tps, asynchronous=False)
        except confluent_kafka.KafkaException as exc:
            raise BrokerError(f"commit of {_fmt(list(offsets))} failed: {exc}") from exc

    def _run(self) -> None:
        kafka = self._kafka
        try:
            if self._topics:  # librdkafka refuses an empty subscription
                kafka.subscribe(self._topics, on_assign=self._assigned, on_revoke=self._revoked)
            while not self._stopping.is_set():
                if self._resubscribe.is_set():
                    self._resubscribe.clear()
                    kafka.subscribe(self._topics, on_assign=self._assigned, on_revoke=self._revoked)
                self._serve_commits()
                if not self._topics:
                    self._resubscribe.wait(0.1)  # nothing to fetch until a stream subscribes
                    continue
                msgs = kafka.consume(self._batch_size, 0.1)
                if not msgs:
                    continue
                batch: Batch = []
                for msg in msgs:
                    err = msg.error()
                    if err is None:
                        batch.append(to_message(msg))
                    elif err.code() != confluent_kafka.KafkaError._PARTITION_EOF:
                        self._on_error_threadsafe(
                            f"consumer error on {msg.topic()}[{msg.partition()}]: {err}"
                        )
                if batch:
                    self._call(self._on_batch(batch))
        except BaseException as exc:  # the loop must learn that fetching stopped
            self.failure = exc
            log.exception("the consumer thread failed")
            self._on_error_threadsafe(f"the consumer thread failed: {exc!r}")
        finally:
            self._serve_commits()
            try:
                kafka.close()  # leaves the group; runs the revoke callback first
            except Exception:
                log.exception("closing the consumer failed")
            self.stopped.set()

    def _on_error_threadsafe(self, text: str) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._on_error, text)

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop fetching, leave the group (final commits happen in the revoke callback)."""
        self._stopping.set()
        if self._thread is None:
            return
        await asyncio.get_running_loop().run_in_executor(None, self.stopped.wait, timeout)
        if not self.stopped.is_set():
            log.error("the consumer did not close within %.0f s", timeout)


def _fmt(tps: list[TP]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in sorted(tps)) or "nothing"

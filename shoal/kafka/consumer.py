"""A confluent-kafka Consumer driven by one thread, feeding batches to the event loop.

librdkafka's ``consume`` blocks, so it runs in its own thread and hands each batch to the loop
with ``run_coroutine_threadsafe``; the thread waits for the loop to accept the batch, which is
the back-pressure: when agents fall behind, fetching stops. The client is not safe to use from
two threads at once, so everything else done with it (assignments, commits, lag) is a *call*
queued to this thread and run between two fetches.

Two kinds: :class:`AssignedConsumer` fetches what it is told to (a worker: its supervisor is
the group member), :class:`~shoal.kafka.member.GroupMember` is a consumer-group member.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import confluent_kafka
from confluent_kafka import TopicPartition

from shoal.exceptions import BrokerError
from shoal.model.events import Message
from shoal.types import TP

log = logging.getLogger(__name__)

#: How long a worker waits for its partitions' committed offsets before leaving the lookup to
#: librdkafka (seconds).
STARTING_TIMEOUT = 10.0

Batch = list[Message]


def fetch(kafka: Any, max_messages: int, timeout: float) -> list[Any]:
    """Wait up to ``timeout`` for the first message, then take what is already there.

    librdkafka's ``consume(n, timeout)`` returns only when it has ``n`` messages or the
    timeout passed: at a low rate every message would wait the whole timeout (an ask took
    ~100 ms per leg). Under load the queue is full and this is one ``consume`` as before.
    """
    first = kafka.poll(timeout)
    if first is None:
        return []
    if max_messages <= 1:
        return [first]
    return [first, *kafka.consume(max_messages - 1, 0)]


def to_messages(msgs: list[Any]) -> Batch:
    """The fetched records as Messages, those that are errors left out; once per record, so
    one comprehension and no Python frame per record."""
    new = tuple.__new__
    return [
        new(
            Message,
            (
                m.topic(),
                m.partition(),
                m.offset(),
                ts / 1000.0 if (ts := m.timestamp()[1]) > 0 else None,
                m.key(),
                m.value(),
                m.headers(),
            ),
        )
        for m in msgs
        if m.error() is None
    ]


class ConsumerThread:
    """One Kafka consumer and the thread that polls it; see the module docstring."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        on_batch: Callable[[Batch], Awaitable[None]],
        on_error: Callable[[str], None],
        batch_size: int = 1000,
        poll_timeout: float = 0.1,
    ) -> None:
        self._config = dict(config)
        self._on_batch = on_batch
        self._on_error = on_error
        self._batch_size = batch_size
        #: How long one fetch waits for a message. Calls (commits, assignments) are served
        #: between fetches, so this is also how long a call may wait for the thread.
        self._poll_timeout = poll_timeout
        self._kafka: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._calls: queue.SimpleQueue[
            tuple[Callable[[Any], Any], concurrent.futures.Future[Any]]
        ] = queue.SimpleQueue()
        #: Guards ``_closed`` against a call queued just as the thread ends: every call is
        #: either served, or failed once the thread has closed the consumer (never left).
        self._calls_lock = threading.Lock()
        self._closed = False
        self.stopped = threading.Event()
        self.failure: BaseException | None = None

    def start(self) -> None:
        """Make the client and start the thread (on the running loop, which it feeds)."""
        self._loop = asyncio.get_running_loop()
        try:
            self._kafka = confluent_kafka.Consumer(self._config)
        except confluent_kafka.KafkaException as exc:
            raise BrokerError(f"cannot create a Kafka consumer: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name="shoal-consumer", daemon=True)
        self._thread.start()

    # -- what a kind of consumer adds (on this thread) ----------------------------------------

    def _opened(self, kafka: Any) -> None:
        """The thread started: subscribe, say."""

    def _before_fetch(self, kafka: Any) -> None:
        """Between two fetches: apply a change of subscription, say."""

    def _has_work(self) -> bool:
        """False while there is nothing to fetch (the thread then only serves calls)."""
        return True

    def _closing(self) -> None:
        """The client is closed: fail what waits for it."""

    # -- the thread ---------------------------------------------------------------------------

    def _call(self, coro: Awaitable[Any]) -> Any:
        """Run ``coro`` on the loop and wait for its result (from this thread)."""
        assert self._loop is not None
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(
            coro,  # type: ignore[arg-type]
            self._loop,
        )
        return future.result()

    async def call(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(consumer)`` on the consumer's own thread, between two fetches."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._calls_lock:
            if self._closed:
                raise BrokerError("the consumer is closed")
            self._calls.put((fn, future))
        self._wake.set()
        return await asyncio.wrap_future(future)

    def _serve_calls(self, closed: bool = False) -> None:
        while True:
            try:
                fn, future = self._calls.get_nowait()
            except queue.Empty:
                return
            if closed:
                future.set_exception(BrokerError("the consumer is closed"))
                continue
            try:
                result = fn(self._kafka)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def _run(self) -> None:
        kafka = self._kafka
        try:
            self._opened(kafka)
            while not self._stopping.is_set():
                self._before_fetch(kafka)
                self._serve_calls()
                if not self._has_work():
                    self._wake.wait(0.1)  # nothing to fetch until something is assigned
                    self._wake.clear()
                    continue
                msgs = fetch(kafka, self._batch_size, self._poll_timeout)
                if not msgs:
                    continue
                batch = to_messages(msgs)
                if len(batch) != len(msgs):
                    self._report_errors(msgs)
                if batch:
                    self._call(self._on_batch(batch))
        except BaseException as exc:  # the loop must learn that fetching stopped
            self.failure = exc
            log.exception("the consumer thread failed")
            self._on_error_threadsafe(f"the consumer thread failed: {exc!r}")
        finally:
            self._serve_calls()
            try:
                kafka.close()  # a member leaves the group; runs the revoke callback first
            except Exception:
                log.exception("closing the consumer failed")
            with self._calls_lock:
                self._closed = True
            self._serve_calls(closed=True)  # those queued since the last serve
            self._closing()
            self.stopped.set()

    def _report_errors(self, msgs: list[Any]) -> None:
        """Say what went wrong for the fetched records that are errors (but the end of a
        partition, which is not one)."""
        for msg in msgs:
            err = msg.error()
            if err is not None and err.code() != confluent_kafka.KafkaError._PARTITION_EOF:
                self._on_error_threadsafe(
                    f"consumer error on {msg.topic()}[{msg.partition()}]: {err}"
                )

    @property
    def alive(self) -> bool:
        """True while the thread runs and fetches (a dead thread is a dead worker)."""
        return self._thread is not None and self._thread.is_alive() and self.failure is None

    def _on_error_threadsafe(self, text: str) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._on_error, text)

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop fetching and close the client (a member leaves its group)."""
        self._stopping.set()
        if self._thread is None:
            return
        await asyncio.get_running_loop().run_in_executor(None, self.stopped.wait, timeout)
        if not self.stopped.is_set():
            log.error("the consumer did not close within %.0f s", timeout)


class AssignedConsumer(ConsumerThread):
    """Fetches the partitions it is given, from the group's committed offsets: the consumer
    of a worker, whose supervisor is the group member."""

    def __init__(self, config: dict[str, Any], **kw: Any) -> None:
        super().__init__(config, **kw)
        #: The partitions given with :meth:`assign`.
        self.assignment: set[TP] = set()
        reset = str(config.get("auto.offset.reset", "earliest"))
        #: Where a partition without a committed offset starts.
        self._reset = (
            confluent_kafka.OFFSET_END
            if reset in ("latest", "largest", "end")
            else confluent_kafka.OFFSET_BEGINNING
        )

    def _has_work(self) -> bool:
        return bool(self.assignment)

    async def assign(self, tps: Sequence[TP]) -> None:
        """Start fetching ``tps`` from the group's committed offsets."""
        new = [tp for tp in tps if tp not in self.assignment]
        if not new:
            return
        self.assignment.update(new)
        reset = self._reset
        await self.call(lambda kafka: kafka.incremental_assign(starting_offsets(kafka, new, reset)))
        log.info("fetching %s", format_tps(new))

    async def unassign(self, tps: Sequence[TP]) -> None:
        """Stop fetching ``tps``; once this returns, no batch of them is on its way."""
        gone = [tp for tp in tps if tp in self.assignment]
        if not gone:
            return
        self.assignment.difference_update(gone)
        parts = [TopicPartition(t, p) for t, p in gone]
        await self.call(lambda kafka: kafka.incremental_unassign(parts))
        log.info("stopped fetching %s", format_tps(gone))


def starting_offsets(kafka: Any, tps: Sequence[TP], reset: int) -> list[TopicPartition]:
    """Where each partition starts: its committed offset, or ``reset`` (the beginning or the
    end) when it has none, both given explicitly and with the partitions' leaders known.

    Left to librdkafka (``OFFSET_STORED``), a partition with no committed offset yet (a new
    app) goes through its offset reset, which asks for the position only after a fixed
    500 ms: some of a worker's partitions started half a second after the others. A broker
    that does not answer in time: ``OFFSET_STORED``, as before (blocking: the consumer
    thread's)."""
    try:
        for topic in sorted({t for t, _ in tps}):
            kafka.list_topics(topic, timeout=STARTING_TIMEOUT)
        committed = kafka.committed([TopicPartition(t, p) for t, p in tps], STARTING_TIMEOUT)
    except confluent_kafka.KafkaException as exc:
        log.debug("committed offsets not read (%s): librdkafka looks them up", exc)
        return [TopicPartition(t, p, confluent_kafka.OFFSET_STORED) for t, p in tps]
    starts = []
    for tp in committed:
        if tp.error is not None:
            offset = confluent_kafka.OFFSET_STORED
        elif tp.offset < 0:  # nothing committed yet
            offset = reset
        else:
            offset = tp.offset
        starts.append(TopicPartition(tp.topic, tp.partition, offset))
    return starts


def format_tps(tps: Iterable[TP]) -> str:
    """``t[0], t[1], u[3]``: partitions for a log line."""
    return ", ".join(f"{t}[{p}]" for t, p in sorted(tps)) or "nothing"

"""An asyncio face on confluent-kafka's Producer, with the barrier that at-least-once needs.

Messages go out in *generations*. :meth:`Producer.barrier` closes the current generation and
waits until every message of it (and of every older one) is acknowledged by the broker. The
committer calls it after it has taken its snapshot of done offsets and before it commits them,
so an offset is never committed ahead of the outputs produced while handling the events before
it. A delivery failure fails the barrier: the commit is not made and the events are processed
again after a restart.

Delivery callbacks run in one poller thread. The event loop thread only ever increments its
own counters, the poller thread only its own, so no lock is needed on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import confluent_kafka

from shoal import metrics
from shoal.exceptions import BrokerError
from shoal.types import Headers

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    """Where the broker stored a produced message."""

    topic: str
    partition: int
    offset: int


#: How long a produce may wait for room in librdkafka's local queue before giving up.
QUEUE_FULL_TIMEOUT = 30.0
#: How long the metadata request that brings a new producer's first connection up may take.
CONNECT_TIMEOUT = 10.0


class DeliveryError(BrokerError):
    """The broker did not accept a produced message after librdkafka's retries."""


class DeliveryTimeout(BrokerError):
    """Produced messages are not acknowledged yet (the broker is slow or away): nothing is
    lost, so a committer waits for the next round instead of stopping."""


class MessageTooLarge(BrokerError):
    """A message over the producer's ``message.max.bytes``; nothing was queued."""


_NO_EXTRA: dict[str, Any] = {}  # never mutated
#: librdkafka's RD_KAFKA_PARTITION_UA: no partition given, the configured partitioner picks.
UNASSIGNED = -1


class _Generation:
    __slots__ = ("callback", "delivered", "errors", "number", "produced")

    def __init__(self, number: int) -> None:
        self.number = number
        self.produced = 0  # written by the loop thread only
        self.delivered = 0  # written by the poller thread only
        self.errors: list[str] = []
        self.callback: Callable[[Any, Any], None] = self._on_delivery

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(
                f"{msg.topic()}[{msg.partition()}]: {err.str() if hasattr(err, 'str') else err}"
            )
        self.delivered += 1

    @property
    def complete(self) -> bool:
        return self.delivered >= self.produced


class Producer:
    """Produces messages from the event loop; ``start()``/``stop()`` own the poller thread."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = dict(config)
        self._kafka: Any = None
        self._gens: list[_Generation] = [_Generation(0)]
        self._current = self._gens[0]
        self._waiters: list[tuple[int, asyncio.Future[None], asyncio.AbstractEventLoop]] = []
        self._stopping = threading.Event()
        self._polled = threading.Event()  # set after each poll: room may have been made
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards _waiters between the two threads
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        try:
            self._kafka = confluent_kafka.Producer(self._config)
        except confluent_kafka.KafkaException as exc:
            raise BrokerError(f"cannot create a Kafka producer: {exc}") from exc
        self._stopping.clear()
        self._thread = threading.Thread(target=self._poll_forever, name="shoal-producer-poll")
        self._thread.daemon = True
        self._thread.start()
        # An idempotent producer asks for its producer id once a broker connection is up; a
        # new one has none, and librdkafka tries again only 500 ms later, holding up the
        # first message (a client's first ask). A metadata request brings a connection up
        # now, in a thread of its own so that nothing waits for it.
        threading.Thread(target=self._connect, name="shoal-producer-connect", daemon=True).start()

    def _connect(self) -> None:
        with contextlib.suppress(Exception):  # a broker that is away: the producer retries
            self._kafka.list_topics(timeout=CONNECT_TIMEOUT)

    def _poll_forever(self) -> None:
        kafka = self._kafka
        while not self._stopping.is_set():
            kafka.poll(0.05)
            self._polled.set()
            if self._waiters:
                self._wake_waiters()

    def _wake_waiters(self) -> None:
        with self._lock:
            ready = [w for w in self._waiters if self._done_through(w[0])]
            for waiter in ready:
                self._waiters.remove(waiter)
        for _number, future, loop in ready:
            _call_soon(loop, _resolve, future, None)

    def _done_through(self, number: int) -> bool:
        return all(g.complete for g in self._gens if g.number <= number)

    def send_soon(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Headers | None = None,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None:
        """Queue a message; the next :meth:`barrier` waits for it. Never blocks the loop."""
        gen = self._current
        callback = gen.callback
        if on_delivery is not None:
            gen_callback = callback

            def callback(err: Any, msg: Any) -> None:
                gen_callback(err, msg)
                on_delivery(err, msg)

        # Everything but the headers goes positionally: confluent-kafka parses keyword
        # arguments far more slowly (0.4 us per keyword, measured), and this runs once per
        # produced message. Partition -1 is librdkafka's "unassigned": its partitioner picks.
        extra: dict[str, Any] = {"headers": headers} if headers else _NO_EXTRA
        where = UNASSIGNED if partition is None else partition
        deadline = 0.0
        while True:
            try:
                self._kafka.produce(topic, value, key, where, callback, **extra)
                break
            except BufferError:
                # librdkafka's local queue is full: block (back-pressure) until the poller
                # thread has served delivery reports. Not poll() here: delivery callbacks
                # must run on one thread only, or the generation counts race.
                now = time.monotonic()
                deadline = deadline or now + QUEUE_FULL_TIMEOUT
                if now > deadline:
                    raise BrokerError(
                        f"cannot produce to topic {topic!r}: the local queue stayed full for "
                        f"{QUEUE_FULL_TIMEOUT:.0f} s; is the broker reachable?"
                    ) from None
                self._polled.clear()
                self._polled.wait(0.1)
            except confluent_kafka.KafkaException as exc:
                if exc.args[0].code() == confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE:
                    size = len(value or b"") + len(key or b"")
                    raise MessageTooLarge(
                        f"cannot produce a message of {size} bytes to topic {topic!r}: it is "
                        "over the producer's message.max.bytes"
                    ) from exc
                raise BrokerError(f"cannot produce to topic {topic!r}: {exc}") from exc
        gen.produced += 1
        self.sent += 1

    def value_sender(
        self,
        topic: str,
        encode: Callable[[Any], bytes | None],
        encode_failed: Callable[[Any, Exception], Exception],
    ) -> Callable[[Any], None]:
        """A function that encodes a value and queues it to ``topic`` (no key), as
        :meth:`send_soon` does: an agent's sink, one frame per value. A value ``encode``
        cannot encode raises ``encode_failed(value, error)``; a full queue or a produce
        error takes :meth:`send_soon`'s way (which waits for room, or says what failed)."""
        produce = self._kafka.produce

        def send(value: Any) -> None:
            try:
                data = encode(value)
            except Exception as exc:
                raise encode_failed(value, exc) from exc
            gen = self._current
            try:
                produce(topic, data, None, UNASSIGNED, gen.callback)
            except (BufferError, confluent_kafka.KafkaException):
                self.send_soon(topic, None, data)  # nothing was queued: its slow way
                return
            gen.produced += 1
            self.sent += 1

        return send

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queue a message and return a future that resolves when the broker stored it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[RecordMetadata] = loop.create_future()

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                exc: BaseException = DeliveryError(f"{topic}: {err}")
                _call_soon(loop, _fail, future, exc)
            else:
                meta = RecordMetadata(msg.topic(), msg.partition(), msg.offset())
                _call_soon(loop, _resolve, future, meta)

        self.send_soon(
            topic, key, value, partition=partition, headers=headers, on_delivery=delivered
        )
        return future

    async def barrier(self, timeout: float = 60.0) -> None:
        """Wait until every message queued before this call is acknowledged by the broker.

        Raises :class:`DeliveryError` naming the failed messages if any of them failed, and
        :class:`DeliveryTimeout` when they are not all acknowledged within ``timeout``.
        """
        closed = self._current
        self._current = _Generation(closed.number + 1)
        self._gens.append(self._current)
        if not self._done_through(closed.number):
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._waiters.append((closed.number, future, loop))
            try:
                await asyncio.wait_for(future, timeout)
            except TimeoutError:
                with self._lock:
                    self._waiters = [w for w in self._waiters if w[1] is not future]
                # The closed generations stay: the next barrier waits for them too.
                raise DeliveryTimeout(
                    f"{self.in_flight()} produced messages were not acknowledged by the broker "
                    f"within {timeout:g} s; is the broker up?"
                ) from None
        done = [g for g in self._gens if g.number <= closed.number]
        self._gens = [g for g in self._gens if g.number > closed.number]
        errors = [e for g in done for e in g.errors]
        if errors:
            self.failed += len(errors)
            for error in errors:
                metrics.record.produce_error(error.split("[", 1)[0])
            shown = "; ".join(errors[:5])
            raise DeliveryError(f"{len(errors)} produced messages failed: {shown}")

    @property
    def alive(self) -> bool:
        """True while the thread that serves delivery reports runs."""
        return self._thread is not None and self._thread.is_alive()

    def in_flight(self) -> int:
        return sum(g.produced - g.delivered for g in self._gens)

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued message; raise if any of them failed."""
        await self.barrier(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Flush what is queued (bounded by ``timeout``) and stop the poller thread."""
        if self._kafka is None:
            return
        deadline = time.monotonic() + timeout
        remaining = self._kafka.flush(timeout)
        if remaining:
            log.error(
                "%d produced messages were still undelivered after %.0f s at shutdown; "
                "their source events were not committed and will be processed again",
                remaining,
                timeout,
            )
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()))
        self._kafka = None


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    """Hand a result to the loop; a loop already closed (a script that ended) wants none."""
    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # closed between the check and the call
            loop.call_soon_threadsafe(fn, *args)

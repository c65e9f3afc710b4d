"""A confluent-kafka Consumer driven by one thread, feeding batches to the event loop.

librdkafka's ``consume`` blocks, so it runs in its own thread and hands each batch to the loop
with ``run_coroutine_threadsafe``; the thread waits for the loop to accept the batch, which is
the back-pressure: when agents fall behind, fetching stops.

Group callbacks (assign/revoke/lost) run inside ``consume`` in this thread. Revocation blocks
there until the loop has stopped the revoked partitions' events and handed back the offsets to
commit, so the partitions move only after their final offsets are committed.

A broker outage is not a crash: nothing that raises inside a callback may escape it (the client
re-raises it from ``consume``, which would end this thread), and a member whose session expired
while the broker was away is told its partitions are *lost* (not revoked: another member may
own them already, so nothing is committed) and simply rejoins.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any

import confluent_kafka
from confluent_kafka import TopicPartition

from shoal.exceptions import BrokerError
from shoal.model.events import Message
from shoal.types import TP

log = logging.getLogger(__name__)

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
        on_assign: Callable[[list[TP]], Awaitable[None]],
        on_revoke: Callable[[list[TP]], Awaitable[dict[TP, int]]],
        on_lost: Callable[[list[TP]], Awaitable[None]],
        on_error: Callable[[str], None],
        batch_size: int = 1000,
        poll_timeout: float = 0.1,
    ) -> None:
        # Commits are asynchronous, their results served by poll: a commit the broker cannot
        # answer (it is away) must not stop this thread from serving the group meanwhile.
        self._config = {**config, "on_commit": self._committed}
        #: Commits sent and not answered yet, by what they commit (touched on this thread).
        self._commit_waiters: dict[frozenset[tuple[str, int, int]], list[Future[None]]] = {}
        self._on_batch = on_batch
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_lost = on_lost
        self._on_error = on_error
        self._batch_size = batch_size
        #: How long one fetch waits for a message. Calls (commits, assignments) are served
        #: between fetches, so this is also how long a call may wait for the thread.
        self._poll_timeout = poll_timeout
        self._kafka: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._topics: list[str] = []
        self._resubscribe = threading.Event()
        self._wake = threading.Event()
        self._assigned_mode = False
        self._fetch = True
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._calls: queue.SimpleQueue[
            tuple[Callable[[Any], Any], concurrent.futures.Future[Any]]
        ] = queue.SimpleQueue()
        #: Guards ``_closed`` against a call queued just as the thread ends: every call is
        #: either served, or failed once the thread has closed the consumer (never left).
        self._calls_lock = threading.Lock()
        self._closed = False
        #: Partitions given with assign() (assigned mode: the supervisor hands them out).
        self.assignment: set[TP] = set()
        #: How often each partition was revoked (counted on the loop): a commit asked for
        #: before a revocation must not land after the final commit the revocation made.
        self._revocations: Counter[TP] = Counter()
        self.stopped = threading.Event()
        self.failure: BaseException | None = None

    def start(self, topics: Sequence[str], *, assigned: bool = False, fetch: bool = True) -> None:
        """Start the thread: a group member subscribed to ``topics``, or with
        ``assigned=True`` a plain consumer fetching what :meth:`assign` gives it. With
        ``fetch=False`` the member pauses what it is assigned: it only serves the group."""
        self._loop = asyncio.get_running_loop()
        self._fetch = fetch
        self._assigned_mode = assigned
        self._topics = [] if assigned else sorted(set(topics))
        try:
            self._kafka = confluent_kafka.Consumer(self._config)
        except confluent_kafka.KafkaException as exc:
            raise BrokerError(f"cannot create a Kafka consumer: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name="shoal-consumer", daemon=True)
        self._thread.start()

    def subscribe(self, topics: Sequence[str]) -> None:
        """Change the subscription (a stream added a repartition topic at run time)."""
        if self._assigned_mode:
            return  # the supervisor subscribes; it learns of new topics from the worker
        wanted = sorted(set(topics))
        if wanted != self._topics:
            self._topics = wanted
            self._resubscribe.set()
            self._wake.set()

    def _call(self, coro: Awaitable[Any]) -> Any:
        assert self._loop is not None
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(
            coro,  # type: ignore[arg-type]
            self._loop,
        )
        return future.result()

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.info("assigned %s", format_tps(tps))
        try:
            self._call(self._on_assign(tps))
        except Exception:
            log.exception("handling the assignment of %s failed", format_tps(tps))
        if not self._fetch:
            # A supervisor owns partitions for its workers and must not fetch them itself.
            try:
                consumer.assign(partitions)
                consumer.pause(partitions)
            except Exception:
                log.exception("pausing %s failed", format_tps(tps))

    def _revoked(self, consumer: Any, partitions: list[Any]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        if not tps:
            return
        log.info("revoking %s", format_tps(tps))
        try:
            offsets = self._call(self._revoking(tps))
        except Exception:
            log.exception("could not drain revoked partitions; their offsets are not committed")
            return
        try:
            self.commit_now(offsets)
        except BrokerError as exc:
            log.warning(
                "%s; their next owner processes the events after the last commit again", exc
            )

    def _lost(self, consumer: Any, partitions: list[Any]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        if not tps:
            return
        log.warning(
            "lost %s: the group went on without this member (its session expired: the broker "
            "was unreachable, or this process stalled); rejoining. Events after the last "
            "commit of these partitions will be processed again.",
            format_tps(tps),
        )
        try:
            self._call(self._losing(tps))
        except Exception:
            log.exception("handling the loss of %s failed", format_tps(tps))

    async def _revoking(self, tps: list[TP]) -> dict[TP, int]:
        # Counted on the loop before the owner hears of it, so a commit asked for from now
        # on sees the new count, and one asked for before is told apart by commit().
        self._revocations.update(tps)
        return await self._on_revoke(tps)

    async def _losing(self, tps: list[TP]) -> None:
        self._revocations.update(tps)  # a commit asked for before must not land after
        await self._on_lost(tps)

    async def call(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(consumer)`` on the consumer's own thread, between two fetches.

        The client is not safe to use from two threads at once: a synchronous commit made
        while the thread sits in ``consume`` blocks until that returns, or forever.
        """
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

    async def commit(self, offsets: dict[TP, int]) -> None:
        """Commit ``offsets`` (as this consumer's group member) from the consumer thread, and
        wait for the broker's answer.

        The commit waits for the thread, which may first run a revocation of some of these
        partitions and commit their final offsets: those are then left out, not moved back
        to what was done when this commit was asked for.
        """
        if not offsets:
            return
        asked = {tp: self._revocations[tp] for tp in offsets}

        def commit(_kafka: Any) -> Future[None]:
            current = {tp: o for tp, o in offsets.items() if self._revocations[tp] == asked[tp]}
            if len(current) < len(offsets):
                log.debug(
                    "not committing %s: revoked since", format_tps(list(offsets.keys() - current))
                )
            return self._commit_async(current)

        answered: Future[None] = await self.call(commit)
        await asyncio.wrap_future(answered)

    def _commit_async(self, offsets: dict[TP, int]) -> Future[None]:
        """Send a commit (on the consumer thread); the future is resolved by the commit
        callback, which a later poll of this thread serves."""
        future: Future[None] = Future()
        if not offsets:
            future.set_result(None)
            return future
        key = frozenset((t, p, o) for (t, p), o in offsets.items())
        self._commit_waiters.setdefault(key, []).append(future)
        try:
            self._kafka.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=True,
            )
        except confluent_kafka.KafkaException as exc:
            self._commit_waiters[key].remove(future)
            future.set_exception(BrokerError(f"commit of {format_tps(offsets)} failed: {exc}"))
        return future

    def _committed(self, err: Any, partitions: list[Any]) -> None:
        """librdkafka's commit callback (on this thread, in a poll)."""
        key = frozenset((p.topic, p.partition, p.offset) for p in partitions)
        waiters = self._commit_waiters.get(key)
        if not waiters:
            return  # a synchronous commit's: it was answered already
        future = waiters.pop(0)
        if not waiters:
            del self._commit_waiters[key]
        failed = [p for p in partitions if p.error is not None]
        if future.done():  # its asker gave up
            return
        if err is not None or failed:
            cause = err if err is not None else failed[0].error
            tps = format_tps((p.topic, p.partition) for p in partitions)
            future.set_exception(BrokerError(f"commit of {tps} failed: {cause}"))
        else:
            future.set_result(None)

    async def assign(self, tps: Sequence[TP]) -> None:
        """Start fetching ``tps`` from the group's committed offsets (assigned mode)."""
        new = [tp for tp in tps if tp not in self.assignment]
        if not new:
            return
        self.assignment.update(new)
        stored = [TopicPartition(t, p, confluent_kafka.OFFSET_STORED) for t, p in new]
        await self.call(lambda kafka: kafka.incremental_assign(stored))
        log.info("fetching %s", format_tps(new))

    async def unassign(self, tps: Sequence[TP]) -> None:
        """Stop fetching ``tps`` (assigned mode)."""
        gone = [tp for tp in tps if tp in self.assignment]
        if not gone:
            return
        self.assignment.difference_update(gone)
        parts = [TopicPartition(t, p) for t, p in gone]
        await self.call(lambda kafka: kafka.incremental_unassign(parts))
        log.info("stopped fetching %s", format_tps(gone))

    def commit_now(self, offsets: dict[TP, int]) -> None:
        """Commit synchronously; only from the consumer thread (or its callbacks)."""
        if not offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self._kafka.commit(offsets=tps, asynchronous=False)
        except confluent_kafka.KafkaException as exc:
            raise BrokerError(f"commit of {format_tps(list(offsets))} failed: {exc}") from exc

    def _run(self) -> None:
        kafka = self._kafka
        try:
            if self._topics:  # librdkafka refuses an empty subscription
                self._subscribe(kafka)
            while not self._stopping.is_set():
                if self._resubscribe.is_set():
                    self._resubscribe.clear()
                    self._subscribe(kafka)
                self._serve_calls()
                if not self._topics and not self.assignment:
                    self._wake.wait(0.1)  # nothing to fetch until a stream subscribes
                    self._wake.clear()
                    continue
                msgs = fetch(kafka, self._batch_size, self._poll_timeout)
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
            self._serve_calls()
            try:
                kafka.close()  # leaves the group; runs the revoke callback first
            except Exception:
                log.exception("closing the consumer failed")
            with self._calls_lock:
                self._closed = True
            self._serve_calls(closed=True)  # those queued since the last serve
            for waiters in self._commit_waiters.values():
                for future in waiters:
                    if not future.done():
                        future.set_exception(BrokerError("the consumer closed before the answer"))
            self._commit_waiters.clear()
            self.stopped.set()

    def _subscribe(self, kafka: Any) -> None:
        kafka.subscribe(
            self._topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    @property
    def alive(self) -> bool:
        """True while the thread runs and fetches (a dead thread is a dead worker)."""
        return self._thread is not None and self._thread.is_alive() and self.failure is None

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


def format_tps(tps: Iterable[TP]) -> str:
    """``t[0], t[1], u[3]``: partitions for a log line."""
    return ", ".join(f"{t}[{p}]" for t, p in sorted(tps)) or "nothing"

"""Request/reply for ``ask``: correlation ids, reply topics, and the futures waiting on them.

A request carries where to reply (``shoal-reply-to``, a topic name), a correlation id and,
from a worker of a supervisor, a route (``shoal-reply-route``: which worker of that host
asked). The agent that handles it produces its result to that topic with the same
correlation id and route; an agent that raised replies with ``shoal-error`` set, so the
asker gets an exception instead of waiting forever.

Two ways to receive replies: a process of its own (a script, a client, ``clusterctl worker``)
reads a reply topic of its own (:class:`ReplyConsumer`); a worker of a supervisor shares its
host's reply topic, which the supervisor reads and routes over the local channel
(:class:`HostReplies`, with :class:`ReplyRouter` on the supervisor's side). When the asker is
the replying process, or another worker of its host, the reply skips Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import confluent_kafka
import msgspec

from shoal import metrics
from shoal.exceptions import AskTimeoutError, RemoteAgentError
from shoal.kafka import clients
from shoal.kafka.consumer import fetch
from shoal.kafka.metadata import metadata_topic, reply_alive_record, reply_gone_record
from shoal.kafka.producer import Producer

log = logging.getLogger(__name__)

REPLY_TO = "shoal-reply-to"
CORRELATION_ID = "shoal-correlation-id"
ERROR = "shoal-error"
AGENT = "shoal-agent"
ROUTE = "shoal-reply-route"

#: How often a process with a reply topic says it is alive (clusterctl clean uses it).
REPLY_KEEPALIVE_EVERY = 60.0

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode


def encode_reply(value: Any) -> bytes:
    return _json_encode(value)


def encode_error(exc: BaseException) -> tuple[bytes, str]:
    return _json_encode({"message": str(exc)}), type(exc).__qualname__


def new_correlation_id() -> str:
    """128 random bits: unique across processes and hosts without coordination."""
    return uuid.uuid4().hex


class ReplyFutures:
    """The asks of this process waiting for replies, by correlation id."""

    #: Where replies to this process go: the ``shoal-reply-to`` of its requests.
    topic: str
    #: The ``shoal-reply-route`` of its requests (which worker of the host), or None.
    route: str | None = None

    def __init__(self) -> None:
        self._pending: dict[str, tuple[asyncio.Future[Any], str, float]] = {}
        self.late = 0
        self.received = 0

    def request_headers(self) -> list[tuple[str, bytes]]:
        """Headers a request needs so its reply finds its way back here."""
        return [] if self.route is None else [(ROUTE, self.route.encode())]

    def expect(self, correlation_id: str, agent: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = (future, agent, time.perf_counter())
        metrics.record.ask_sent(agent)
        return future

    @property
    def pending(self) -> int:
        """Asks waiting for their reply."""
        return len(self._pending)

    def forget(self, correlation_id: str) -> None:
        self._pending.pop(correlation_id, None)

    def is_waiting(self, correlation_id: str) -> bool:
        return correlation_id in self._pending

    def resolve(self, correlation_id: str, value: bytes | None, error: bytes | None) -> None:
        """Hand a reply to its asker (called on the loop thread)."""
        entry = self._pending.pop(correlation_id, None)
        if entry is None:
            self.late += 1
            metrics.record.late_reply()
            log.debug("dropped a reply for %s: nobody waits for it (timed out?)", correlation_id)
            return
        future, agent, sent_at = entry
        if future.done():
            return
        self.received += 1
        metrics.record.ask_reply(agent, time.perf_counter() - sent_at, error is not None)
        try:
            decoded = _json_decode(value) if value else None
        except msgspec.DecodeError as exc:
            future.set_exception(RemoteAgentError(agent, "DecodeError", f"bad reply: {exc}"))
            return
        if error is not None:
            message = decoded.get("message", "") if isinstance(decoded, dict) else str(decoded)
            future.set_exception(RemoteAgentError(agent, error.decode(), message))
        else:
            future.set_result(decoded)

    async def wait(
        self,
        correlation_id: str,
        future: asyncio.Future[Any],
        timeout: float,
        hint: Callable[[], str] = lambda: "",
    ) -> Any:
        """The reply, or AskTimeoutError after ``timeout`` seconds; ``hint()`` adds what is
        known of the cause (a broker that reported errors) to its message."""
        try:
            return await asyncio.wait_for(future, max(0.0, timeout))
        except TimeoutError:
            entry = self._pending.pop(correlation_id, None)
            agent = entry[1] if entry else "?"
            metrics.record.ask_timeout(agent)
            raise AskTimeoutError(
                f"no reply from agent {agent!r} within {timeout:g} s "
                f"(correlation id {correlation_id}); is a worker running it?{hint()}"
            ) from None

    @property
    def owns_topic(self) -> bool:
        """True when the reply topic is this process's own (to create and delete)."""
        return False

    def stop(self) -> None:
        """Stop receiving replies."""


class HostReplies(ReplyFutures):
    """A supervisor's worker: replies come over the local channel, routed by its supervisor."""

    def __init__(self, topic: str, route: str) -> None:
        super().__init__()
        self.topic = topic
        self.route = route


ReplyHandler = Callable[[dict[str, bytes], bytes | None], None]


class ReplyConsumer(ReplyFutures):
    """A reply topic of this process's own and the thread that reads it.

    ``on_reply`` (called on the event loop with the reply's headers and value) defaults to
    resolving the waiting asks; a supervisor's :class:`ReplyRouter` forwards instead.
    """

    def __init__(self, app_id: str, consumer_config: dict[str, Any], *, kind: str = "") -> None:
        super().__init__()
        self.topic = f"{app_id}-reply-{kind}{uuid.uuid4().hex[:16]}"
        self._config = {**consumer_config, "group.id": self.topic, "enable.auto.commit": False}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def owns_topic(self) -> bool:
        return True

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        kafka = confluent_kafka.Consumer(self._config)
        kafka.assign(
            [confluent_kafka.TopicPartition(self.topic, 0, confluent_kafka.OFFSET_BEGINNING)]
        )
        self._thread = threading.Thread(
            target=self._run, args=(kafka,), name="shoal-replies", daemon=True
        )
        self._thread.start()

    def on_reply(self, headers: dict[str, bytes], value: bytes | None) -> None:
        cid = headers.get(CORRELATION_ID)
        if cid is not None:
            self.resolve(cid.decode(), value, headers.get(ERROR))

    def _run(self, kafka: Any) -> None:
        assert self._loop is not None
        loop = self._loop
        try:
            while not self._stopping.is_set():
                for msg in fetch(kafka, 100, 0.1):
                    if msg.error() is not None:
                        continue
                    if loop.is_closed():
                        return
                    loop.call_soon_threadsafe(self.on_reply, dict(msg.headers() or ()), msg.value())
        finally:
            kafka.close()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None


class ReplyRouter(ReplyConsumer):
    """The supervisor's side: the host's reply topic, each reply passed to ``forward`` with
    its route (the asking worker's index)."""

    def __init__(
        self,
        app_id: str,
        consumer_config: dict[str, Any],
        forward: Callable[[str, str, bytes | None, bytes | None], None],
    ) -> None:
        super().__init__(app_id, consumer_config, kind="host-")
        self._forward = forward

    def on_reply(self, headers: dict[str, bytes], value: bytes | None) -> None:
        cid, route = headers.get(CORRELATION_ID), headers.get(ROUTE)
        if cid is None or route is None:
            self.late += 1
            return
        self._forward(route.decode(), cid.decode(), value, headers.get(ERROR))


async def keep_alive(producer: Producer, app_id: str, reply_topic: str, every: float) -> None:
    """Say every ``every`` seconds that ``reply_topic``'s owner is alive (see metadata)."""
    topic = metadata_topic(app_id)
    while True:
        key, value = reply_alive_record(reply_topic)
        producer.send_soon(topic, key, value)
        await asyncio.sleep(every)  # the period of the liveness record


async def drop_reply_topic(
    producer: Producer, bootstrap: str, app_id: str, reply_topic: str, timeout: float = 15.0
) -> None:
    """A clean close: forget the liveness record and delete the topic."""
    key, value = reply_gone_record(reply_topic)
    producer.send_soon(metadata_topic(app_id), key, value)
    admin = clients.admin_client(bootstrap)
    futures = admin.delete_topics([reply_topic], operation_timeout=min(10.0, timeout))
    for future in futures.values():
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except Exception as exc:  # already gone, or the broker is down: clean can do it later
            log.warning("could not delete reply topic %s: %s", reply_topic, exc)
    admin.poll(0)

"""The App: settings, the registry of topics, agents and tasks, and their start order.

Constructing an App has no side effects: no network, no event loop. The producer and the reply
consumer start on first use (so a script that imports an app can ``await agent.ask(...)``
without starting a worker); :meth:`App.start` starts the worker side.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from shoal import metrics
from shoal.config import Settings, load_settings
from shoal.exceptions import BrokerError, ShoalError
from shoal.kafka import clients
from shoal.kafka.metadata import agent_record, metadata_topic, metadata_topic_spec
from shoal.kafka.producer import Producer
from shoal.model.events import Event
from shoal.processing.agents import Agent, AgentFun, Sink
from shoal.processing.topics import Topic
from shoal.rpc.replies import (
    AGENT,
    CORRELATION_ID,
    ERROR,
    REPLY_KEEPALIVE_EVERY,
    ROUTE,
    HostReplies,
    ReplyConsumer,
    ReplyFutures,
    drop_reply_topic,
    encode_error,
    encode_reply,
    keep_alive,
)
from shoal.runtime.conductor import Committer, Conductor
from shoal.runtime.inbox import Inbox

log = logging.getLogger(__name__)

TaskFun = Callable[..., Coroutine[Any, Any, None]]
#: (route, correlation id, reply body, error type or None): hands a reply to a host worker.
ReplyShortcut = Callable[[str, str, bytes, bytes | None], None]


class App:
    """A shoal application: ``app = shoal.App('orders', broker='kafka://localhost:9092')``."""

    def __init__(self, id: str, **settings: Any) -> None:
        self.conf: Settings = load_settings({**settings, "id": id})
        self.id = id
        self.agents: dict[str, Agent] = {}
        self.topics: list[Topic] = []
        self._tasks: list[TaskFun] = []
        #: Kafka topic name -> (Topic, Inbox) of each subscriber.
        self.subscribers: dict[str, list[tuple[Topic, Inbox]]] = {}
        self._inboxes: dict[tuple[str, str], Inbox] = {}
        self._producer: Producer | None = None
        self._reply_producer: Producer | None = None
        self._replies: ReplyFutures | None = None
        self._replies_lock: asyncio.Lock | None = None  # made on the loop, on first use
        self._reply_shortcut: ReplyShortcut | None = None
        self._reply_keepalive: asyncio.Task[None] | None = None
        self._conductor: Conductor | None = None
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._stopped: asyncio.Event | None = None
        self.crashed: BaseException | None = None
        self.started = False

    def __repr__(self) -> str:
        return f"<App {self.id} broker={self.conf.bootstrap_servers}>"

    # -- declaring ---------------------------------------------------------------------------

    def topic(self, *names: str, **options: Any) -> Topic:
        """Describe a topic: ``app.topic('orders', value_type=Order)``."""
        topic = Topic(self, *names, **options)
        self.topics.append(topic)
        return topic

    def agent(
        self,
        channel: Topic | str | None = None,
        *,
        name: str | None = None,
        concurrency: int = 1,
        sink: Iterable[Sink] | None = None,
        on_error: str | None = None,
    ) -> Callable[[AgentFun], Agent]:
        """Decorate an async function taking a stream: ``@app.agent(topic)``.

        Without a topic the agent reads a topic named after the function's fully
        qualified name. ``on_error`` overrides the app's ``agent_error_policy``.
        """

        def decorate(fun: AgentFun) -> Agent:
            agent_name = name or f"{fun.__module__}.{fun.__qualname__}"
            topic = channel if isinstance(channel, Topic) else self.topic(channel or agent_name)
            if on_error is not None:
                load_settings({"agent_error_policy": on_error}, env={}, config_file=False)
            agent = Agent(
                fun,
                app=self,
                channel=topic,
                name=agent_name,
                concurrency=concurrency,
                sink=sink,
                on_error=on_error,
            )
            self.agents[agent_name] = agent
            return agent

        return decorate

    def task(self, fun: TaskFun | None = None) -> Any:
        """Run a coroutine function when the app starts: ``@app.task()`` or ``@app.task``.
        A task that takes one argument is given the app."""

        def decorate(f: TaskFun) -> TaskFun:
            self._tasks.append(f)
            return f

        return decorate(fun) if fun is not None else decorate

    def repartition_topic(
        self, source: Topic, owner: str, suffix: str, partitions: int | None
    ) -> Topic:
        """The internal topic behind ``group_by``: same value type, keyed anew."""
        name = f"{self.id}-{owner}-{suffix}-repartition"
        for topic in self.topics:
            if topic.get_topic_name() == name:
                return topic
        return self.topic(
            name,
            value_type=source.value_type,
            value_serializer=source.value_serializer,
            partitions=partitions or source.partitions,
            internal=True,
        )

    # -- subscriptions -----------------------------------------------------------------------

    def subscribe_inbox(self, topic: Topic, *, owner: str, lanes: int = 1) -> Inbox:
        """The inbox of ``owner`` for ``topic`` (made once, shared by the owner's instances)."""
        key = (owner, topic.get_topic_name())
        inbox = self._inboxes.get(key)
        if inbox is None:
            inbox = self._inboxes[key] = Inbox(self.conf.stream_buffer_maxsize, lanes, owner)
            for name in topic.topics:
                self.subscribers.setdefault(name, []).append((topic, inbox))
            if self._conductor is not None:
                self._declare_soon([topic])
                self._conductor.resubscribe()
        return inbox

    def subscribed_topics(self) -> list[str]:
        return sorted(self.subscribers)

    def inboxes(self) -> list[Inbox]:
        return list(self._inboxes.values())

    # -- producing ---------------------------------------------------------------------------

    async def ensure_producer(self) -> Producer:
        """The app's producer, started on first use."""
        if self._producer is None:
            producer = Producer(self.producer_config())
            producer.start()
            self._producer = producer
            if not self.started:
                # A script that only sends: deliver what is queued when it exits.
                atexit.register(producer.stop, 10.0)
        return self._producer

    def _reply_producer_for_send(self) -> Producer:
        """Replies leave at once (no linger): an asker waits for each one, and batching
        them would add up to ``producer_linger_ms`` to every round trip. Pipeline outputs
        keep the batching producer."""
        if self._reply_producer is None:
            producer = Producer({**self.producer_config(), "linger.ms": 0})
            producer.start()
            self._reply_producer = producer
        return self._reply_producer

    async def barrier(self, timeout: float = 60.0) -> None:
        """Wait until everything produced so far (outputs and replies) is stored."""
        await self.producer_for_send().barrier(timeout)
        if self._reply_producer is not None:
            await self._reply_producer.barrier(timeout)

    def producer_for_send(self) -> Producer:
        """The started producer (inside a running app, where it always exists)."""
        if self._producer is None:
            raise ShoalError("the producer is not started: await app.start() first")
        return self._producer

    async def send(
        self, channel: Topic | Agent | str, *, key: Any = None, value: Any = None, **kw: Any
    ) -> Any:
        """Send a value to a topic, an agent or a topic name."""
        if isinstance(channel, Agent):
            return await channel.send(key=key, value=value, **kw)
        topic = self.topic(channel) if isinstance(channel, str) else channel
        return await topic.send(key=key, value=value, **kw)

    # -- replies -----------------------------------------------------------------------------

    async def ensure_replies(self) -> ReplyFutures:
        """Where this process's replies arrive: its own reply topic and consumer, made on the
        first ``ask`` (or the host's, for a worker of a supervisor)."""
        await self.ensure_producer()
        if self._replies is not None:
            return self._replies
        if self._replies_lock is None:
            self._replies_lock = asyncio.Lock()
        async with self._replies_lock:  # concurrent first asks make one topic
            if self._replies is None:
                replies = ReplyConsumer(self.id, self.consumer_config())
                retention = str(int(self.conf.reply_expires * 1000))
                await self.declare_topics(
                    [(replies.topic, 1, {"retention.ms": retention}), metadata_topic_spec(self.id)]
                )
                replies.start()
                self._replies = replies
                producer = self.producer_for_send()
                self._reply_keepalive = asyncio.get_running_loop().create_task(
                    keep_alive(producer, self.id, replies.topic, REPLY_KEEPALIVE_EVERY)
                )
        return self._replies

    def reply(
        self,
        reply_to: str,
        event: Event,
        *,
        value: Any = None,
        error: BaseException | None = None,
    ) -> None:
        """Answer the request behind ``event`` (its result, or the error it raised)."""
        cid_raw = event.message.header(CORRELATION_ID)
        cid = cid_raw.decode() if cid_raw else ""
        error_type = type(error).__qualname__.encode() if error is not None else None
        replies = self._replies
        if replies is not None and reply_to == replies.topic:
            body = encode_error(error)[0] if error is not None else encode_reply(value)
            if replies.is_waiting(cid):
                replies.resolve(cid, body, error_type)  # the asker is this process
                return
            route = event.message.header(ROUTE)
            if route is not None and self._reply_shortcut is not None:
                # The asker is another worker of this host: the channel, not Kafka.
                self._reply_shortcut(route.decode(), cid, body, error_type)
                return
        headers = [(CORRELATION_ID, cid.encode())]
        for name in (AGENT, ROUTE):
            header = event.message.header(name)
            if header is not None:
                headers.append((name, header))
        target = self._topic_named(reply_to)
        data: bytes | None
        if error is not None:
            assert error_type is not None
            data = encode_error(error)[0]
            headers.append((ERROR, error_type))
        elif target is not None:
            data = target.encode_value(value)  # replying into another agent's topic
        else:
            data = encode_reply(value)
        self._reply_producer_for_send().send_soon(reply_to, cid.encode(), data, headers=headers)

    def use_host_replies(self, replies: HostReplies, shortcut: ReplyShortcut) -> None:
        """A supervisor's worker: asks reply to the host's topic; replies to another worker
        of this host go to ``shortcut`` (the channel) instead of Kafka."""
        self._replies = replies
        self._reply_shortcut = shortcut

    def _topic_named(self, name: str) -> Topic | None:
        for topic in self.topics:
            if name in topic.topics:
                return topic
        return None

    # -- errors ------------------------------------------------------------------------------

    async def handle_agent_error(self, agent: Agent, exc: Exception, event: Event | None) -> bool:
        """Apply the error policy; True means the instance restarts on the next event."""
        if event is None:
            log.error("agent %s failed before its first event", agent.name, exc_info=exc)
            self.crash(exc)
            return False
        where = f"{event.topic}[{event.partition}]@{event.offset}"
        reply_to = event.message.header("shoal-reply-to")
        if reply_to is not None:
            log.warning("agent %s raised on request %s: %r", agent.name, where, exc)
            self.reply(reply_to.decode(), event, error=exc)
            event.ack()
            return True
        metrics.record.events_failed(agent.name, event.topic)
        if agent.error_policy == "crash":
            log.error("agent %s raised on %s; stopping the worker", agent.name, where, exc_info=exc)
            self.crash(exc)
            return False
        log.error("agent %s raised on %s; continuing", agent.name, where, exc_info=exc)
        if self._conductor is not None:
            self._conductor.dead_letter(event.message, exc)
        event.ack()
        return True

    def dead_parts(self) -> list[str]:
        """The threads that events need and that are not running: a worker with any is dead,
        whatever its event loop says."""
        dead = []
        if self._conductor is not None and not self._conductor.fetching:
            dead.append("the consumer thread")
        for producer in (self._producer, self._reply_producer):
            if producer is not None and not producer.alive:
                dead.append("a producer's delivery thread")
        return dead

    def crash(self, exc: BaseException) -> None:
        """Stop the worker because of ``exc``; it exits non-zero."""
        if self.crashed is None:
            self.crashed = exc
        if self._stopped is not None:
            self._stopped.set()

    # -- kafka plumbing ----------------------------------------------------------------------

    def _common_config(self) -> dict[str, Any]:
        return clients.client_config(self.conf.bootstrap_servers, f"shoal-{self.id}")

    def producer_config(self) -> dict[str, Any]:
        config = {
            **self._common_config(),
            "acks": self.conf.producer_acks,
            "enable.idempotence": self.conf.producer_acks == "all",
            "linger.ms": self.conf.producer_linger_ms,
            # Keyed messages land where the Java client puts them, so group_by co-partitions
            # with topics written by other Kafka clients.
            "partitioner": "murmur2_random",
        }
        if self.started:
            # A worker's outputs wait for a broker that is away, however long: their events
            # are not committed until they are stored, so a restart would only repeat them.
            config["message.timeout.ms"] = 0
        return config

    def consumer_config(self) -> dict[str, Any]:
        return {
            **self._common_config(),
            "group.id": self.id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            # How long the group waits for a member that died before moving its partitions.
            "session.timeout.ms": int(self.conf.broker_session_timeout * 1000),
        }

    async def declare_topics(self, specs: list[tuple[str, int, dict[str, str]]]) -> None:
        """Create topics that do not exist yet (name, partitions, config), and wait for them."""
        if not specs:
            return
        admin = clients.admin_client(self.conf.bootstrap_servers)
        new = [
            NewTopic(
                name,
                num_partitions=n,
                replication_factor=self.conf.topic_replication_factor,
                config=config,
            )
            for name, n, config in specs
        ]
        futures = admin.create_topics(new, operation_timeout=30)
        try:
            for name, future in futures.items():
                try:
                    await asyncio.wrap_future(future)
                except KafkaException as exc:
                    if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                        continue
                    raise BrokerError(
                        f"cannot create topic {name!r} on {self.conf.bootstrap_servers}: "
                        f"{exc.args[0].str()}"
                    ) from exc
        finally:
            admin.poll(0)  # hands librdkafka's log lines and errors to logging

    def _topic_specs(self, topics: Iterable[Topic]) -> list[tuple[str, int, dict[str, str]]]:
        specs = []
        for topic in topics:
            for name in topic.topics:
                specs.append((name, topic.partitions or self.conf.topic_partitions, topic.config))
        return specs

    def _declare_soon(self, topics: list[Topic]) -> None:
        self.spawn(self.declare_topics(self._topic_specs(topics)), name="declare topics")

    # -- running -----------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run a background coroutine for as long as the app runs; its failure crashes it."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._running[f"{name}#{id(task)}"] = task
        task.add_done_callback(self._background_done)
        return task

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._running.pop(f"{task.get_name()}#{id(task)}", None)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %r failed", task.get_name(), exc_info=task.exception())
            self.crash(task.exception())  # type: ignore[arg-type]

    async def start(self, *, assigned: bool = False, committer: Committer | None = None) -> None:
        """Start the worker side: producer, topics, agents, tasks, then fetching.

        By default the app joins its consumer group itself. A worker of a supervisor passes
        ``assigned=True`` and a ``committer``: it fetches what the supervisor assigns
        (``app.conductor.assign``) and hands its offsets to the supervisor to commit.
        """
        if self.started:
            return
        self.started = True
        self._stopped = asyncio.Event()
        # The producer first: agents, sinks and dead letters write from their first event.
        await self.ensure_producer()
        # Topics before anyone reads them, with the app's partition count.
        declared = [t for t in self.topics if not t.internal or t in self._subscribed()]
        if self.conf.topic_allow_declare:
            specs = self._topic_specs(declared)
            specs.append((self.conf.dead_letter_topic_name, 1, {}))
            specs.append(metadata_topic_spec(self.id))
            await self.declare_topics(specs)
        # Tell clients which agents run here and how to talk to them.
        for agent in self.agents.values():
            key, value = agent_record(agent.info())
            self.producer_for_send().send_soon(metadata_topic(self.id), key, value)
        if self.agents:
            await self.producer_for_send().barrier()  # published before we say we started
        # Agents subscribe their inboxes before the consumer joins the group.
        for agent in self.agents.values():
            agent.start(self.subscribe_inbox(agent.channel, owner=agent.name, lanes=1))
        for fun in self._tasks:
            args = (self,) if len(inspect.signature(fun).parameters) == 1 else ()
            self.spawn(fun(*args), name=f"task {fun.__qualname__}")
        # Let agent bodies run up to their first read, so group_by topics are subscribed
        # in the first join instead of a rebalance right after it.
        for _ in range(3):
            await asyncio.sleep(0)
        # group_by topics appear only now, when agent bodies ran: declare them too.
        undeclared = [t for t in self._subscribed() if t not in declared]
        if self.conf.topic_allow_declare and undeclared:
            await self.declare_topics(self._topic_specs(undeclared))
        self._conductor = Conductor(self, assigned=assigned, committer=committer)
        await self._conductor.start()
        self.spawn(self._record_metrics(), name="metrics")
        log.info(
            "worker for app %s started: agents %s; topics %s",
            self.id,
            ", ".join(self.agents) or "none",
            ", ".join(self.subscribed_topics()) or "none",
        )

    async def _record_metrics(self, every: float = 1.0) -> None:
        """Hand what the per-event path counted to the metrics, once a second."""
        while True:
            await asyncio.sleep(every)  # the flush period
            record = metrics.record
            for agent in self.agents.values():
                stats = agent.stats
                if stats.processed > stats.reported:
                    topic = agent.channel.get_topic_name()
                    record.events_processed(agent.name, topic, stats.processed - stats.reported)
                    stats.reported = stats.processed
                samples, stats.samples = stats.samples, []
                for seconds in samples:
                    record.processing_time(agent.name, seconds)
            for (owner, _topic), inbox in self._inboxes.items():
                record.inbox_events(owner, inbox.size)
            if self._replies is not None:
                record.asks_pending(self._replies.pending)

    def _subscribed(self) -> list[Topic]:
        return [topic for subs in self.subscribers.values() for topic, _ in subs]

    async def wait_stopped(self) -> None:
        assert self._stopped is not None, "start() first"
        await self._stopped.wait()

    def request_stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for (or a crash stopped it): its threads may end."""
        return self._stopped is not None and self._stopped.is_set()

    async def stop(self, flush_timeout: float = 30.0) -> None:
        """Stop fetching, commit what is done, stop agents and tasks, flush the producer
        (waiting at most ``flush_timeout`` seconds for the broker: what is left then was
        not committed, and is processed again)."""
        if self._conductor is not None:
            # After a crash the event that raised is never finished: waiting for it to
            # drain would only hold the restart up. What is done is still committed.
            drain = 0.0 if self.crashed is not None else self.conf.worker_drain_timeout
            await self._conductor.stop(drain)
        for agent in self.agents.values():
            await agent.stop()
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        if self._replies is not None and self._replies.owns_topic:
            self._replies.stop()
            if self._reply_keepalive is not None:
                self._reply_keepalive.cancel()
            await drop_reply_topic(
                self.producer_for_send(),
                self.conf.bootstrap_servers,
                self.id,
                self._replies.topic,
                timeout=flush_timeout,
            )
            self._replies = None
        for producer in (self._reply_producer, self._producer):
            if producer is not None:
                await asyncio.to_thread(producer.stop, flush_timeout)
        self._reply_producer = self._producer = None
        self.started = False

    @property
    def conductor(self) -> Conductor | None:
        return self._conductor

    def main(self) -> None:
        """Run the command line for this app: ``python myapp.py worker -l info``."""
        from shoal.cluster.cli import main_for_app

        main_for_app(self)

"""The App: what a program declares (settings, topics, agents, tasks), and the order in which
its runtime starts them.

App is the composition root: it makes the :class:`~shoal.runtime.runtime.Runtime` and hands it
to every topic and agent it creates, so nothing below reaches back into the App. Constructing
an App has no side effects: no network, no event loop. The producer and the reply topic start
on first use (a script that imports an app can ``await agent.ask(...)`` without starting a
worker); :meth:`App.start` starts the worker side.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine, Iterable
from importlib.metadata import entry_points
from typing import Any

from shoal import metrics
from shoal.config import Settings, load_settings
from shoal.kafka.admin import TopicSpec
from shoal.kafka.metadata import agent_record, metadata_topic, metadata_topic_spec
from shoal.processing.agents import Agent, AgentFun, Sink
from shoal.processing.topics import Topic
from shoal.runtime.committer import CommitTarget
from shoal.runtime.conductor import Conductor
from shoal.runtime.runtime import Runtime

log = logging.getLogger(__name__)

TaskFun = Callable[..., Coroutine[Any, Any, None]]


class App:
    """A shoal application: ``app = shoal.App('orders', broker='kafka://localhost:9092')``."""

    def __init__(self, id: str, **settings: Any) -> None:
        self.conf: Settings = load_settings({**settings, "id": id})
        self.id = id
        self.agents: dict[str, Agent] = {}
        self._tasks: list[TaskFun] = []
        #: Everything that runs what is declared here (see shoal.runtime.runtime).
        self.runtime = Runtime(self.conf, id)

    def __repr__(self) -> str:
        return f"<App {self.id} broker={self.conf.bootstrap_servers}>"

    # -- declaring ---------------------------------------------------------------------------

    def topic(self, *names: str, **options: Any) -> Topic:
        """Describe a topic: ``app.topic('orders', value_type=Order)``."""
        return Topic(self.runtime, *names, **options)

    @property
    def topics(self) -> list[Topic]:
        """Every topic described, ``group_by`` topics included."""
        return [topic for topic in self.runtime.catalog.all() if isinstance(topic, Topic)]

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
                runtime=self.runtime,
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

    async def send(
        self, channel: Topic | Agent | str, *, key: Any = None, value: Any = None, **kw: Any
    ) -> Any:
        """Send a value to a topic, an agent or a topic name."""
        if isinstance(channel, Agent):
            return await channel.send(key=key, value=value, **kw)
        topic = self.topic(channel) if isinstance(channel, str) else channel
        return await topic.send(key=key, value=value, **kw)

    # -- running -----------------------------------------------------------------------------

    async def start(self, *, commit_target: CommitTarget | None = None) -> None:
        """Start the worker side, in this order (each step says why it comes where it does).

        By default the app joins its consumer group itself. A worker of a supervisor passes a
        ``commit_target``: it fetches what the supervisor assigns (``app.conductor.assign``)
        and hands its offsets to the target (its supervisor) to commit.
        """
        runtime = self.runtime
        if runtime.started:
            return
        # The producer first: agents, sinks and dead letters write from their first event.
        await runtime.begin()
        # Topics before anyone reads them, with the app's partition count.
        subscribed = runtime.subscriptions.topics
        declared = [t for t in self.topics if not t.internal or t in subscribed()]
        await runtime.declare(
            [
                *runtime.specs(declared),
                TopicSpec(self.conf.dead_letter_topic_name, 1, {}),
                metadata_topic_spec(self.id),
            ]
        )
        # Tell clients which agents run here and how to talk to them, before we say we
        # started.
        producer = runtime.producers.main()
        for agent in self.agents.values():
            producer.send_soon(metadata_topic(self.id), *agent_record(agent.info()))
        if self.agents:
            await producer.barrier()
        # Agents subscribe their inboxes before the consumer joins the group.
        for agent in self.agents.values():
            agent.start(runtime.subscriptions.subscribe(agent.channel, owner=agent.name))
        for fun in self._tasks:
            args = (self,) if len(inspect.signature(fun).parameters) == 1 else ()
            runtime.tasks.spawn(fun(*args), name=f"task {fun.__qualname__}")
        # Let agent bodies run up to their first read, so group_by topics are subscribed
        # in the first join instead of a rebalance right after it.
        for _ in range(3):
            await asyncio.sleep(0)
        # Last, the consumer (which declares the topics subscribed since): events flow.
        await runtime.fetch(commit_target)
        runtime.tasks.spawn(self._record_metrics(), name="metrics")
        log.info(
            "worker for app %s started: agents %s; topics %s",
            self.id,
            ", ".join(self.agents) or "none",
            ", ".join(runtime.subscriptions.topic_names()) or "none",
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
            for (owner, _topic), inbox in self.runtime.subscriptions.owned_inboxes().items():
                record.inbox_events(owner, inbox.size)
            record.asks_pending(self.runtime.asker.pending)

    async def wait_stopped(self) -> None:
        await self.runtime.wait_stopped()

    def request_stop(self) -> None:
        self.runtime.request_stop()

    async def stop(self, flush_timeout: float = 30.0) -> None:
        """Stop fetching, commit what is done, stop agents and tasks, flush the producers
        (waiting at most ``flush_timeout`` seconds for the broker: what is left then was not
        committed, and is processed again)."""
        await self.runtime.stop_fetching()
        for agent in self.agents.values():
            await agent.stop()
        await self.runtime.close(flush_timeout)

    # -- what a worker and the tests look at ------------------------------------------------

    @property
    def conductor(self) -> Conductor | None:
        return self.runtime.conductor

    @property
    def crashed(self) -> BaseException | None:
        return self.runtime.crashed

    @property
    def started(self) -> bool:
        return self.runtime.started

    def dead_parts(self) -> list[str]:
        return self.runtime.dead_parts()

    def main(self) -> None:
        """Run the command line for this app: ``python myapp.py worker -l info``.

        The command line is a layer above the app: it is found through the ``shoal.cli``
        entry point, not imported from here.
        """
        (cli,) = entry_points(group="shoal.cli", name="main")
        run: Callable[[App], None] = cli.load()
        run(self)

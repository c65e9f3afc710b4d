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

from shoal.cli import AppCommand, ClickDecorator
from shoal.config import Settings, load_settings, warn_ignored
from shoal.kafka.admin import TopicSpec
from shoal.kafka.metadata import agent_record, metadata_topic, metadata_topic_spec, table_record
from shoal.processing.agents import Agent, AgentFun, Sink, qualified_name
from shoal.processing.channels import Channel
from shoal.processing.reporting import report_metrics
from shoal.processing.services import Service
from shoal.processing.signals import Signal
from shoal.processing.timers import Crontab, Timer, TimerFun, zone
from shoal.processing.topics import Topic
from shoal.runtime.committer import CommitTarget
from shoal.runtime.conductor import Conductor
from shoal.runtime.rebalances import Change
from shoal.runtime.runtime import Runtime
from shoal.tables import Collection, GlobalTable, SetGlobalTable, SetTable, Table, TableManager
from shoal.types import TP, TopicPartition
from shoal.web.routes import Page, make_page, route
from shoal.web.views import View

log = logging.getLogger(__name__)

TaskFun = Callable[..., Coroutine[Any, Any, None]]


class App:
    """A shoal application: ``app = shoal.App('orders', broker='kafka://localhost:9092')``."""

    def __init__(self, id: str, **settings: Any) -> None:
        self.conf: Settings = load_settings({**settings, "id": id})
        self.agents: dict[str, Agent] = {}
        self._tasks: list[TaskFun] = []
        self.timers: list[Timer] = []
        self.crontabs: list[Crontab] = []
        #: ``@app.command``s by their command-line name.
        self.commands: dict[str, type[AppCommand]] = {}
        self._services: list[type[Service] | Service] = []
        #: ``@app.page``s: served by each host's web server (shoal.supervisor.web).
        self.pages: list[Page] = []
        self._running_services: list[Service] = []
        #: Everything that runs what is declared here (see shoal.runtime.runtime).
        self.runtime = Runtime(self.conf, id)
        self.runtime.rebalances.listener = self._rebalanced
        #: The app's tables by name (Faust's ``app.tables``).
        self.tables = TableManager(self.runtime)
        # Faust's signals (shoal.processing.signals says how receivers are called).
        self.on_partitions_assigned = Signal("on_partitions_assigned", self)
        self.on_partitions_revoked = Signal("on_partitions_revoked", self)
        self.on_rebalance_complete = Signal("on_rebalance_complete", self)
        self.on_before_shutdown = Signal("on_before_shutdown", self)

    @property
    def id(self) -> str:
        """The app id: its consumer group and the prefix of its internal topics. The name
        given to ``App``, or ``{name}-v{version}`` from ``version`` 2 on, as in Faust."""
        return str(self.conf.id)

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
        channel: Topic | Channel | str | None = None,
        *,
        name: str | None = None,
        concurrency: int = 1,
        sink: Iterable[Sink] | None = None,
        on_error: str | None = None,
        isolated_partitions: bool = False,
        supervisor_strategy: Any = None,
        **topic_options: Any,
    ) -> Callable[[AgentFun], Agent]:
        """Decorate an async function taking a stream: ``@app.agent(topic)``.

        Without a topic the agent reads ``{app id}-{module}.{function}``, made with
        ``topic_options`` (``value_type=``, ``partitions=``...), as in Faust. ``on_error``
        overrides the app's ``agent_error_policy``. Faust's ``supervisor_strategy`` is
        accepted and has no effect: an instance that raises is restarted on the next event.
        """
        del supervisor_strategy

        def decorate(fun: AgentFun) -> Agent:
            agent_name = name or qualified_name(fun)
            topic: Topic | Channel
            if isinstance(channel, Topic | Channel):
                topic = channel
            else:
                topic = self.topic(channel or f"{self.id}-{agent_name}", **topic_options)
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
                isolated_partitions=isolated_partitions,
            )
            self.agents[agent_name] = agent
            return agent

        return decorate

    def channel(
        self,
        *,
        key_type: Any = None,
        value_type: Any = None,
        maxsize: int | None = None,
        **_faust_options: Any,
    ) -> Channel:
        """An in-memory channel (no Kafka) that agents can read: see
        :mod:`shoal.processing.channels`."""
        return Channel(self.runtime, key_type=key_type, value_type=value_type, maxsize=maxsize)

    def timer(
        self,
        interval: float,
        on_leader: bool = False,
        traced: bool = True,
        name: str | None = None,
        max_drift_correction: float = 0.1,
    ) -> Callable[[TimerFun], TimerFun]:
        """Run ``async def f()`` (or ``f(app)``) every ``interval`` seconds in each worker
        process, or only on the leader with ``on_leader=True`` (see
        :mod:`shoal.processing.timers`). ``traced`` is Faust's and has no effect."""

        def decorate(fun: TimerFun) -> TimerFun:
            self.timers.append(
                Timer(fun, float(interval), on_leader, name or "", max_drift_correction)
            )
            return fun

        return decorate

    def crontab(
        self,
        cron_format: str,
        *,
        timezone: Any = None,
        on_leader: bool = False,
        traced: bool = True,
    ) -> Callable[[TimerFun], TimerFun]:
        """Run ``async def f()`` (or ``f(app)``) at the times ``cron_format`` names, in
        ``timezone`` (a tzinfo or an IANA name; default: the app's ``timezone`` setting)."""

        def decorate(fun: TimerFun) -> TimerFun:
            self.crontabs.append(Crontab(fun, cron_format, zone(timezone), on_leader))
            return fun

        return decorate

    def command(
        self, *options: ClickDecorator, base: type[AppCommand] | None = None, **kwargs: Any
    ) -> Callable[[Callable[..., Coroutine[Any, Any, Any]]], type[AppCommand]]:
        """A command of this program: ``@app.command(option('--n', type=int))``, run as
        ``python app.py NAME`` or ``clusterctl -A app NAME`` (see :mod:`shoal.cli`)."""

        def decorate(fun: Callable[..., Coroutine[Any, Any, Any]]) -> type[AppCommand]:
            command = (base or AppCommand).from_handler(*options, **kwargs)(fun)
            self.commands[command.command_name] = command
            return command

        return decorate

    def service(self, cls: type[Service] | Service) -> Any:
        """Start a :class:`~shoal.processing.services.Service` (a class or an instance)
        in each worker process, after the agents, and stop it before them."""
        self._services.append(cls)
        return cls

    def Table(self, name: str, *, default: Any = None, **options: Any) -> Table:
        """A table: a dict changelogged to Kafka, partitioned as the events that change it
        (see docs/tables.md): ``app.Table('counts', default=int)``."""
        return Table(self.tables, name, default=default, **options)

    def GlobalTable(self, name: str, *, default: Any = None, **options: Any) -> GlobalTable:
        """A table every worker holds whole."""
        return GlobalTable(self.tables, name, default=default, **options)

    def SetTable(self, name: str, **options: Any) -> SetTable:
        """A table of sets: ``table[key].add(value)``."""
        return SetTable(self.tables, name, **options)

    def SetGlobalTable(self, name: str, **options: Any) -> SetGlobalTable:
        """A table of sets that every worker holds whole."""
        return SetGlobalTable(self.tables, name, **options)

    def page(
        self,
        path: str,
        *,
        base: type[View] = View,
        cors_options: Any = None,
        name: str | None = None,
    ) -> Callable[[Any], type[View]]:
        """A web page at ``path`` (``'/count/{word}/'``): a View subclass, or an
        ``async def f(web, request, **params)`` answering GET (see docs/web.md)."""

        def decorate(fun: Any) -> type[View]:
            page = make_page(path, fun, base, name)
            self.pages.append(page)
            return page.view

        return decorate

    def table_route(
        self,
        table: Collection,
        shard_param: str | None = None,
        *,
        query_param: str | None = None,
        match_info: str | None = None,
        exact_key: str | None = None,
    ) -> Callable[[Any], Any]:
        """Answer a view method in the worker that owns the request's key of ``table``."""
        return route(table, "table", shard_param, query_param, match_info, exact_key)

    def topic_route(
        self,
        topic: Topic,
        shard_param: str | None = None,
        *,
        query_param: str | None = None,
        match_info: str | None = None,
        exact_key: str | None = None,
    ) -> Callable[[Any], Any]:
        """Answer a view method in the worker that owns the key's partition of ``topic``."""
        return route(topic, "topic", shard_param, query_param, match_info, exact_key)

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
        # Settings are final from here on (app.conf.x = ... raises a clear error after).
        self.conf.lock()
        if commit_target is None:  # a supervisor's workers leave it to their supervisor
            warn_ignored(self.conf, log)
        # The producer first: agents, sinks and dead letters write from their first event.
        await runtime.begin()
        # Topics before anyone reads them, with the app's partition count.
        subscribed = runtime.subscriptions.topics
        declared = [t for t in self.topics if not t.internal or t in subscribed()]
        internal = [
            TopicSpec(self.conf.dead_letter_topic_name, 1, {}),
            metadata_topic_spec(self.id),
        ]
        if not self.conf.topic_disable_leader:
            # Whoever the group gives its one partition is the leader (Faust's election).
            internal.append(TopicSpec(runtime.leader_topic, 1, {}))
            runtime.subscriptions.watch(runtime.leader_topic)
        await runtime.declare([*runtime.specs(declared), *internal, *self.tables.specs()])
        if self.tables.tables:
            # Global tables are recovered here; each table partition before its events are
            # fetched (the conductor asks the manager).
            runtime.state = self.tables
            await self.tables.start()
        # Tell clients which agents run here and how to talk to them, before we say we
        # started (agents on in-memory channels cannot be reached from outside), and tables.
        producer = runtime.producers.main()
        remote = [agent for agent in self.agents.values() if isinstance(agent.channel, Topic)]
        for agent in remote:
            producer.send_soon(metadata_topic(self.id), *agent_record(agent.info()))
        for table in self.tables.values():  # and how to find a key of each table
            producer.send_soon(metadata_topic(self.id), *table_record(table.info()))
        if remote or self.tables.tables:
            await producer.barrier()
        # Agents subscribe their inboxes before the consumer joins the group.
        for agent in self.agents.values():
            channel = agent.channel
            if isinstance(channel, Channel):
                agent.start(channel.inbox(agent.name))
            else:
                inbox = runtime.subscriptions.subscribe(
                    channel, owner=agent.name, by_partition=agent.isolated_partitions
                )
                agent.start(inbox)
        for fun in self._tasks:
            args = (self,) if len(inspect.signature(fun).parameters) == 1 else ()
            runtime.tasks.spawn(fun(*args), name=f"task {fun.__qualname__}")
        # Let agent bodies run up to their first read, so group_by topics are subscribed
        # in the first join instead of a rebalance right after it.
        for _ in range(3):
            await asyncio.sleep(0)
        # The consumer (which declares the topics subscribed since): events flow.
        await runtime.fetch(commit_target)
        runtime.tasks.spawn(report_metrics(self.agents, runtime), name="metrics")
        # Then, as in Faust: timers and crontabs, then services.
        default_tz = self.conf.tzinfo
        for timer in self.timers:
            job = timer.run(self.sleep, self.is_leader, self)
            runtime.tasks.spawn(job, name=f"timer {timer.name}")
        for crontab in self.crontabs:
            job = crontab.run(self.sleep, self.is_leader, self, default_tz)
            runtime.tasks.spawn(job, name=f"crontab {crontab.fun.__qualname__}")
        for service in self._services:
            instance = service() if isinstance(service, type) else service
            await instance.start(runtime.crash)
            self._running_services.append(instance)
        log.info(
            "worker for app %s started: agents %s; topics %s",
            self.id,
            ", ".join(self.agents) or "none",
            ", ".join(runtime.subscriptions.topic_names()) or "none",
        )

    async def wait_stopped(self) -> None:
        await self.runtime.wait_stopped()

    def request_stop(self) -> None:
        self.runtime.request_stop()

    async def stop(self, flush_timeout: float = 30.0) -> None:
        """Stop fetching, commit what is done, stop agents and tasks, flush the producers
        (waiting at most ``flush_timeout`` seconds for the broker: what is left then was not
        committed, and is processed again)."""
        self.runtime.request_stop()  # sleeps end: timers and crontabs stop calling
        await self.runtime.stop_fetching()
        await self.on_before_shutdown.send()
        while self._running_services:
            service = self._running_services.pop()
            try:
                await service.stop()
            except Exception:
                log.exception("service %s did not stop cleanly", service.label)
        for agent in self.agents.values():
            await agent.stop()
        await self.tables.stop()
        await self.runtime.close(flush_timeout)

    # -- what a program asks while it runs (Faust's names) -----------------------------------

    def is_leader(self) -> bool:
        """True in the one process of the whole cluster that is the leader right now."""
        return self.runtime.is_leader()

    @property
    def should_stop(self) -> bool:
        """True once the app is stopping (or crashed): loops in tasks should end."""
        return self.runtime.stopping

    @property
    def rebalancing(self) -> bool:
        """True from partitions taken from this process until its next assignment."""
        return self.runtime.rebalances.rebalancing

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True, early, when the app stops meanwhile."""
        return await self.runtime.sleep(seconds)

    async def _rebalanced(self, change: Change, tps: list[TP]) -> None:
        named = {TopicPartition(*tp) for tp in tps}
        for agent in self.agents.values():
            agent.partitions_changed(change is not Change.REVOKED, tps)
        if change is Change.REVOKED:
            await self.on_partitions_revoked.send(revoked=named)
        else:
            await self.on_partitions_assigned.send(assigned=named)
            await self.on_rebalance_complete.send()

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

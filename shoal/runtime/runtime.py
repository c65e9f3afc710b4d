"""The runtime: everything that runs what an app declared.

:class:`~shoal.app.App` makes one when it is constructed (no network, no event loop: its
parts start on first use) and hands it to every topic, agent and stream it creates, so they
never reach back into the App. The parts:

- ``producers``: outputs (batched) and replies (at once), with the at-least-once barrier;
- ``catalog`` and ``subscriptions``: every topic, and the inbox of every subscriber;
- ``tasks``: background coroutines whose failure crashes the app;
- ``asker`` and ``replier``: asking agents and answering asks (:mod:`shoal.rpc`);
- ``dead_letters`` and ``errors``: what cannot be handled, and the agents' error policy;
- ``conductor``: the partitions this process owns, made when it starts fetching.

It also holds the app's life: started, stopping, crashed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from shoal.config import Settings
from shoal.kafka.admin import TopicSpec, declare_topics
from shoal.rpc.asker import Asker
from shoal.rpc.replier import Replier
from shoal.runtime.committer import CommitTarget
from shoal.runtime.conductor import Conductor
from shoal.runtime.dispatch import DeadLetters
from shoal.runtime.policy import ErrorPolicy
from shoal.runtime.producers import Producers
from shoal.runtime.rebalances import Rebalances
from shoal.runtime.state import PartitionState
from shoal.runtime.subscriptions import Catalog, Subscriptions, TopicLike
from shoal.runtime.tasks import Tasks
from shoal.types import leader_topic


class Runtime:
    """See the module docstring."""

    def __init__(self, conf: Settings, app_id: str) -> None:
        self.conf = conf
        self._app_id = app_id
        # The parts read their settings when they use them, not here: a setting assigned
        # after App() and before the app starts (app.conf.x = ...) takes effect.
        self.producers = Producers(conf, lambda: self.client_id)
        self.catalog = Catalog()
        self.subscriptions = Subscriptions(lambda: self.conf.stream_buffer_maxsize)
        self.tasks = Tasks(self.crash)
        #: Counts of what happened to fetched messages (the conductor's ``stats``).
        self.stats: Counter[str] = Counter()
        self.dead_letters = DeadLetters(
            lambda: self.conf.dead_letter_topic_name, self.producers.main, self.stats
        )
        self.asker = Asker(conf, lambda: self.app_id, self.producers.ensure)
        self.replier = Replier(self.asker, self.producers.replies, self._encoder_for)
        self.errors = ErrorPolicy(self.replier, self.dead_letters, self.crash)
        self.conductor: Conductor | None = None
        #: The tables of the app (their manager), if it has any.
        self.state: PartitionState | None = None
        #: Partitions gained and lost, told to the app (its signals) in order.
        self.rebalances = Rebalances()
        self.started = False
        self.crashed: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        #: Kafka topics declared (made, or found to exist) by this runtime.
        self._declared: set[str] = set()

    @property
    def app_id(self) -> str:
        """The app id the settings make (``{id}-v{version}`` from version 2 on)."""
        return self.conf.id or self._app_id

    @property
    def client_id(self) -> str:
        return f"shoal-{self.app_id}"

    def _encoder_for(self, name: str) -> Callable[[Any], bytes | None] | None:
        topic = self.catalog.named(name)
        return topic.encode_value if topic is not None else None

    # -- starting ----------------------------------------------------------------------------

    async def begin(self) -> None:
        """The app starts: it is a worker from now on (its outputs wait out outages)."""
        self.started = True
        self._stopped = asyncio.Event()
        self.producers.worker = True
        self.subscriptions.on_new = self._subscribed
        await self.producers.ensure()

    async def declare(self, specs: list[TopicSpec]) -> None:
        """Create the topics that do not exist yet (if ``topic_allow_declare``)."""
        if self.conf.topic_allow_declare and specs:
            await declare_topics(
                self.conf.bootstrap_servers, specs, self.conf.topic_replication_factor
            )
        self._declared.update(spec.name for spec in specs)

    def _undeclared(self) -> list[TopicLike]:
        return [
            topic
            for topic in self.subscriptions.topics()
            if not self._declared.issuperset(topic.topics)
        ]

    def specs(self, topics: Sequence[TopicLike]) -> list[TopicSpec]:
        return [spec for topic in topics for spec in topic.specs(self.conf.topic_partitions)]

    async def fetch(self, target: CommitTarget | None = None) -> None:
        """Start owning partitions: as a group member (``target`` None), or as a worker of a
        supervisor, which hands them out and commits what is handed to ``target``.

        Every subscribed topic is declared first: a consumer subscribed to a topic that does
        not exist yet learns of it only at its next metadata refresh, minutes later."""
        while undeclared := self._undeclared():
            await self.declare(self.specs(undeclared))
        # No await from the last check to the consumer's subscription: a topic subscribed
        # from here on goes through _subscribed (declared, then fetched).
        self.conductor = Conductor(
            self.conf,
            self.client_id,
            self.subscriptions,
            self.dead_letters,
            self.producers.barrier,
            self.crash,
            self.stats,
            target,
            self.rebalances,
            lambda: self.state,
        )
        self.tasks.spawn(self.rebalances.run(), name="rebalance signals")
        await self.conductor.start()

    def _subscribed(self, topic: TopicLike) -> None:
        """A stream subscribed while the app runs (a ``group_by``): once the consumer runs,
        declare the topic and then fetch it too; before, :meth:`fetch` declares it."""
        if self.conductor is not None:
            self.tasks.spawn(self._declare_and_fetch(topic), name="declare topics")

    async def _declare_and_fetch(self, topic: TopicLike) -> None:
        if not self._declared.issuperset(topic.topics):
            await self.declare(self.specs([topic]))
        if self.conductor is not None:
            self.conductor.resubscribe()

    # -- life --------------------------------------------------------------------------------

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

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True, early, once the app stops."""
        stopped = self._stopped
        if stopped is None:  # not started (a script, a command): nothing ends the sleep
            await asyncio.sleep(seconds)
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), seconds)
        return stopped.is_set()

    # -- the leader --------------------------------------------------------------------------

    @property
    def leader_topic(self) -> str:
        """Faust's leader topic: whoever owns its one partition is the app's leader."""
        return leader_topic(self.app_id)

    def is_leader(self) -> bool:
        """True in the one process of the cluster that owns the leader topic's partition."""
        conductor = self.conductor
        return conductor is not None and (self.leader_topic, 0) in conductor.offsets

    def crash(self, exc: BaseException) -> None:
        """Stop the worker because of ``exc``; it exits non-zero."""
        if self.crashed is None:
            self.crashed = exc
        if self._stopped is not None:
            self._stopped.set()

    def dead_parts(self) -> list[str]:
        """The threads that events need and that are not running: a worker with any is dead,
        whatever its event loop says."""
        dead = []
        if self.conductor is not None and not self.conductor.fetching:
            dead.append("the consumer thread")
        if self.state is not None:
            dead += self.state.dead()
        return dead + self.producers.dead()

    # -- stopping ----------------------------------------------------------------------------

    async def stop_fetching(self) -> None:
        """Stop fetching and commit what is done. After a crash the event that raised is
        never finished: waiting for it to drain would only hold the restart up."""
        if self.conductor is not None:
            drain = 0.0 if self.crashed is not None else self.conf.worker_drain_timeout
            await self.conductor.stop(drain)

    async def close(self, flush_timeout: float = 30.0) -> None:
        """Cancel the background tasks, close this process's reply topic, flush and stop the
        producers (waiting at most ``flush_timeout`` for the broker: what is left then was not
        committed, and is processed again)."""
        await self.tasks.cancel_all()
        await self.asker.close(flush_timeout)
        await self.producers.stop(flush_timeout)
        self.started = False

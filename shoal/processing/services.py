"""Services: long-lived parts of a program with a start and a stop, Faust's ``faust.Service``.

A subclass overrides the hooks it needs and marks methods to run in the background::

    @app.service
    class Poller(shoal.Service):
        async def on_start(self):  # before its tasks and timers run
            self.session = make_session()

        async def on_stop(self):  # before its tasks are cancelled
            await self.session.close()

        @shoal.Service.timer(10.0)
        async def poll(self):
            ...

        @shoal.Service.task
        async def listen(self):
            while not self.should_stop:
                ...

Start: :meth:`on_first_start` (the first time only), :meth:`on_start`, the tasks and timers,
the dependencies (:meth:`add_dependency`, in the order added), :meth:`on_started`.
Stop: ``should_stop`` turns true, :meth:`on_stop`, the dependencies in reverse order, the
tasks are cancelled, :meth:`on_shutdown`. That is mode's order, which ``faust.Service`` is.
Every worker process starts the app's services after its agents, tasks and timers, and
stops them before its agents. An exception in a service's task crashes the worker, as an
agent's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from shoal.processing.timers import Timer

log = logging.getLogger(__name__)

Method = Callable[[Any], Coroutine[Any, Any, Any]]

_TASK = "_shoal_service_task"
_TIMER = "_shoal_service_timer"


class Service:
    """See the module docstring. Keyword arguments are accepted and ignored, so that
    Faust's ``Service(loop=..., beacon=...)`` constructions keep working."""

    def __init__(self, **_faust_options: Any) -> None:
        self._children: list[Service] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = asyncio.Event()
        self._started = False
        self._starts = 0
        self._on_failure: Callable[[BaseException], None] | None = None

    # -- what a subclass overrides -----------------------------------------------------------

    async def on_first_start(self) -> None:
        """Called once, before the first :meth:`on_start`."""

    async def on_start(self) -> None:
        """Called when the service starts, before its tasks, timers and dependencies."""

    async def on_started(self) -> None:
        """Called when everything of the service runs."""

    async def on_stop(self) -> None:
        """Called when the service stops, before its dependencies stop and its tasks end."""

    async def on_shutdown(self) -> None:
        """Called last, when everything of the service has stopped."""

    # -- what a subclass marks ---------------------------------------------------------------

    @staticmethod
    def task(fun: Method) -> Method:
        """Run ``async def method(self)`` in the background while the service runs."""
        setattr(fun, _TASK, True)
        return fun

    @staticmethod
    def timer(
        interval: float,
        *,
        exec_first: bool = False,
        name: str | None = None,
        max_drift_correction: float = 0.1,
    ) -> Callable[[Method], Method]:
        """Run ``async def method(self)`` every ``interval`` seconds (first after one
        interval, or at once with ``exec_first``)."""

        def mark(fun: Method) -> Method:
            setattr(fun, _TIMER, (interval, exec_first, name, max_drift_correction))
            return fun

        return mark

    # -- running -----------------------------------------------------------------------------

    def add_dependency(self, service: Service) -> Service:
        """Start ``service`` with this one (after it) and stop it before this one ends."""
        self._children.append(service)
        if self._started:
            self._spawn(service.start(self._on_failure), f"start {service.label}")
        return service

    @property
    def label(self) -> str:
        return type(self).__name__

    @property
    def should_stop(self) -> bool:
        """True once the service is stopping: loops in its tasks should end."""
        return self._stopped.is_set()

    @property
    def started(self) -> bool:
        return self._started

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True, early, if the service stops meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)
        return self._stopped.is_set()

    async def start(self, on_failure: Callable[[BaseException], None] | None = None) -> None:
        """Start the service; ``on_failure`` is told of an exception in one of its tasks."""
        self._on_failure = on_failure
        self._stopped.clear()
        if not self._starts:
            await self.on_first_start()
        self._starts += 1
        await self.on_start()
        for method in self._marked(_TASK):
            self._spawn(method(), f"{self.label}.{method.__name__}")
        for method in self._marked(_TIMER):
            interval, exec_first, name, drift = getattr(method, _TIMER)
            self._spawn(
                self._run_timer(method, interval, exec_first, name, drift),
                f"{self.label}.{method.__name__}",
            )
        for child in self._children:
            await child.start(on_failure)
        self._started = True
        await self.on_started()

    async def stop(self) -> None:
        """Stop the service (see the module docstring for the order)."""
        if not self._started:
            return
        self._started = False
        self._stopped.set()
        await self.on_stop()
        for child in reversed(self._children):
            try:
                await child.stop()
            except Exception:
                log.exception("service %s did not stop cleanly", child.label)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.on_shutdown()

    def _marked(self, mark: str) -> list[Callable[[], Coroutine[Any, Any, Any]]]:
        found = []
        for name in dir(type(self)):
            attribute = getattr(type(self), name, None)
            if callable(attribute) and hasattr(attribute, mark):
                found.append(getattr(self, name))
        return found

    async def _run_timer(
        self,
        method: Callable[[], Coroutine[Any, Any, Any]],
        interval: float,
        exec_first: bool,
        name: str | None,
        drift: float,
    ) -> None:
        if exec_first:
            await method()

        async def call() -> None:
            await method()

        timer = Timer(call, interval, name=name or f"{self.label}.{method.__name__}")
        timer.max_drift_correction = drift
        await timer.run(self.sleep, lambda: True, None)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.append(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        log.error("service %s: %s failed", self.label, task.get_name(), exc_info=exc)
        if self._on_failure is not None:
            self._on_failure(exc)

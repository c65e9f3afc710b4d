"""A worker process of a supervisor: the app's agents on the partitions it is handed.

Started by the supervisor in a fresh interpreter (an ``aiomultiprocess.Process``: the spawn
context, since the supervisor runs librdkafka threads and forking a threaded process is
unsafe; uvloop; :func:`main` is its coroutine, and what it returns its exit code). It connects
to the supervisor's socket, says hello, and from then on fetches only what the supervisor
assigns, hands its done offsets to the supervisor to commit, and proves it is alive with a
heartbeat sent from its own event loop: a stalled loop sends none, and is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiomultiprocess

from shoal import logs, metrics
from shoal.app import App
from shoal.exceptions import BrokerError, ShoalError
from shoal.exitcodes import ExitCode
from shoal.ipc.link import ChannelClosed, Link
from shoal.ipc.messages import (
    Assign,
    Committed,
    Heartbeat,
    Hello,
    Offsets,
    Ready,
    Reply,
    Revoke,
    Revoked,
    Standby,
    Stop,
    WebRequest,
    Welcome,
    pack_offsets,
    pack_tps,
)
from shoal.kafka import admin
from shoal.runtime.tasks import Tasks
from shoal.types import TP
from shoal.worker import web
from shoal.worker.loader import load_app

log = logging.getLogger(__name__)

#: Seconds a worker's graceful stop may take beyond its drain before it gives up and exits.
STOP_GRACE = 10.0
#: Seconds a worker waits for its supervisor to answer a commit (it retries next round).
COMMIT_ANSWER_TIMEOUT = 30.0


@dataclass(frozen=True)
class WorkerOptions:
    """What a supervisor tells each worker process it starts."""

    app_spec: str
    socket_path: str
    log_level: str
    log_format: str
    heartbeat_interval: float
    drain_timeout: float


def set_title(title: str) -> None:
    try:
        import setproctitle
    except ImportError:  # optional nicety
        return
    setproctitle.setproctitle(title)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (faster I/O and callbacks)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def prepare(index: int, options: WorkerOptions) -> None:
    """First thing in the worker process, before its coroutine runs."""
    # A terminal's Ctrl-C reaches the whole process group: the supervisor decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.setup_logging(options.log_level, options.log_format, app_id="-", worker=index)
    set_title(f"shoal worker {index}")


def run_unit(unit: Any) -> None:
    """The worker process's target: run its coroutine the aiomultiprocess way, and exit with
    the code the coroutine returned."""
    sys.exit(aiomultiprocess.Process.run_async(unit))


async def main(index: int, options: WorkerOptions) -> int:
    """The worker process: load the app, run it for the supervisor; returns the exit code."""
    try:
        app = load_app(options.app_spec)
        logs.setup_logging(options.log_level, options.log_format, app_id=app.id, worker=index)
        # Before the app records anything: the supervisor exported the metrics directory.
        metrics.configure(app_id=app.id, worker=index, enabled=app.conf.metrics_enabled)
    except ShoalError as exc:
        log.error("worker %d cannot load the app: %s", index, exc)
        return ExitCode.BOOT_ERROR
    set_title(f"shoal worker {index} {app.id}")
    return await WorkerSession(app, index, options).run()


class WorkerSession:
    """The worker's side of the channel, around one App that fetches what it is assigned."""

    def __init__(self, app: App, index: int, options: WorkerOptions) -> None:
        self.app = app
        self.index = index
        self.options = options
        self._link: Link | None = None
        self._ids = itertools.count(1)
        self._commits: dict[int, asyncio.Future[bool]] = {}
        self._tasks = Tasks(app.runtime.crash)

    async def run(self) -> int:
        reader, writer = await asyncio.open_unix_connection(self.options.socket_path)
        self._link = link = Link(reader, writer)
        runtime = self.app.runtime
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, runtime.request_stop)
        await link.send(Hello(self.index, os.getpid()))
        welcome = await link.recv()
        if not isinstance(welcome, Welcome):
            log.error("worker %d: expected a welcome, got %r", self.index, welcome)
            return ExitCode.BOOT_ERROR
        # Asks made here are answered through the host's reply topic, read by the supervisor.
        runtime.asker.use_host(welcome.reply_topic, str(self.index))
        runtime.replier.neighbour = self._reply_to_neighbour
        try:
            # The supervisor reached the broker when it started: one that is away now (a
            # worker replaced during an outage) is waited for, not a reason to give up.
            await admin.wait_for_broker(
                self.app.conf.bootstrap_servers, None, what=f"worker {self.index}"
            )
            await self.app.start(commit_target=self)
        except BrokerError as exc:
            log.error("worker %d cannot start the app: %s", self.index, exc)
            return ExitCode.FAILED  # restarted (with backoff): the broker may be back then
        except ShoalError as exc:
            log.error("worker %d cannot start the app: %s", self.index, exc)
            return ExitCode.BOOT_ERROR
        tables = runtime.state is not None and runtime.state.has_partitioned_state()
        await link.send(Ready(runtime.subscriptions.topic_names(), tables))
        serve = loop.create_task(self._serve(link), name="channel")
        beat = loop.create_task(self._heartbeat(link), name="heartbeat")
        clean = True
        try:
            await self.app.wait_stopped()
        finally:
            # Stopping releases every partition and hands the final offsets to the
            # supervisor, which must still be listening: stop the channel after that.
            grace = self.options.drain_timeout + STOP_GRACE
            try:
                async with asyncio.timeout(grace):
                    await self.app.stop()
            except TimeoutError:
                log.error(
                    "worker %d did not stop within %.0f s; exiting anyway (what it did not "
                    "commit is processed again)",
                    self.index,
                    grace,
                )
                clean = False
            for task in (serve, beat):
                task.cancel()
            await asyncio.gather(serve, beat, return_exceptions=True)
            await self._tasks.cancel_all()
            link.close()
        if self.app.crashed is not None:
            log.error("worker %d stopped because of: %r", self.index, self.app.crashed)
            return ExitCode.FAILED
        return ExitCode.OK if clean else ExitCode.FAILED

    async def _serve(self, link: Link) -> None:
        runtime = self.app.runtime
        while True:
            try:
                message = await link.recv()
            except ChannelClosed:
                log.warning("worker %d lost its supervisor; stopping", self.index)
                runtime.request_stop()
                return
            match message:
                case Assign(tps=tps):
                    self._tasks.spawn(self._assign(tps), name="assign")
                case Standby(partitions=partitions):
                    if runtime.state is not None:
                        self._tasks.spawn(runtime.state.standby(partitions), name="standby")
                case Revoke(id=request, tps=tps, commit=commit):
                    self._tasks.spawn(self._revoke(link, request, tps, commit), name="revoke")
                case Reply(cid=cid, value=value, error=error):
                    if runtime.asker.futures is not None:
                        runtime.asker.futures.resolve(cid, value, error)
                case Committed(id=request, ok=ok):
                    future = self._commits.pop(request, None)
                    if future is not None and not future.done():
                        future.set_result(ok)
                case WebRequest():
                    self._tasks.spawn(self._answer(link, message), name="web")
                case Stop():
                    runtime.request_stop()
                case _:
                    log.warning("worker %d: unexpected %r", self.index, message)

    async def _answer(self, link: Link, request: WebRequest) -> None:
        """An HTTP request the supervisor handed over (shoal.worker.web)."""
        response = await web.answer(self.app, request)
        with contextlib.suppress(ChannelClosed):
            await link.send(response)

    def _reply_to_neighbour(self, route: str, cid: str, value: bytes, error: bytes | None) -> None:
        """A reply for another worker of this host: over the channel, not through Kafka."""
        link = self._link
        if link is not None:
            self._tasks.spawn(link.send(Reply(cid, value, error, route)), name="reply")

    async def _assign(self, tps: list[TP]) -> None:
        conductor = self.app.conductor
        assert conductor is not None
        await conductor.assign(tps)

    async def _revoke(self, link: Link, request: int, tps: list[TP], commit: bool) -> None:
        conductor = self.app.conductor
        assert conductor is not None
        offsets = await conductor.release(tps, self.options.drain_timeout, commit=commit)
        await link.send(Revoked(request, pack_offsets(offsets)))

    async def commit(self, offsets: dict[TP, int]) -> bool:
        """The commit target of this worker: the supervisor commits as the group member."""
        link = self._link
        if link is None:
            return False
        request = next(self._ids)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._commits[request] = future
        try:
            await link.send(Offsets(request, pack_offsets(offsets)))
            return await asyncio.wait_for(future, COMMIT_ANSWER_TIMEOUT)
        except (ChannelClosed, TimeoutError):
            return False
        finally:
            self._commits.pop(request, None)

    async def _heartbeat(self, link: Link) -> None:
        """Prove from this loop, every ``heartbeat_interval``, that the worker is alive: the
        loop runs *and* every thread events need runs. A worker with a dead thread stops
        heartbeating and crashes, so the supervisor replaces it."""
        runtime = self.app.runtime
        conductor = runtime.conductor
        assert conductor is not None
        interval = self.options.heartbeat_interval
        lag: int | None = None
        highs: dict[TP, int] = {}
        while True:
            dead = [] if runtime.stopping else runtime.dead_parts()
            if dead:
                problem = f"{' and '.join(dead)} of worker {self.index} stopped"
                log.error("%s: the worker is dead; exiting so it is replaced", problem)
                runtime.crash(ShoalError(problem))
                return
            # The lag is measured on the consumer thread, which may be busy handing a batch
            # over (back-pressure): the heartbeat never waits for it.
            with contextlib.suppress(ShoalError, TimeoutError):
                lag, highs = await asyncio.wait_for(conductor.lag(), interval)
            beat = Heartbeat(
                at=time.time(),
                received=conductor.stats["received"],
                partitions=pack_tps(conductor.offsets),
                lag=lag,
                highs=pack_offsets(highs),
                recovering=runtime.state.records_left() if runtime.state is not None else 0,
            )
            await link.send(beat)
            await asyncio.sleep(interval)  # the heartbeat's period

"""A worker process of a supervisor: the app's agents on the partitions it is handed.

Started by the supervisor in a fresh interpreter (multiprocessing's ``spawn`` context: the
supervisor runs librdkafka threads and forking a threaded process is unsafe). It connects to
the supervisor's socket, says hello, and from then on fetches only what the supervisor assigns,
hands its done offsets to the supervisor to commit, and proves it is alive with a heartbeat
sent from its own event loop: a stalled loop sends none, and is replaced.
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
from typing import Any

from shoal import logs, metrics
from shoal.app import App
from shoal.exceptions import BrokerError, ShoalError
from shoal.exitcodes import ExitCode
from shoal.ipc import link as channel
from shoal.ipc.link import ChannelClosed, Link
from shoal.kafka import admin
from shoal.types import TP
from shoal.worker.loader import load_app
from shoal.worker.runner import install_event_loop_policy

log = logging.getLogger(__name__)

#: Seconds a worker's graceful stop may take beyond its drain before it gives up and exits.
STOP_GRACE = 10.0


def set_title(title: str) -> None:
    try:
        import setproctitle
    except ImportError:  # optional nicety
        return
    setproctitle.setproctitle(title)


def run(
    app_spec: str,
    index: int,
    socket_path: str,
    log_level: str,
    log_format: str,
    heartbeat_interval: float,
    drain_timeout: float,
) -> None:
    """Entry point of a worker process (the target the supervisor spawns)."""
    # A terminal's Ctrl-C reaches the whole process group: the supervisor decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.setup_logging(log_level, log_format, app_id="-", worker=index)
    set_title(f"shoal worker {index}")
    try:
        app = load_app(app_spec)
        logs.setup_logging(log_level, log_format, app_id=app.id, worker=index)
        # Before the app records anything: the supervisor exported the metrics directory.
        metrics.configure(app_id=app.id, worker=index, enabled=app.conf.metrics_enabled)
    except ShoalError as exc:
        log.error("worker %d cannot load the app: %s", index, exc)
        sys.exit(ExitCode.BOOT_ERROR)
    set_title(f"shoal worker {index} {app.id}")
    install_event_loop_policy()
    session = WorkerSession(app, index, socket_path, heartbeat_interval, drain_timeout)
    sys.exit(asyncio.run(session.run()))


class WorkerSession:
    """The worker's side of the channel, around one App started in assigned mode."""

    def __init__(
        self,
        app: App,
        index: int,
        socket_path: str,
        heartbeat_interval: float,
        drain_timeout: float,
    ) -> None:
        self.app = app
        self.index = index
        self.socket_path = socket_path
        self.heartbeat_interval = heartbeat_interval
        self.drain_timeout = drain_timeout
        self._link: Link | None = None
        self._ids = itertools.count(1)
        self._commits: dict[int, asyncio.Future[bool]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self) -> int:
        reader, writer = await asyncio.open_unix_connection(self.socket_path)
        self._link = link = Link(reader, writer)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.app.request_stop)
        await link.send({"t": channel.HELLO, "index": self.index, "pid": os.getpid()})
        welcome = await link.recv()
        if welcome.get("t") != channel.WELCOME:
            log.error("worker %d: expected a welcome, got %r", self.index, welcome.get("t"))
            return ExitCode.BOOT_ERROR
        # Asks made here are answered through the host's reply topic, read by the supervisor.
        runtime = self.app.runtime
        runtime.asker.use_host(welcome["reply_topic"], str(self.index))
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
        topics = self.app.runtime.subscriptions.topic_names()
        await link.send({"t": channel.READY, "topics": topics})
        serve = loop.create_task(self._serve(link), name="channel")
        beat = loop.create_task(self._heartbeat(link), name="heartbeat")
        clean = True
        try:
            await self.app.wait_stopped()
        finally:
            # Stopping releases every partition and hands the final offsets to the
            # supervisor, which must still be listening: stop the channel after that.
            try:
                async with asyncio.timeout(self.drain_timeout + STOP_GRACE):
                    await self.app.stop()
            except TimeoutError:
                log.error(
                    "worker %d did not stop within %.0f s; exiting anyway (what it did not "
                    "commit is processed again)",
                    self.index,
                    self.drain_timeout + STOP_GRACE,
                )
                clean = False
            for task in (serve, beat, *self._tasks):
                task.cancel()
            await asyncio.gather(serve, beat, *self._tasks, return_exceptions=True)
            link.close()
        if self.app.crashed is not None:
            log.error("worker %d stopped because of: %r", self.index, self.app.crashed)
            return ExitCode.FAILED
        return ExitCode.OK if clean else ExitCode.FAILED

    async def _serve(self, link: Link) -> None:
        while True:
            try:
                message = await link.recv()
            except ChannelClosed:
                log.warning("worker %d lost its supervisor; stopping", self.index)
                self.app.request_stop()
                return
            kind = message["t"]
            if kind == channel.ASSIGN:
                self._spawn(self._assign(channel.unpack_tps(message["tps"])))
            elif kind == channel.REVOKE:
                tps = channel.unpack_tps(message["tps"])
                self._spawn(self._revoke(link, message["id"], tps, message.get("commit", True)))
            elif kind == channel.REPLY:
                futures = self.app.runtime.asker.futures
                if futures is not None:
                    futures.resolve(message["cid"], message["value"], message["error"])
            elif kind == channel.COMMITTED:
                future = self._commits.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(bool(message["ok"]))
            elif kind == channel.STOP:
                self.app.request_stop()
            else:
                log.warning("worker %d: unknown message %r", self.index, kind)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("worker %d: channel handler failed", self.index, exc_info=task.exception())
            self.app.runtime.crash(task.exception())  # type: ignore[arg-type]

    def _reply_to_neighbour(self, route: str, cid: str, value: bytes, error: bytes | None) -> None:
        """A reply for another worker of this host: over the channel, not through Kafka."""
        link = self._link
        if link is not None:
            message = {"t": channel.REPLY, "route": route, "cid": cid, "value": value}
            self._spawn(link.send({**message, "error": error}))

    async def _assign(self, tps: list[TP]) -> None:
        conductor = self.app.conductor
        assert conductor is not None
        await conductor.assign(tps)

    async def _revoke(self, link: Link, request: int, tps: list[TP], commit: bool) -> None:
        conductor = self.app.conductor
        assert conductor is not None
        offsets = await conductor.release(tps, self.drain_timeout, commit=commit)
        await link.send(
            {"t": channel.REVOKED, "id": request, "offsets": channel.pack_offsets(offsets)}
        )

    async def commit(self, offsets: dict[TP, int]) -> bool:
        """The commit target of this worker: the supervisor commits as the group member."""
        link = self._link
        if link is None:
            return False
        request = next(self._ids)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._commits[request] = future
        try:
            await link.send(
                {"t": channel.OFFSETS, "id": request, "offsets": channel.pack_offsets(offsets)}
            )
            return await asyncio.wait_for(future, 30.0)
        except (ChannelClosed, TimeoutError):
            return False
        finally:
            self._commits.pop(request, None)

    async def _heartbeat(self, link: Link) -> None:
        """Prove from this loop, every ``heartbeat_interval``, that the worker is alive: the
        loop runs *and* every thread events need runs. A worker with a dead thread stops
        heartbeating and crashes, so the supervisor replaces it."""
        conductor = self.app.conductor
        assert conductor is not None
        lag: int | None = None
        highs: dict[TP, int] = {}
        while True:
            dead = [] if self.app.runtime.stopping else self.app.dead_parts()
            if dead:
                problem = f"{' and '.join(dead)} of worker {self.index} stopped"
                log.error("%s: the worker is dead; exiting so it is replaced", problem)
                self.app.runtime.crash(ShoalError(problem))
                return
            # The lag is measured on the consumer thread, which may be busy handing a batch
            # over (back-pressure): the heartbeat never waits for it.
            with contextlib.suppress(ShoalError, TimeoutError):
                lag, highs = await asyncio.wait_for(conductor.lag(), self.heartbeat_interval)
            await link.send(
                {
                    "t": channel.HEARTBEAT,
                    "at": time.time(),
                    "received": conductor.stats["received"],
                    "partitions": channel.pack_tps(conductor.offsets),
                    "lag": lag,
                    "highs": channel.pack_offsets(highs),
                }
            )
            await asyncio.sleep(self.heartbeat_interval)  # the heartbeat's period

"""The supervisor: one per host, the host's consumer-group member, keeper of its workers.

Its parts, each in a module of its own: the worker processes (:mod:`pool`), the host's part of
the group (:mod:`group`), each worker's connection (:mod:`hub`), the host's reply topic
(:mod:`replyhub`), ``/metrics`` (:mod:`metrics_server`), the worker count (:mod:`scaling`)
and the control socket (:mod:`control`). What is left here is the loop, the signals, and the
start and stop order. Signal handlers only flag; one loop does the work (gunicorn's arbiter
is the model).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time

from shoal import metrics
from shoal.app import App
from shoal.config import warn_ignored
from shoal.exceptions import ShoalError
from shoal.exitcodes import ExitCode
from shoal.ipc.messages import Message
from shoal.kafka import admin
from shoal.runtime.tasks import Tasks
from shoal.supervisor import control, metrics_server, rundir, scaling
from shoal.supervisor.group import Group
from shoal.supervisor.hosts import HostDirectory
from shoal.supervisor.hub import Hub
from shoal.supervisor.metrics_server import MetricsServer
from shoal.supervisor.pool import Pool
from shoal.supervisor.replyhub import ReplyHub
from shoal.supervisor.status import SupervisorStatus, status_pid, write_status
from shoal.supervisor.webrouter import WebRouter
from shoal.supervisor.webviews import AppViews
from shoal.supervisor.workers import WorkerHandle
from shoal.worker.process import WorkerOptions, set_title

log = logging.getLogger(__name__)

#: The loop's tick: reap, murder, rescale. Samples and the status file come once a second.
TICK = 0.25


class Supervisor:
    """Runs ``workers`` worker processes of ``app`` on this host until told to stop."""

    def __init__(
        self, app: App, app_spec: str, workers: int, *, log_level: str, log_format: str
    ) -> None:
        self.app = app
        self.conf = conf = app.conf
        conf.lock()  # checks the settings together: a bad combination stops it here (exit 3)
        warn_ignored(conf, log)  # once per host: its workers leave it to this process
        #: This supervisor's files in the app's private runtime directory.
        self.files = rundir.RunFiles(app.id, os.getpid())
        options = WorkerOptions(
            app_spec=app_spec,
            socket_path=str(self.files.channel_socket),
            log_level=log_level,
            log_format=log_format,
            heartbeat_interval=conf.worker_heartbeat_interval,
            drain_timeout=conf.worker_drain_timeout,
        )
        self.tasks = Tasks(self._task_failed)
        self.pool = Pool(conf, options, workers, fail=self.fail, send_stop=self._send_stop)
        self.group = Group(conf, app.id, self.pool, self._send)
        self.group.on_failure = self.fail
        self.hub = Hub(self.pool, self.group, self.tasks)
        #: The host's reply topic: read here, each reply routed to the worker that asked.
        self.replies = ReplyHub(app.runtime, self.hub.forward_reply)
        #: The host's web endpoint (/metrics, /status, the app's pages) and its routing.
        self.metrics: MetricsServer | None = None
        self.hosts = HostDirectory(conf, app.id)
        self.router = WebRouter(app.id, self.pool, self.group, self.hub, self.hosts)
        self.started_at = time.time()
        self._stop = asyncio.Event()
        self._exit_code = ExitCode.OK
        self._signals = 0
        self._servers: list[asyncio.AbstractServer] = []

    async def _send(self, handle: WorkerHandle, message: Message) -> bool:
        return await self.hub.send(handle, message)

    async def _send_stop(self, handle: WorkerHandle) -> bool:
        return await self.hub.stop(handle)

    def _task_failed(self, exc: BaseException) -> None:
        self.fail(f"a supervisor task failed: {exc!r}")

    # -- the main loop -----------------------------------------------------------------------

    async def run(self) -> int:
        set_title(f"shoal supervisor {self.app.id}")
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum)
        # gunicorn's convention: TTIN adds a worker, TTOU removes one.
        loop.add_signal_handler(signal.SIGTTIN, self.request_scale, 1)
        loop.add_signal_handler(signal.SIGTTOU, self.request_scale, -1)
        try:
            await self._start()
            if await self.pool.wait_ready(self._stop, boot=True):
                self.group.join()
                await self._watch()
        except (admin.BrokerUnreachable, rundir.RunDirError) as exc:
            self.fail(str(exc), ExitCode.BOOT_ERROR)
        finally:
            await self._shutdown()
        return self._exit_code

    async def _start(self) -> None:
        """Everything before the workers, each step before what needs it: the directory; a
        broker that answers; the host's reply topic (workers are told it when they connect);
        ``/metrics`` (workers inherit its directory); the sockets; then the workers."""
        self.files.create()
        await admin.wait_for_broker(
            self.conf.bootstrap_servers, self.conf.broker_connect_timeout, what="the supervisor"
        )
        await self.replies.start()
        self.hub.reply_topic = self.replies.topic
        conf = self.conf
        metrics_dir = self.files.metrics_dir if conf.metrics_enabled else None
        if conf.web_enabled:
            views = AppViews(self.app, self.router, asyncio.get_running_loop())
            self.metrics = metrics_server.start_for_host(
                conf.web_bind,
                conf.web_port,
                metrics_dir,
                app_id=self.app.id,
                views=views.add_routes,
            )
            self.pool.metrics = self.group.metrics = self.hub.metrics = self.metrics
        elif metrics_dir is not None:  # the workers record; nothing serves it
            metrics.setup_multiprocess(metrics_dir)
        if self.metrics is not None:
            producer = await self.app.runtime.producers.ensure()
            self.hosts.start(conf.web_url(self.metrics.port), producer)
        channel = await asyncio.start_unix_server(self.hub.accept, str(self.files.channel_socket))
        self._servers.append(channel)
        handler = control.handler(self._scale_request)
        self._servers.append(await asyncio.start_unix_server(handler, self.files.control_socket))
        self.files.claim_control()
        log.info(
            "supervisor of app %s (pid %d) starting %d workers",
            self.app.id,
            os.getpid(),
            self.pool.target,
        )
        self.pool.spawn_all()

    async def _watch(self) -> None:
        """Each tick: reap dead workers (replacing them), kill stalled ones, bring the pool to
        its target; each second: sample the workers (recycling fat ones), write the status."""
        next_sample = 0.0
        while not self._stop.is_set():
            self.pool.reap()
            self.pool.kill_stalled()
            await scaling.reconcile(self.pool, self.group, self._stop)
            self.hosts.update(self.router.owned(), self.pool.size)
            if time.monotonic() >= next_sample:
                next_sample = time.monotonic() + 1.0
                await self.pool.sample()
                self._write_status()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), TICK)

    def request_scale(self, delta: int) -> None:
        """SIGTTIN/SIGTTOU: one worker more or fewer; only the target changes here."""
        try:
            scaling.new_target(self.pool, delta=delta)
        except ShoalError as exc:
            log.warning("%s", exc)

    def _scale_request(self, delta: int | None, workers: int | None) -> tuple[int, int]:
        """``clusterctl scale`` over the control socket: a new target."""
        before = scaling.new_target(self.pool, delta=delta, workers=workers)
        return before, self.pool.target

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals > 1 and signum == signal.SIGINT:
            log.warning("second SIGINT: killing the workers and exiting now")
            self.pool.kill_all()
            os._exit(ExitCode.FAILED)
        log.info("%s: stopping gracefully", signal.Signals(signum).name)
        self._stop.set()

    def fail(self, message: str, code: int = ExitCode.FAILED) -> None:
        log.error("%s", message)
        self._exit_code = ExitCode(code)
        self._stop.set()

    # -- stopping ----------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Drain and commit while still a member, leave the group, stop the workers (killing
        what outlives ``worker_shutdown_timeout``), then everything _start made, in reverse.
        Bounded however the broker is, and safe after a start that failed half-way."""
        deadline = time.monotonic() + self.conf.worker_shutdown_timeout

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        self.pool.stopping = True
        if self.group.member is not None:
            try:
                async with asyncio.timeout(left()):
                    await self.group.hand_back()
            except TimeoutError:
                # The broker is away, say: what was not committed is processed again.
                log.error(
                    "the final drain and commit did not finish within worker_shutdown_timeout"
                    "=%.0f s; stopping anyway",
                    self.conf.worker_shutdown_timeout,
                )
                self._exit_code = self._exit_code or ExitCode.FAILED
            await self.group.leave(left())
        await self.hosts.stop()
        if not await self.pool.stop(deadline):
            self._exit_code = self._exit_code or ExitCode.FAILED  # a worker had to be killed
        for server in self._servers:
            server.close()
        await self.tasks.cancel_all()
        # What is left is cleaning up: brief, even with the broker away.
        cleanup = min(left(), 5.0)
        if self.replies.started:
            await self.replies.stop(cleanup)
        await self.app.stop(flush_timeout=cleanup)
        if self.metrics is not None:
            self.metrics.stop()
        if self.conf.metrics_enabled:
            metrics.teardown_multiprocess(self.files.metrics_dir)
        self.files.remove(status_pid)
        log.info("supervisor stopped")

    def _write_status(self) -> None:
        status = SupervisorStatus(
            app_id=self.app.id,
            pid=os.getpid(),
            started_at=self.started_at,
            workers=[handle.status() for handle in self.pool.handles],
            group_partitions=len(self.group.owned),
        )
        if self.metrics is not None:
            self.metrics.publish(status)
        try:
            write_status(self.files.status_file, status)
        except OSError as exc:
            log.debug("cannot write the status file: %s", exc)

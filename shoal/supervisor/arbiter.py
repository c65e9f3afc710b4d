"""The supervisor: one per host, the host's consumer-group member, keeper of its workers.

It never processes events. It joins the app's consumer group and pauses what it is given,
hands partition N of every topic to worker ``N % workers`` over the local channel, commits
the offsets its workers report (as the group member), and on a rebalance asks the owning
workers to drain and report their final offsets before it lets the partitions go. A worker
that dies is replaced at once with the same partitions, from the last committed offsets: a
local event, not a group-wide rebalance.

Signal handlers only flag; one loop does the work (gunicorn's arbiter is the model).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import time
from collections.abc import Coroutine
from typing import Any

from shoal import metrics
from shoal.app import App
from shoal.exceptions import ShoalError
from shoal.exitcodes import ExitCode
from shoal.ipc import link as channel
from shoal.ipc.link import BadFrame, ChannelClosed, Link
from shoal.kafka import admin
from shoal.kafka.clients import consumer_config
from shoal.kafka.member import GroupMember
from shoal.supervisor import control, metrics_server, rundir
from shoal.supervisor.assignment import moves, plan
from shoal.supervisor.backoff import RestartBackoff
from shoal.supervisor.metrics_server import MetricsServer
from shoal.supervisor.replyhub import ReplyHub
from shoal.supervisor.status import (
    ProcessSampler,
    SupervisorStatus,
    read_status,
    write_status,
)
from shoal.supervisor.workers import WorkerHandle, WorkerOptions
from shoal.types import TP
from shoal.worker.process import set_title

log = logging.getLogger(__name__)

#: Unix socket paths are limited to about 108 bytes.
MAX_SOCKET_PATH = 100
#: How long a commit for a worker may wait for the broker's answer; the worker retries.
COMMIT_TIMEOUT = 30.0


class Supervisor:
    """Runs ``workers`` worker processes of ``app`` on this host until told to stop."""

    def __init__(
        self, app: App, app_spec: str, workers: int, *, log_level: str, log_format: str
    ) -> None:
        self.app = app
        self.conf = app.conf
        self.workers = workers
        #: The app's private runtime directory: status file, sockets, metrics files.
        self._dir = rundir.app_dir(app.id)
        pid = os.getpid()
        self.options = WorkerOptions(
            app_spec=app_spec,
            socket_path=str(self._dir / f"channel-{pid}.sock"),
            log_level=log_level,
            log_format=log_format,
            heartbeat_interval=self.conf.worker_heartbeat_interval,
            drain_timeout=self.conf.worker_drain_timeout,
        )
        self._control_path = control.socket_path(self._dir)
        for path in (self.options.socket_path, str(self._control_path)):
            if len(path) > MAX_SOCKET_PATH:
                raise ShoalError(
                    f"the socket path {path} is too long for a Unix socket: set "
                    "XDG_RUNTIME_DIR or TMPDIR to a shorter directory, or use a shorter app id"
                )
        self.handles = [self._new_handle(i) for i in range(workers)]
        self.sampler = ProcessSampler()
        self.status_file = self._dir / "status.json"
        self.started_at = time.time()
        self.owned: set[TP] = set()
        #: Topics the workers read (they say so in their hello): what the group subscribes.
        self._topics: set[str] = set()
        self._group: GroupMember | None = None
        self._ids = itertools.count(1)
        self._revocations: dict[int, asyncio.Future[dict[TP, int]]] = {}
        self._revoked_over: dict[int, Link] = {}  # request -> the link it went over
        self._stop = asyncio.Event()
        self._layout_lock = asyncio.Lock()  # group callbacks and rescaling move partitions
        self._scale_requests: list[int] = []
        self._leaving = False  # stopping: drained, so new partitions are not handed out
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The host's reply topic: read here, each reply routed to the worker that asked.
        self.replies = ReplyHub(app.runtime, self._forward_reply)
        self.metrics: MetricsServer | None = None
        self._metrics_dir = self._dir / f"metrics-{pid}"
        self._exit_code = ExitCode.OK
        self._signals = 0
        self._servers: list[asyncio.AbstractServer] = []
        self._control_ino = -1

    def _new_handle(self, index: int) -> WorkerHandle:
        return WorkerHandle(
            index,
            backoff=RestartBackoff(
                self.conf.worker_restart_backoff_max, self.conf.worker_restart_backoff_reset
            ),
        )

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
            if await self._wait_for_hellos():
                await self._join_group()
                await self._watch()
        except (admin.BrokerUnreachable, rundir.RunDirError) as exc:
            self.fail(str(exc), ExitCode.BOOT_ERROR)
        finally:
            await self._shutdown()
        return self._exit_code

    async def _start(self) -> None:
        """Everything before the workers: the broker answers, the host's reply topic, the
        metrics endpoint, the channel and control sockets; then the workers."""
        rundir.app_dir(self.app.id, create=True)
        await admin.wait_for_broker(
            self.conf.bootstrap_servers, self.conf.broker_connect_timeout, what="the supervisor"
        )
        await self.replies.start()
        if self.conf.metrics_enabled:
            self.metrics = metrics_server.start_for_host(
                self.conf.metrics_host,
                self.conf.metrics_port,
                self._metrics_dir,
                app_id=self.app.id,
            )
        self._servers.append(
            await asyncio.start_unix_server(self._accept, self.options.socket_path)
        )
        with contextlib.suppress(FileNotFoundError):
            self._control_path.unlink()  # left by a supervisor that was killed
        self._servers.append(
            await asyncio.start_unix_server(
                control.handler(self._scale_request), str(self._control_path)
            )
        )
        self._control_ino = self._control_path.stat().st_ino
        log.info(
            "supervisor of app %s (pid %d) starting %d workers",
            self.app.id,
            os.getpid(),
            self.workers,
        )
        for handle in self.handles:
            self._spawn(handle)

    async def _join_group(self) -> None:
        topics = sorted(self._topics)
        self._group = GroupMember(
            consumer_config(self.conf, f"shoal-{self.app.id}", self.app.id),
            topics,
            on_assign=self._on_group_assign,
            on_revoke=self._on_group_revoke,
            on_lost=self._on_group_lost,
            paused=True,
            on_batch=_never,
            on_error=self._on_group_error,
            # It fetches nothing (all paused): polls only serve the group and the workers'
            # commits, which wait for the next one, so they are short.
            poll_timeout=0.02,
        )
        self._group.start()
        log.info("joined group %s for %s", self.app.id, ", ".join(topics))

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals > 1 and signum == signal.SIGINT:
            log.warning("second SIGINT: killing the workers and exiting now")
            for handle in self.handles:
                handle.kill()
            os._exit(ExitCode.FAILED)
        log.info("%s: stopping gracefully", signal.Signals(signum).name)
        self._stop.set()

    def fail(self, message: str, code: int = ExitCode.FAILED) -> None:
        log.error("%s", message)
        self._exit_code = ExitCode(code)
        self._stop.set()

    async def _wait_for_hellos(self, *, boot: bool = True) -> bool:
        """Wait until every worker said it is ready. At boot, workers that do not within
        120 s stop the supervisor; when scaling, the partitions move on anyway (a late
        worker is handed its share when it connects)."""
        deadline = time.monotonic() + 120
        while not all(h.hello.is_set() for h in self.handles):
            if self._stop.is_set():
                return False
            self._reap()
            if self._stop.is_set():
                return False
            if time.monotonic() > deadline:
                if boot:
                    self.fail("workers did not start within 120 s; see their logs above")
                else:
                    log.warning("new workers did not start within 120 s; see their logs above")
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.05)
        return True

    async def _watch(self) -> None:
        """Each tick: reap dead workers, start those whose backoff ended, kill stalled ones;
        each second: recycle fat ones, write the status file."""
        stall = self.conf.worker_stall_timeout
        next_sample = 0.0
        while not self._stop.is_set():
            self._reap()
            now = time.monotonic()
            for handle in self.handles:
                watched = handle.alive() and not handle.stopping and handle.hello.is_set()
                if watched and now - handle.last_heartbeat > stall:
                    log.error(
                        "worker %d (pid %d) sent no heartbeat for %.0f s: its loop is "
                        "stuck; killing it",
                        handle.index,
                        handle.pid,
                        now - handle.last_heartbeat,
                    )
                    handle.cause = "stall"
                    handle.kill()
            while self._scale_requests and not self._stop.is_set():
                await self._rescale(self._scale_requests.pop(0))
            if now >= next_sample:
                next_sample = now + 1.0
                await self._sample()
                self._write_status()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.25)

    async def _sample(self) -> None:
        """Memory and CPU of every worker (psutil), and recycle those over the limit."""
        max_rss = self.conf.worker_max_memory_mb * 1024 * 1024
        for handle in self.handles:
            if handle.alive():
                handle.backoff.running(handle.started_mono)
            sample = self.sampler.sample(handle.pid) if handle.alive() else None
            handle.rss, handle.cpu = sample if sample is not None else (0, 0.0)
            if self.metrics is not None:
                self.metrics.supervisor.worker_sample(
                    handle.index,
                    rss_bytes=handle.rss,
                    cpu_percent=handle.cpu,
                    partitions=len(handle.partitions),
                    crash_streak=handle.backoff.streak,
                    backoff_seconds=handle.restart_in or 0.0,
                )
            if max_rss and handle.rss > max_rss and not handle.stopping:
                log.warning(
                    "worker %d (pid %d) uses %.0f MiB, over worker_max_memory_mb=%d: recycling it",
                    handle.index,
                    handle.pid,
                    handle.rss / 2**20,
                    self.conf.worker_max_memory_mb,
                )
                handle.cause = "memory"
                handle.stopping = True
                await self._send(handle, {"t": channel.STOP})

    # -- processes ---------------------------------------------------------------------------

    def _spawn(self, handle: WorkerHandle) -> None:
        handle.start(self.options)
        log.info("started worker %d (pid %d)", handle.index, handle.pid)

    def _reap(self) -> None:
        """Replace workers that exited (at once, or when their backoff ends); stop the
        supervisor when restarting cannot help."""
        now = time.monotonic()
        for handle in self.handles:
            if handle.restart_at is not None and now >= handle.restart_at and not handle.stopping:
                self._spawn(handle)
        # Slots past the worker count were scaled down: drop them once they exited.
        while len(self.handles) > self.workers and not self.handles[-1].alive():
            if self.handles[-1].process is not None:
                self.handles[-1].process.join(1)
            gone = self.handles.pop()
            if self.metrics is not None:
                self.metrics.supervisor.forget_worker(gone.index)
        for handle in self.handles:
            process = handle.process
            if process is None or process.is_alive():
                continue
            code = process.exitcode
            handle.process = None
            self.sampler.forget(process.pid)
            if self.metrics is not None:
                self.metrics.worker_exited(process.pid)
            if self._stop.is_set():
                continue
            if code == ExitCode.BOOT_ERROR:
                self.fail(
                    f"worker {handle.index} could not load or start the app (exit code "
                    f"{code}); see its error above. Not restarting.",
                    ExitCode.BOOT_ERROR,
                )
                return
            cause = handle.cause or ("exit 0" if code == 0 else "crash")
            handle.cause = ""
            delay = 0.0
            if cause in ("crash", "stall"):
                # A crash-looping slot backs off; its siblings run on untouched.
                delay = handle.backoff.crashed(handle.started_mono)
                when = (
                    f"in {delay:.1f} s ({handle.backoff.streak} crashes in a row)"
                    if delay
                    else "now"
                )
                log.error(
                    "worker %d (pid %d) died (%s, exit code %s); restarting it %s",
                    handle.index,
                    process.pid,
                    cause,
                    code,
                    when,
                )
            else:
                log.info(
                    "worker %d (pid %d) exited (%s); replacing it", handle.index, process.pid, cause
                )
            handle.restarts += 1
            if self.metrics is not None:
                self.metrics.supervisor.worker_restarted(handle.index, cause)
            if delay:
                handle.restart_at = time.monotonic() + delay
            else:
                self._spawn(handle)

    # -- the channel -------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = Link(reader, writer)
        handle: WorkerHandle | None = None
        try:
            hello = await link.recv()
            index, pid = hello.get("index"), hello.get("pid")
            if (
                hello["t"] != channel.HELLO
                or not isinstance(index, int)
                or not 0 <= index < len(self.handles)
                or self.handles[index].pid != pid
            ):
                raise BadFrame(f"not the hello of a worker of this supervisor: {hello!r}"[:200])
            handle = self.handles[index]
            handle.link = link
            handle.last_heartbeat = time.monotonic()
            await link.send({"t": channel.WELCOME, "reply_topic": self.replies.topic})
            ready = await link.recv()
            if ready["t"] != channel.READY:
                raise BadFrame(f"worker {index} sent {ready['t']!r} instead of ready")
            self._topics.update(ready.get("topics", []))
            handle.last_heartbeat = time.monotonic()
            handle.hello.set()
            log.info("worker %d (pid %d) is ready", handle.index, pid)
            if handle.partitions:
                # A replacement: the same partitions, from the last committed offsets.
                await self._send(
                    handle, {"t": channel.ASSIGN, "tps": channel.pack_tps(handle.partitions)}
                )
            while True:
                self._on_message(handle, await link.recv())
        except BadFrame as exc:
            log.warning("channel socket: closed a connection that sent %s", exc)
        except ChannelClosed:
            pass
        finally:
            link.close()
            if handle is not None and handle.link is link:
                handle.link = None
            self._abandon_revocations(link)

    def _on_message(self, handle: WorkerHandle, message: dict[str, Any]) -> None:
        """Handle one message; never waits, so a slow commit cannot hold up an answer to a
        revocation (the group's callback waits for that answer, and commits wait for it)."""
        kind = message["t"]
        if kind == channel.HEARTBEAT:
            handle.heartbeat(int(message.get("received", 0)), message.get("lag"))
            if self.metrics is not None and message.get("highs"):
                highs = channel.unpack_offsets(message["highs"])
                self.metrics.supervisor.high_watermarks(handle.index, highs)
        elif kind == channel.OFFSETS:
            self._background(self._commit_and_answer(handle, message))
        elif kind == channel.REVOKED:
            future = self._revocations.pop(int(message["id"]), None)
            if future is not None and not future.done():
                future.set_result(channel.unpack_offsets(message["offsets"]))
        elif kind == channel.REPLY:
            self._forward_reply(
                message["route"], message["cid"], message["value"], message["error"]
            )

    async def _commit_and_answer(self, handle: WorkerHandle, message: dict[str, Any]) -> None:
        ok = await self._commit_for(handle, channel.unpack_offsets(message["offsets"]))
        await self._send(handle, {"t": channel.COMMITTED, "id": message["id"], "ok": ok})

    def _forward_reply(
        self, route: str, cid: str, value: bytes | None, error: bytes | None
    ) -> None:
        """A reply for one of this host's workers (from the host's reply topic, or from a
        neighbour worker over the channel): hand it to the worker that asked."""
        index = int(route) if route.isdigit() else -1
        if not 0 <= index < len(self.handles) or self.handles[index].link is None:
            self.replies.count_late()
            return
        message = {"t": channel.REPLY, "cid": cid, "value": value, "error": error}
        self._background(self._send(self.handles[index], message))

    def _background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, handle: WorkerHandle, message: dict[str, Any]) -> bool:
        if handle.link is None:
            return False
        try:
            await handle.link.send(message)
        except ChannelClosed:
            return False
        return True

    async def _commit_for(self, handle: WorkerHandle, offsets: dict[TP, int]) -> bool:
        # Only what the worker still owns: a late report must not move back an offset that
        # the partition's next owner has committed since.
        mine = {tp: o for tp, o in offsets.items() if tp in handle.partitions}
        if not mine or self._group is None:
            return not offsets
        try:
            await asyncio.wait_for(self._group.commit(mine), COMMIT_TIMEOUT)
        except (ShoalError, TimeoutError) as exc:
            why = str(exc) or f"no answer within {COMMIT_TIMEOUT:g} s"
            log.warning("commit for worker %d failed (retried next round): %s", handle.index, why)
            return False
        if self.metrics is not None:
            self.metrics.supervisor.committed(mine)
        return True

    # -- the group ---------------------------------------------------------------------------

    async def _on_group_assign(self, tps: list[TP]) -> None:
        if self.metrics is not None:
            self.metrics.supervisor.rebalance("assign")
        async with self._layout_lock:
            self.owned.update(tps)
            if self._leaving:  # they go to the next owner when this member leaves
                return
            layout = plan(self.owned, self.workers)
            for handle in self.handles[: self.workers]:
                new = layout[handle.index] - handle.partitions
                handle.partitions = set(layout[handle.index])
                if new:
                    await self._send(handle, {"t": channel.ASSIGN, "tps": channel.pack_tps(new)})
        log.info("this host owns %d partitions over %d workers", len(self.owned), self.workers)

    async def _on_group_revoke(self, tps: list[TP]) -> dict[TP, int]:
        """Ask each owning worker to drain and report; their final offsets get committed."""
        gone = set(tps)
        if self.metrics is not None:
            self.metrics.supervisor.rebalance("revoke")
            self.metrics.supervisor.forget_partitions(gone)
        async with self._layout_lock:
            final = await self._take_back(
                {h.index: h.partitions & gone for h in self.handles if h.partitions & gone}
            )
            self.owned -= gone
        return final

    async def _on_group_lost(self, tps: list[TP]) -> None:
        """The group went on without this member (its session expired while the broker was
        away): the workers stop those partitions at once, nothing is committed (their new
        owner may have moved on), and the rejoin assigns afresh from the committed offsets."""
        gone = set(tps)
        if self.metrics is not None:
            self.metrics.supervisor.rebalance("lost")
            self.metrics.supervisor.forget_partitions(gone)
        async with self._layout_lock:
            await self._take_back(
                {h.index: h.partitions & gone for h in self.handles if h.partitions & gone},
                commit=False,
            )
            self.owned -= gone

    async def _take_back(
        self, per_worker: dict[int, set[TP]], *, commit: bool = True
    ) -> dict[TP, int]:
        """Revoke partitions from workers; returns the final offsets they reported."""
        waits: list[asyncio.Future[dict[TP, int]]] = []
        requests: list[int] = []
        for index, theirs in per_worker.items():
            handle = self.handles[index]
            handle.partitions -= theirs
            request = next(self._ids)
            requests.append(request)
            future: asyncio.Future[dict[TP, int]] = asyncio.get_running_loop().create_future()
            self._revocations[request] = future  # before sending: the answer may be quick
            if handle.link is not None:
                self._revoked_over[request] = handle.link
            message = {
                "t": channel.REVOKE,
                "id": request,
                "tps": channel.pack_tps(theirs),
                "commit": commit,
            }
            if await self._send(handle, message):
                waits.append(future)
            else:
                self._revocations.pop(request, None)
        final: dict[TP, int] = {}
        if waits:
            done, pending = await asyncio.wait(waits, timeout=self.conf.worker_drain_timeout + 10)
            wanted = set().union(*per_worker.values())
            for future in done:
                final.update({tp: o for tp, o in future.result().items() if tp in wanted})
            if pending:
                log.error("%d workers did not report their final offsets in time", len(pending))
        for request in requests:
            self._revocations.pop(request, None)
            self._revoked_over.pop(request, None)
        return final

    def _abandon_revocations(self, link: Link) -> None:
        """A worker that died while draining reports nothing: stop waiting for it (the group
        waits too), and let its partitions resume from the last committed offsets."""
        for request in [r for r, over in self._revoked_over.items() if over is link]:
            del self._revoked_over[request]
            future = self._revocations.pop(request, None)
            if future is not None and not future.done():
                future.set_result({})

    # -- scaling -----------------------------------------------------------------------------

    def request_scale(self, delta: int) -> None:
        """Add (+1) or remove (-1) a worker; called from signal handlers, so it only flags."""
        self._scale_requests.append(delta)

    def _scale_request(self, delta: int | None, workers: int | None) -> tuple[int, int]:
        """``clusterctl scale`` over the control socket: queue the single steps from the
        target already asked for to ``workers``, or ``delta`` more."""
        current = self.workers + sum(self._scale_requests)
        target = workers if workers is not None else current + (delta or 0)
        if target < 1:
            raise ShoalError(f"a supervisor keeps at least one worker (asked for {target})")
        step = 1 if target > current else -1
        self._scale_requests.extend([step] * abs(target - current))
        return current, target

    async def _rescale(self, delta: int) -> None:
        """Change the number of workers on this host and move partitions locally:
        revoke from the old owners (drain, report, commit), then assign to the new ones."""
        target = self.workers + delta
        if self.metrics is not None:
            self.metrics.supervisor.rebalance("scale")
        if target < 1:
            log.warning("cannot scale below one worker")
            return
        log.info("scaling from %d to %d workers", self.workers, target)
        async with self._layout_lock:
            if delta > 0:
                for index in range(self.workers, target):
                    handle = self._new_handle(index)
                    self.handles.append(handle)
                    self._spawn(handle)
                await self._wait_for_hellos(boot=False)
            old = {h.index: set(h.partitions) for h in self.handles}
            new = plan(self.owned, target)
            to_revoke, to_assign = moves(old, new)
            final = await self._take_back(to_revoke)
        # The commit needs the group consumer's thread, which a group revocation may hold
        # while it waits for the lock: commit outside it. Offsets of partitions the group
        # revoked meanwhile are left out by the commit itself.
        if final and self._group is not None:
            try:
                await asyncio.wait_for(self._group.commit(final), COMMIT_TIMEOUT)
            except (ShoalError, TimeoutError) as exc:
                log.warning("commit after rescaling failed; those events repeat: %r", exc)
        async with self._layout_lock:
            self.workers = target
            for index, tps in to_assign.items():
                still_ours = tps & self.owned
                if not still_ours:
                    continue
                handle = self.handles[index]
                handle.partitions |= still_ours
                message = {"t": channel.ASSIGN, "tps": channel.pack_tps(still_ours)}
                await self._send(handle, message)
            for handle in self.handles[target:]:
                handle.stopping = True
                handle.restart_at = None  # one backing off is not started again
                handle.cause = "scaled down"
                await self._send(handle, {"t": channel.STOP})
        log.info("scaled to %d workers; %d partitions on this host", target, len(self.owned))

    def _on_group_error(self, text: str) -> None:
        log.error("group consumer: %s", text)
        if self._group is not None and self._group.failure is not None:
            self.fail(f"the group consumer failed: {text}")

    # -- stopping ----------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Drain and commit while still a member, leave the group, stop the workers (killing
        what outlives ``worker_shutdown_timeout``), then everything _start made, in reverse.
        Safe after a start that failed half-way."""
        deadline = time.monotonic() + self.conf.worker_shutdown_timeout

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        if self._group is not None:
            try:
                async with asyncio.timeout(left()):
                    await self._hand_back()
            except TimeoutError:
                # The broker is away, say: what was not committed is processed again.
                log.error(
                    "the final drain and commit did not finish within worker_shutdown_timeout"
                    "=%.0f s; stopping anyway",
                    self.conf.worker_shutdown_timeout,
                )
                self._exit_code = self._exit_code or ExitCode.FAILED
            # Leaving the group revokes what is left (nothing, unless the drain failed).
            await self._group.stop(left())
        for handle in self.handles:
            handle.stopping = True
            handle.restart_at = None
            if not await self._send(handle, {"t": channel.STOP}):
                handle.signal(signal.SIGTERM)
        while any(h.alive() for h in self.handles) and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.Event().wait(), 0.05)
        for handle in self.handles:
            if handle.alive():
                log.error("worker %d did not stop in time; killing it", handle.index)
                handle.kill()
                self._exit_code = self._exit_code or ExitCode.FAILED  # not a clean stop
            if handle.process is not None:
                handle.process.join(5)
        for server in self._servers:
            server.close()
        # What is left is cleaning up: brief, even with the broker away.
        cleanup = min(left(), 5.0)
        if self.replies.started:
            await self.replies.stop(cleanup)
        await self.app.stop(flush_timeout=cleanup)
        if self.metrics is not None:
            self.metrics.stop()
        if self.conf.metrics_enabled:
            metrics.teardown_multiprocess(self._metrics_dir)
        self._remove_runtime_files()
        log.info("supervisor stopped")

    def _remove_runtime_files(self) -> None:
        """What this supervisor made in the runtime directory; the status file and control
        socket only while they are still its own (a second supervisor of the app on this
        host may have taken them over)."""
        with contextlib.suppress(OSError):
            os.unlink(self.options.socket_path)
        with contextlib.suppress(OSError, ShoalError):
            if read_status(self.status_file).pid == os.getpid():
                self.status_file.unlink()
        with contextlib.suppress(OSError):
            if self._control_path.stat().st_ino == self._control_ino:
                self._control_path.unlink()
        with contextlib.suppress(OSError):
            self._dir.rmdir()  # when nothing of another supervisor of the app is left in it

    async def _hand_back(self) -> None:
        """Drain every worker and commit their final offsets while still a live member.

        librdkafka stops heartbeating once close() starts, so a drain inside the revoke
        callback that close() runs has only what is left of the session timeout: a slow
        one lost its commit (UNKNOWN_MEMBER_ID) and the next owner did the work again.
        """
        assert self._group is not None
        async with self._layout_lock:
            self._leaving = True
            final = await self._take_back(
                {h.index: set(h.partitions) for h in self.handles if h.partitions}
            )
        try:
            await self._group.commit(final)
        except ShoalError as exc:
            log.warning("final commit failed; the next owner repeats those events: %s", exc)

    # -- status ------------------------------------------------------------------------------

    def _write_status(self) -> None:
        status = SupervisorStatus(
            app_id=self.app.id,
            pid=os.getpid(),
            started_at=self.started_at,
            workers=[handle.status() for handle in self.handles],
            group_partitions=len(self.owned),
        )
        try:
            write_status(self.status_file, status)
        except OSError as exc:
            log.debug("cannot write the status file: %s", exc)


async def _never(batch: Any) -> None:
    raise AssertionError("the supervisor's consumer pauses everything; it fetches nothing")

"""The worker processes of one host, in gunicorn's verbs: spawn, reap, murder, manage.

- **spawn**: a slot starts a worker process (:class:`~shoal.supervisor.workers.WorkerHandle`).
- **reap**: a worker that exited is replaced in its slot, with the same partitions; a slot that
  keeps crashing backs off (its siblings run on); a worker that cannot boot (exit code 3)
  stops the supervisor instead of a restart loop.
- **murder**: a worker silent for ``worker_stall_timeout`` is killed (and reaped as a stall).
- **recycle**: a worker over ``worker_max_memory_mb`` is told to stop (it drains and hands its
  partitions over) and replaced.
- **target**: SIGTTIN/SIGTTOU and ``clusterctl scale`` change only :attr:`Pool.target`; the
  supervisor's loop brings the pool to it (moving partitions is the group's part).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from shoal.config import Settings
from shoal.exitcodes import ExitCode
from shoal.supervisor.backoff import RestartBackoff
from shoal.supervisor.metrics_server import MetricsServer
from shoal.supervisor.status import ProcessSampler
from shoal.supervisor.workers import Cause, WorkerHandle
from shoal.worker.process import WorkerOptions

log = logging.getLogger(__name__)

#: How long workers may take to say they are ready.
BOOT_TIMEOUT = 120.0


class Pool:
    """See the module docstring."""

    def __init__(
        self,
        conf: Settings,
        options: WorkerOptions,
        count: int,
        *,
        fail: Callable[[str, int], None],
        send_stop: Callable[[WorkerHandle], Awaitable[bool]],
        handle_type: type[WorkerHandle] = WorkerHandle,
    ) -> None:
        self._conf = conf
        self._handle_type = handle_type  # a test hands in slots without processes
        self._options = options
        self._fail = fail
        self._send_stop = send_stop
        self.handles = [self._new_handle(i) for i in range(count)]
        #: The number of workers asked for; :meth:`grow` and :meth:`retire` follow it.
        self.target = count
        self.sampler = ProcessSampler()
        self.metrics: MetricsServer | None = None
        self.stopping = False

    def _new_handle(self, index: int) -> WorkerHandle:
        backoff = RestartBackoff(
            self._conf.worker_restart_backoff_max, self._conf.worker_restart_backoff_reset
        )
        return self._handle_type(index, backoff=backoff)

    @property
    def size(self) -> int:
        """Slots that are not being retired."""
        return sum(not h.retired for h in self.handles)

    # -- spawn -------------------------------------------------------------------------------

    def spawn(self, handle: WorkerHandle) -> None:
        handle.start(self._options)
        log.info("started worker %d (pid %d)", handle.index, handle.pid)

    def spawn_all(self) -> None:
        for handle in self.handles:
            self.spawn(handle)

    def grow(self, count: int) -> list[WorkerHandle]:
        """Add slots up to ``count`` workers, and start them."""
        new = [self._new_handle(i) for i in range(len(self.handles), count)]
        self.handles.extend(new)
        for handle in new:
            self.spawn(handle)
        return new

    async def retire(self, count: int) -> None:
        """Stop the slots past ``count`` (after the group took their partitions back)."""
        for handle in self.handles[count:]:
            handle.stopping = True
            handle.retired = True
            handle.restart_at = None  # one backing off is not started again
            handle.cause = Cause.SCALED_DOWN
            await self._send_stop(handle)

    async def wait_ready(self, stop: asyncio.Event, *, boot: bool) -> bool:
        """Wait until every worker said it is ready. At boot, workers that do not within
        ``BOOT_TIMEOUT`` stop the supervisor; when scaling, the partitions move on anyway
        (a late worker is handed its share when it connects)."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        while not all(h.ready.is_set() for h in self.handles if not h.retired):
            self.reap()
            if stop.is_set():
                return False
            if time.monotonic() > deadline:
                if boot:
                    self._fail("workers did not start within 120 s; see their logs above", 1)
                else:
                    log.warning("new workers did not start within 120 s; see their logs above")
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
        return True

    # -- reap --------------------------------------------------------------------------------

    def reap(self) -> None:
        """Replace workers that exited (at once, or when their backoff ends); stop the
        supervisor when restarting cannot help."""
        now = time.monotonic()
        for handle in self.handles:
            if handle.restart_at is not None and now >= handle.restart_at and not handle.stopping:
                self.spawn(handle)
        # Retired slots go once their process exited.
        while self.handles and self.handles[-1].retired and not self.handles[-1].alive():
            gone = self.handles.pop()
            gone.join()
            if self.metrics is not None:
                self.metrics.supervisor.forget_worker(gone.index)
        for handle in self.handles:
            if handle.process is None or handle.alive():
                continue
            pid, code = handle.pid, handle.exitcode
            handle.process = None
            self.sampler.forget(pid)
            if self.metrics is not None:
                self.metrics.worker_exited(pid)
            if self.stopping:
                continue
            if code == ExitCode.BOOT_ERROR:
                self._fail(
                    f"worker {handle.index} could not load or start the app (exit code "
                    f"{code}); see its error above. Not restarting.",
                    ExitCode.BOOT_ERROR,
                )
                return
            self._replace(handle, pid, code)

    def _replace(self, handle: WorkerHandle, pid: int, code: int | None) -> None:
        cause = handle.cause or (Cause.EXIT if code == 0 else Cause.CRASH)
        handle.cause = None
        delay = 0.0
        if cause in (Cause.CRASH, Cause.STALL):
            # A crash-looping slot backs off; its siblings run on untouched.
            delay = handle.backoff.crashed(handle.started_mono)
            streak = handle.backoff.streak
            when = f"in {delay:.1f} s ({streak} crashes in a row)" if delay else "now"
            log.error(
                "worker %d (pid %d) died (%s, exit code %s); restarting it %s",
                handle.index,
                pid,
                cause,
                code,
                when,
            )
        else:
            log.info("worker %d (pid %d) exited (%s); replacing it", handle.index, pid, cause)
        handle.restarts += 1
        if self.metrics is not None:
            self.metrics.supervisor.worker_restarted(handle.index, cause)
        if delay:
            handle.restart_at = time.monotonic() + delay
        else:
            self.spawn(handle)

    # -- murder and recycle ------------------------------------------------------------------

    def kill_stalled(self) -> None:
        """A worker whose loop sent no heartbeat for ``worker_stall_timeout`` is stuck."""
        now = time.monotonic()
        stall = self._conf.worker_stall_timeout
        for handle in self.handles:
            watched = handle.alive() and not handle.stopping and handle.ready.is_set()
            if watched and now - handle.last_heartbeat > stall:
                log.error(
                    "worker %d (pid %d) sent no heartbeat for %.0f s: its loop is stuck; "
                    "killing it",
                    handle.index,
                    handle.pid,
                    now - handle.last_heartbeat,
                )
                handle.cause = Cause.STALL
                handle.kill()

    async def sample(self) -> None:
        """Memory and CPU of every worker (psutil), and recycle those over the limit."""
        max_rss = self._conf.worker_max_memory_mb * 1024 * 1024
        for handle in self.handles:
            alive = handle.alive()
            if alive:
                handle.backoff.running(handle.started_mono)
            sample = self.sampler.sample(handle.pid) if alive else None
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
                    self._conf.worker_max_memory_mb,
                )
                handle.cause = Cause.MEMORY
                handle.stopping = True
                await self._send_stop(handle)

    # -- stopping ----------------------------------------------------------------------------

    async def stop(self, deadline: float) -> bool:
        """Tell every worker to stop; kill what is left at ``deadline``. False when a worker
        had to be killed (not a clean stop)."""
        self.stopping = True
        for handle in self.handles:
            handle.stopping = True
            handle.restart_at = None
            if not await self._send_stop(handle):
                handle.terminate()
        while any(h.alive() for h in self.handles) and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.Event().wait(), 0.05)
        clean = True
        for handle in self.handles:
            if handle.alive():
                log.error("worker %d did not stop in time; killing it", handle.index)
                handle.kill()
                clean = False
            handle.join()
        return clean

    def kill_all(self) -> None:
        for handle in self.handles:
            handle.kill()

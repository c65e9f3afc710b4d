"""Worker processes as the supervisor sees them: a slot, its process, its channel link.

The only place that starts a child process. Workers start from a fresh interpreter (the spawn
context), never forked from the supervisor, whose librdkafka threads would be copied half-way
through whatever they were doing. A worker process is an ``aiomultiprocess.Process``: one
coroutine (:func:`shoal.worker.process.main`) on its own event loop (uvloop), and an exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from enum import StrEnum

import aiomultiprocess
from aiomultiprocess.types import Unit

from shoal.ipc.link import Link
from shoal.supervisor.backoff import RestartBackoff
from shoal.supervisor.status import WorkerStatus, partition_label
from shoal.types import TP
from shoal.worker import process as worker_process
from shoal.worker.process import WorkerOptions


class Cause(StrEnum):
    """Why a worker's process was replaced (the ``cause`` label of its restarts metric)."""

    CRASH = "crash"
    STALL = "stall"
    MEMORY = "memory"
    SCALED_DOWN = "scaled down"
    EXIT = "exit 0"


class WorkerProcess(aiomultiprocess.Process):  # type: ignore[misc]
    """An ``aiomultiprocess.Process`` running a worker's coroutine, whose result is the
    process's exit code.

    Built without the base constructor: that one makes a ``multiprocessing.Manager`` namespace
    for pool results, and so starts a Manager server process in the supervisor, which a
    SIGKILLed supervisor would leave behind (measured). A worker reports nothing through it.
    """

    def __init__(self, index: int, options: WorkerOptions) -> None:
        self.unit = Unit(
            target=worker_process.main,
            args=(index, options),
            kwargs={},
            namespace=None,
            initializer=worker_process.prepare,
            initargs=(index, options),
            loop_initializer=worker_process.new_event_loop,
        )
        self.aio_process = aiomultiprocess.core.get_context().Process(
            target=worker_process.run_unit, args=(self.unit,), name=f"shoal-worker-{index}"
        )


@dataclass
class WorkerHandle:
    """One worker slot: its index survives restarts, its process does not."""

    index: int
    #: When this slot may start again after crashing (it backs off while it keeps crashing).
    backoff: RestartBackoff
    process: WorkerProcess | None = None
    started_at: float = 0.0  # wall clock, for `clusterctl status`
    started_mono: float = 0.0  # the monotonic clock, for the backoff
    #: When a slot that is backing off starts again (monotonic clock), else None.
    restart_at: float | None = None
    restarts: int = 0
    link: Link | None = None
    #: Set when its process said it is ready (the app started, the channel is up).
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    last_heartbeat: float = 0.0
    received: int = 0
    received_at: float = 0.0
    events_per_s: float = 0.0
    lag: int | None = None
    #: Changelog records its table recovery has still to replay (0: none runs).
    recovering: int = 0
    rss: int = 0
    cpu: float = 0.0
    #: Partitions the supervisor handed this slot (kept across restarts of its process).
    partitions: set[TP] = field(default_factory=set)
    stopping: bool = False
    #: Scaled away: it goes once its process exited.
    retired: bool = False
    #: Why its process is going, when the supervisor knows better than the exit code.
    cause: Cause | None = None

    @property
    def pid(self) -> int:
        return int(self.process.pid) if self.process is not None and self.process.pid else 0

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode if self.process is not None else None

    @property
    def restart_in(self) -> float | None:
        """Seconds until a slot that backs off starts again; None when it is not."""
        if self.restart_at is None:
            return None
        return max(0.0, self.restart_at - time.monotonic())

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def start(self, options: WorkerOptions) -> None:
        self.process = WorkerProcess(self.index, options)
        self.process.start()
        self.restart_at = None
        self.started_at = time.time()
        self.started_mono = time.monotonic()
        self.last_heartbeat = time.monotonic()
        self.link = None
        self.ready = asyncio.Event()
        self.stopping = False
        self.received = 0
        self.received_at = time.monotonic()
        self.events_per_s = 0.0
        self.lag = None
        self.recovering = 0

    def signal(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def join(self, timeout: float = 5.0) -> None:
        """Reap its process (it exited, or was killed)."""
        if self.process is not None:
            self.process.aio_process.join(timeout)

    def status(self) -> WorkerStatus:
        """This slot as ``clusterctl status`` shows it."""
        if self.restart_at is not None:
            state = "backoff"
        elif self.stopping:
            state = "stopping"
        else:
            state = "running" if self.ready.is_set() else "starting"
        return WorkerStatus(
            index=self.index,
            pid=self.pid,
            started_at=self.started_at,
            restarts=self.restarts,
            rss_bytes=self.rss,
            cpu_percent=self.cpu,
            partitions=[partition_label(t, p) for t, p in sorted(self.partitions)],
            events_per_s=self.events_per_s,
            lag=self.lag,
            state=state,
            recovering=self.recovering,
            crash_streak=self.backoff.streak,
            restart_in=self.restart_in,
        )

    def heartbeat(self, received: int, lag: int | None, recovering: int = 0) -> None:
        now = time.monotonic()
        elapsed = now - self.received_at
        if elapsed >= 1.0:
            self.events_per_s = max(0, received - self.received) / elapsed
            self.received, self.received_at = received, now
        self.last_heartbeat = now
        self.lag = lag
        self.recovering = recovering

"""The supervisor's pool with slots whose processes are stand-ins: replacing, backing off,
giving up on an app that cannot boot, killing the stalled, retiring for a scale-down."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from shoal.config import load_settings
from shoal.exceptions import ShoalError
from shoal.exitcodes import ExitCode
from shoal.supervisor import scaling
from shoal.supervisor.pool import Pool
from shoal.supervisor.workers import Cause, WorkerHandle
from shoal.worker.process import WorkerOptions


class FakeProcess:
    pids = iter(range(10_000, 20_000))

    def __init__(self) -> None:
        self.pid = next(self.pids)
        self.exitcode: int | None = None

    def is_alive(self) -> bool:
        return self.exitcode is None


class FakeHandle(WorkerHandle):
    """A slot that starts a stand-in process and signals nothing real."""

    def start(self, options: WorkerOptions) -> None:
        self.process = FakeProcess()  # type: ignore[assignment]
        self.restart_at = None
        self.started_mono = self.last_heartbeat = time.monotonic()
        self.ready = asyncio.Event()
        self.stopping = False
        self.signals: list[int] = []

    def signal(self, signum: int) -> None:
        self.signals.append(signum)
        if self.process is not None:
            self.process.exitcode = -signum  # type: ignore[misc]

    def join(self, timeout: float = 5.0) -> None:
        pass

    def exit(self, code: int) -> None:
        assert self.process is not None
        self.process.exitcode = code  # type: ignore[misc]


OPTIONS = WorkerOptions("app", "/nowhere.sock", "info", "text", 1.0, 1.0)


def make_pool(count: int = 2, **settings: Any) -> tuple[Pool, list[tuple[str, int]], list[int]]:
    conf = load_settings(settings, env={}, config_file=False)
    failures: list[tuple[str, int]] = []
    stopped: list[int] = []

    async def send_stop(handle: WorkerHandle) -> bool:
        stopped.append(handle.index)
        return True

    pool = Pool(
        conf,
        OPTIONS,
        count,
        fail=lambda message, code: failures.append((message, code)),
        send_stop=send_stop,
        handle_type=FakeHandle,
    )
    pool.spawn_all()
    return pool, failures, stopped


def fake(handle: WorkerHandle) -> FakeHandle:
    assert isinstance(handle, FakeHandle)
    return handle


def test_a_worker_that_crashes_is_replaced_at_once_then_with_a_growing_delay() -> None:
    pool, failures, _ = make_pool()
    first = fake(pool.handles[0])
    pid = first.pid
    first.exit(1)
    pool.reap()
    assert first.pid != pid and first.restart_at is None  # replaced at once
    fake(pool.handles[0]).exit(1)
    pool.reap()
    assert first.process is None and first.restart_at is not None  # backing off
    assert first.backoff.streak == 2 and first.restarts == 2
    assert fake(pool.handles[1]).alive()  # the sibling runs on
    assert failures == []


def test_a_worker_that_cannot_boot_stops_the_supervisor_instead_of_a_restart_loop() -> None:
    pool, failures, _ = make_pool()
    fake(pool.handles[1]).exit(ExitCode.BOOT_ERROR)
    pool.reap()
    ((message, code),) = failures
    assert code == ExitCode.BOOT_ERROR and "Not restarting" in message
    assert pool.handles[1].process is None


def test_a_silent_worker_is_killed_and_reaped_as_a_stall() -> None:
    pool, _, _ = make_pool(worker_stall_timeout=5)
    handle = fake(pool.handles[0])
    handle.ready.set()
    handle.last_heartbeat -= 6
    pool.kill_stalled()
    assert handle.cause == Cause.STALL and handle.signals == [9]
    pool.reap()
    assert handle.alive() and handle.restarts == 1


async def test_retiring_stops_the_slots_past_the_count_and_drops_them_once_gone() -> None:
    pool, _, stopped = make_pool(count=3)
    await pool.retire(1)
    assert stopped == [1, 2] and pool.size == 1
    for handle in pool.handles[1:]:
        fake(handle).exit(0)
    pool.reap()
    assert [h.index for h in pool.handles] == [0]
    assert pool.handles[0].restarts == 0  # a retired worker is not replaced


async def test_stopping_kills_what_outlives_the_deadline() -> None:
    pool, _, stopped = make_pool()
    fake(pool.handles[0]).exit(0)  # stops when told
    clean = await pool.stop(deadline=time.monotonic() + 0.2)
    assert stopped == [0, 1]
    assert clean is False and fake(pool.handles[1]).signals == [9]


def test_a_scale_request_only_moves_the_target_and_never_below_one() -> None:
    pool, _, _ = make_pool(2)
    assert scaling.new_target(pool, delta=1) == 2
    assert scaling.new_target(pool, workers=5) == 3
    assert pool.target == 5 and pool.size == 2  # reconcile moves the workers, not the request
    with pytest.raises(ShoalError, match="at least one worker"):
        scaling.new_target(pool, workers=0)
    with pytest.raises(ShoalError, match="asked for -1"):
        scaling.new_target(pool, delta=-6)
    assert pool.target == 5

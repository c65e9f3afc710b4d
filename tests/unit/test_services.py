"""Services start and stop in mode's order (which faust.Service is), run their tasks and
timers, and report a failed task."""

from __future__ import annotations

import shoal
from tests.helpers import wait_until


class Recorder(shoal.Service):
    def __init__(self, name: str, log: list[str], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.log = log
        self.ticks = 0

    async def on_first_start(self) -> None:
        self.log.append(f"{self.name} first")

    async def on_start(self) -> None:
        self.log.append(f"{self.name} start")

    async def on_started(self) -> None:
        self.log.append(f"{self.name} started")

    async def on_stop(self) -> None:
        self.log.append(f"{self.name} stop")

    async def on_shutdown(self) -> None:
        self.log.append(f"{self.name} shutdown")

    @shoal.Service.timer(0.01, exec_first=True)
    async def tick(self) -> None:
        self.ticks += 1

    @shoal.Service.task
    async def loop(self) -> None:
        while not self.should_stop:
            await self.sleep(1.0)
        self.log.append(f"{self.name} task saw the stop")


async def test_hooks_dependencies_tasks_and_timers_in_order() -> None:
    log: list[str] = []
    parent = Recorder("parent", log, loop=None, beacon=None)  # Faust's keywords are fine
    parent.add_dependency(Recorder("child", log))
    await parent.start()
    assert log == [
        "parent first",
        "parent start",
        "child first",
        "child start",
        "child started",
        "parent started",
    ]
    await wait_until(lambda: parent.ticks >= 3, 5, "timer ticks")  # exec_first: at once
    log.clear()
    await parent.stop()
    assert log[0] == "parent stop"
    assert log[-1] == "parent shutdown"
    assert log.index("child stop") < log.index("child shutdown") < log.index("parent shutdown")
    assert "parent task saw the stop" in log  # sleep() ended early: should_stop was set
    # A second start is not a first start.
    log.clear()
    await parent.start()
    assert "parent first" not in log and "parent start" in log
    await parent.stop()


async def test_a_failing_task_is_reported_to_whoever_started_the_service() -> None:
    class Broken(shoal.Service):
        @shoal.Service.task
        async def fail(self) -> None:
            raise ValueError("broken task")

    failures: list[BaseException] = []
    service = Broken()
    await service.start(failures.append)
    await wait_until(lambda: failures, 5, "the failure")
    assert isinstance(failures[0], ValueError)
    await service.stop()


async def test_stopping_a_service_that_never_started_does_nothing() -> None:
    log: list[str] = []
    await Recorder("idle", log).stop()
    assert log == []

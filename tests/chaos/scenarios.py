"""The chaos scenarios. Each runs a cluster of tests/chaos/chaos_app.py under load (numbered
events and asks all along), does something production does to clusters, and returns the
figures the checker counted. ``Params`` sets the sizes: short for CI, full for the report.

A fault's moments are taken on the wall clock, as the workers stamp their outputs, so the
recovery time is "from the end of the fault until every partition had output again".
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from tests.chaos.harness import ChaosBroker, Result, Scene
from tests.helpers import wait_until_sync

#: The value the oversized poison carries: accepted by the broker (its default limit is
#: 1,048,588 bytes) from a producer allowed more, but over a shoal producer's 1,000,000.
OVERSIZED = 1_040_000


@dataclass(frozen=True)
class Params:
    workers: int
    partitions: int
    rate: float
    seconds: float  # of load around each fault
    kills: int
    pauses: tuple[float, ...]
    outage: float  # a stopped broker stays down this long
    joins: int  # times a second supervisor joins and leaves

    @classmethod
    def short(cls) -> Params:
        return cls(
            workers=2, partitions=8, rate=300, seconds=6, kills=3, pauses=(10,), outage=5, joins=2
        )

    @classmethod
    def full(cls) -> Params:
        return cls(
            workers=4,
            partitions=16,
            rate=1000,
            seconds=10,
            kills=10,
            pauses=(10, 60),
            outage=15,
            joins=4,
        )


def _scene(name: str, broker: ChaosBroker, workdir: Path, p: Params, **env: str) -> Scene:
    return Scene(
        name,
        broker,
        workdir,
        workers=p.workers,
        partitions=p.partitions,
        rate=p.rate,
        env=env,
    )


def _load_for(scene: Scene, seconds: float) -> None:
    """Let the feeder produce ``seconds`` more of events (the pace of a scenario)."""
    scene.wait_produced(scene.produced() + int(scene.rate * seconds), timeout=seconds * 4 + 60)


def _recovered(scene: Scene, moment: float, what: str) -> None:
    took = scene.outputs.resumed_after(moment)
    if took is None:
        scene.result.hangs += 1
        scene.result.notes.append(f"a partition never had output again after {what}")
    else:
        scene.result.recovery = max(scene.result.recovery or 0.0, took)


def worker_kills(broker: ChaosBroker, workdir: Path, p: Params) -> Result:
    """SIGKILL a random worker every 3 s under load."""
    with _scene("worker-kills", broker, workdir, p) as scene:
        supervisor = scene.up()
        scene.start_load()
        _load_for(scene, p.seconds / 2)
        kills: list[float] = []
        rng = random.Random(7)
        for _ in range(p.kills):
            victim = rng.choice(sorted(supervisor.worker_pids().values()))
            kills.append(time.time())
            os.kill(victim, signal.SIGKILL)
            _load_for(scene, 3)
        _load_for(scene, p.seconds / 2)
        result = scene.finish()
        for moment in kills:
            _recovered(scene, moment, "a worker kill")
        died = sum("died (crash" in line for line in supervisor.lines)
        if died != p.kills:
            result.notes.append(f"{died} worker deaths logged for {p.kills} kills")
        return result


def supervisor_kill(broker: ChaosBroker, workdir: Path, p: Params) -> Result:
    """SIGKILL the supervisor: its workers must exit; a new `up` goes on where it stopped."""
    with _scene("supervisor-kill", broker, workdir, p) as scene:
        first = scene.up()
        workers = list(first.worker_pids().values())
        scene.start_load()
        _load_for(scene, p.seconds)
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
        killed = time.time()
        try:
            wait_until_sync(
                lambda: not any(psutil.pid_exists(pid) for pid in workers),
                10,
                "the workers of a killed supervisor to exit",
            )
        except AssertionError:
            scene.result.hangs += 1
            scene.result.notes.append("workers outlived their killed supervisor by 10 s")
        scene.result.notes.append(f"workers gone {time.time() - killed:.1f} s after the kill")
        scene.up()
        _load_for(scene, p.seconds)
        result = scene.finish()
        _recovered(scene, killed, "the supervisor kill")
        return result


def _outage(
    scene: Scene, p: Params, seconds: float, begin: Callable[[], None], end: Callable[[], None]
) -> Result:
    """Load, an outage of ``seconds`` (from ``begin()`` to ``end()``), load: the supervisor
    must live through it and resume by itself."""
    supervisor = scene.up()
    scene.start_load()
    _load_for(scene, p.seconds)
    begin()
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):  # it lives on, as it should
            supervisor.proc.wait(seconds)  # the outage; returns early only if it died
    finally:
        end()
    over = time.time()
    if supervisor.proc.poll() is not None:
        scene.result.notes.append(f"the supervisor exited {supervisor.proc.poll()} in the outage")
    _load_for(scene, p.seconds)
    result = scene.finish()
    _recovered(scene, over, "the outage")
    return result


def broker_pause(broker: ChaosBroker, workdir: Path, p: Params, seconds: float) -> Result:
    """SIGSTOP the broker for ``seconds`` (as long as the session timeout, or longer), then
    SIGCONT: the cluster must resume by itself."""
    with _scene(f"broker-pause-{seconds:g}s", broker, workdir, p) as scene:
        return _outage(scene, p, seconds, broker.pause, broker.resume)


def sigterm_in_outage(broker: ChaosBroker, workdir: Path, p: Params) -> Result:
    """SIGTERM the cluster while the broker is paused: it stops within its
    worker_shutdown_timeout (it cannot commit, so it exits 1), never hangs; a new `up` after
    the outage goes on from the last commit."""
    shutdown = 15.0
    with _scene(
        "sigterm-in-outage", broker, workdir, p, SHOAL_WORKER_SHUTDOWN_TIMEOUT=f"{shutdown:g}"
    ) as scene:
        first = scene.up()
        scene.start_load()
        _load_for(scene, p.seconds)
        broker.pause()
        try:
            started = time.monotonic()
            first.proc.send_signal(signal.SIGTERM)
            try:
                code = first.proc.wait(shutdown + 10)
            except subprocess.TimeoutExpired:
                scene.result.hangs += 1
                scene.result.notes.append(f"SIGTERM ignored for {shutdown + 10:g} s in an outage")
                first.kill()
            else:
                took = time.monotonic() - started
                scene.result.notes.append(f"stopped in the outage in {took:.1f} s (exit {code})")
        finally:
            broker.resume()
        resumed = time.time()
        scene.up()
        _load_for(scene, p.seconds)
        result = scene.finish()
        _recovered(scene, resumed, "the restart after the outage")
        return result


def broker_restart(broker: ChaosBroker, workdir: Path, p: Params) -> Result:
    """Stop the broker (SIGTERM, a clean shutdown), keep it down, start it again on the same
    data directory."""
    with _scene("broker-restart", broker, workdir, p) as scene:
        return _outage(scene, p, p.outage, broker.stop, broker.start)


def second_supervisor(broker: ChaosBroker, workdir: Path, p: Params) -> Result:
    """A second supervisor (another "host") joins and leaves, again and again."""
    with _scene("second-supervisor", broker, workdir, p) as scene:
        first = scene.up()
        scene.start_load()
        _load_for(scene, p.seconds / 2)
        everything = f"this host owns {2 * p.partitions} partitions"  # the input's and echo's
        for round_ in range(p.joins):
            second = scene.up()
            _load_for(scene, 3)
            code = second.stop(90)
            if code != 0:
                scene.result.notes.append(f"the second supervisor exited {code}")
            first.wait_for(everything, timeout=90, count=round_ + 2)
            _load_for(scene, 2)
        result = scene.finish()
        return result


def poison(broker: ChaosBroker, workdir: Path, p: Params) -> Result:
    """Undecodable, mistyped, empty and oversized values among the numbered events: each is
    dead-lettered (the oversized one cut short), none stops its partition."""
    with _scene("poison", broker, workdir, p) as scene:
        scene.up()
        scene.start_load()
        _load_for(scene, p.seconds / 2)
        assert scene.feeder is not None
        bad = [
            b"{not json",
            b'{"k": "seven", "s": 1}',
            b'{"k": 1}',
            b"\xff\xfe\x00",
            b"[]",
            None,
            b"x" * OVERSIZED,
        ]
        for i, value in enumerate(bad):
            scene.feeder.inject(str(i).encode(), value)
            _load_for(scene, 0.5)
        _load_for(scene, p.seconds / 2)
        result = scene.finish()
        letters = _read_all(broker.bootstrap, f"{scene.app_id}-dead-letters")
        truncated = [h for h in letters if "shoal-truncated" in h]
        result.notes.append(f"{len(letters)} dead letters for {len(bad)} poison messages")
        if len(letters) != len(bad) or len(truncated) != 1:
            result.lost += abs(len(bad) - len(letters))
            result.notes.append(f"expected {len(bad)} dead letters, one of them cut short")
        elif truncated[0].get("shoal-original-size") != f"value={OVERSIZED}".encode():
            result.notes.append(f"the cut-short letter says {truncated[0]!r}")
            result.lost += 1
        return result


def _read_all(bootstrap: str, topic: str) -> list[dict[str, bytes]]:
    """The headers of every message of a one-partition topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader"})
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        headers: list[dict[str, bytes]] = []
        deadline = time.monotonic() + 30
        while len(headers) < high and time.monotonic() < deadline:
            for msg in consumer.consume(100, 0.5):
                if msg.error() is None:
                    headers.append(dict(msg.headers() or ()))
        return headers
    finally:
        consumer.close()


def sigterm_restart(broker: ChaosBroker, workdir: Path, p: Params) -> Result:
    """SIGTERM the cluster under load and start it again: a clean stop repeats nothing."""
    with _scene("sigterm-restart", broker, workdir, p) as scene:
        first = scene.up()
        scene.start_load()
        _load_for(scene, p.seconds)
        started = time.monotonic()
        code = first.stop(90)
        stopped = time.time()
        scene.result.notes.append(f"stopped (exit {code}) in {time.monotonic() - started:.1f} s")
        if code != 0:
            scene.result.hangs += 1
        scene.up()
        _load_for(scene, p.seconds)
        result = scene.finish()
        _recovered(scene, stopped, "the restart")
        return result


def slow_agent(broker: ChaosBroker, workdir: Path, p: Params) -> Result:
    """An agent that blocks its worker's loop: for 0.5 s every 200th event of a partition
    (the worker must keep its partitions), and once for good (it must be killed and
    replaced)."""
    marker = workdir / "stalled"
    with _scene(
        "slow-agent",
        broker,
        workdir,
        p,
        CHAOS_SLOW_EVERY="200",
        CHAOS_SLOW_SECONDS="0.5",
        CHAOS_STALL_ON=str(int(p.rate * p.seconds / 64)),
        CHAOS_STALL_MARKER=str(marker),
        SHOAL_WORKER_STALL_TIMEOUT="5",
    ) as scene:
        supervisor = scene.up()
        scene.start_load()
        wait_until_sync(marker.exists, p.seconds * 4 + 60, "a worker to stall")
        stalled = time.time()
        _load_for(scene, p.seconds)
        result = scene.finish()
        _recovered(scene, stalled, "the stall")
        if not any("sent no heartbeat" in line for line in supervisor.lines):
            result.notes.append("the stalled worker was not killed")
            result.hangs += 1
        return result


def crash_loop(broker: ChaosBroker, workdir: Path, p: Params) -> Result:
    """One worker slot crashes on every start (an event that crashes its agent): it backs
    off, its siblings keep processing, and once the cause is gone it recovers."""
    marker = workdir / "crash"
    marker.write_text("crash while this file exists")
    with _scene(
        "crash-loop",
        broker,
        workdir,
        p,
        CHAOS_CRASH_PARTITION="1",
        CHAOS_CRASH_MARKER=str(marker),
        SHOAL_WORKER_RESTART_BACKOFF_MAX="4",
    ) as scene:
        supervisor = scene.up()
        scene.start_load()
        loop_started = time.time()
        wait_until_sync(
            lambda: sum("died (crash" in line for line in supervisor.lines) >= 5,
            120,
            "five crashes of the looping slot",
        )
        backed_off = any("crashes in a row" in line for line in supervisor.lines)
        alive = supervisor.proc.poll() is None
        marker.unlink()
        cured = time.time()
        _load_for(scene, p.seconds)
        result = scene.finish()
        siblings = [
            t
            for partition, stamps in scene.outputs.stamps.items()
            if partition % p.workers != 1 % p.workers
            for t in stamps
            if loop_started < t < cured
        ]
        result.notes.append(
            f"{sum('died (crash' in line for line in supervisor.lines)} crashes; "
            f"{len(siblings)} outputs of healthy workers during the loop"
        )
        if not (backed_off and alive and siblings):
            result.hangs += 1
            result.notes.append(
                f"backed off: {backed_off}, supervisor alive: {alive}, siblings processed: "
                f"{bool(siblings)}"
            )
        _recovered(scene, cured, "the cure")
        return result


Scenario = Callable[[ChaosBroker, Path, Params], Result]


def all_scenarios(p: Params) -> dict[str, Scenario]:
    scenarios: dict[str, Scenario] = {
        "worker-kills": worker_kills,
        "supervisor-kill": supervisor_kill,
    }
    for seconds in p.pauses:
        scenarios[f"broker-pause-{seconds:g}s"] = lambda b, w, q, s=seconds: broker_pause(
            b, w, q, s
        )
    scenarios.update(
        {
            "sigterm-in-outage": sigterm_in_outage,
            "broker-restart": broker_restart,
            "second-supervisor": second_supervisor,
            "poison": poison,
            "sigterm-restart": sigterm_restart,
            "slow-agent": slow_agent,
            "crash-loop": crash_loop,
        }
    )
    return scenarios

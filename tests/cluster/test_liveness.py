"""A worker whose loop is stuck is replaced; one over its memory limit is recycled."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import wait_until_sync
from tests.processes import Clusterctl, OutputReader, numbers_env, produce_numbers

pytestmark = pytest.mark.kafka


def test_a_stalled_worker_is_killed_and_replaced(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    env = numbers_env(kafka_bootstrap, unique, partitions=4)
    env.update(
        NUMBERS_STALL_ON="700",
        NUMBERS_STALL_MARKER=str(tmp_path / "stalled"),
        SHOAL_WORKER_STALL_TIMEOUT="3",
    )
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "2", env=env)
    reader = OutputReader(kafka_bootstrap, env["NUMBERS_OUT"])
    try:
        supervisor.wait_for("this host owns 4 partitions over 2 workers")
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(2000))
        supervisor.wait_for("sent no heartbeat", timeout=30)
        reader.read_until(2000, 60)
    finally:
        code = supervisor.stop()
        reader.close()
    assert code == 0, supervisor.log()
    stalled_pid = int((tmp_path / "stalled").read_text())
    log = supervisor.log(300)
    assert f"(pid {stalled_pid}) sent no heartbeat" in log
    assert log.count("started worker") == 3  # two, and one replacement
    assert set(reader.seen) == set(range(2000))


def test_a_worker_over_its_memory_limit_is_recycled_gracefully(
    kafka_bootstrap: str, unique: str
) -> None:
    env = numbers_env(kafka_bootstrap, unique, partitions=2)
    env.update(NUMBERS_BLOAT_ON="100", NUMBERS_BLOAT_MB="300", SHOAL_WORKER_MAX_MEMORY_MB="200")
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "1", env=env)
    reader = OutputReader(kafka_bootstrap, env["NUMBERS_OUT"])
    try:
        supervisor.wait_for("this host owns 2 partitions over 1 workers")
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(1000))
        supervisor.wait_for("recycling it", timeout=30)
        supervisor.wait_for("is ready", count=2)
        reader.read_until(1000, 60)
    finally:
        code = supervisor.stop()
        reader.close()
    assert code == 0, supervisor.log()
    log = supervisor.log(300)
    assert "over worker_max_memory_mb=200" in log
    assert "exited (memory)" in log
    assert set(reader.seen) == set(range(1000))
    assert max(reader.seen.values()) == 1  # a graceful recycle hands over cleanly


def test_a_worker_whose_consumer_thread_died_is_replaced(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """Its loop still runs (and used to heartbeat on, so its partitions stopped silently):
    a dead thread is a dead worker."""
    env = numbers_env(kafka_bootstrap, unique, partitions=4)
    env.update(NUMBERS_BREAK_CONSUMER_ON="300", NUMBERS_BREAK_MARKER=str(tmp_path / "broken"))
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "2", env=env)
    reader = OutputReader(kafka_bootstrap, env["NUMBERS_OUT"])
    try:
        supervisor.wait_for("this host owns 4 partitions over 2 workers")
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(1000))
        wait_until_sync((tmp_path / "broken").exists, 30, "the fault to be injected")
        # The next batch that worker fetches ends its consumer thread.
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(1000, 2000))
        supervisor.wait_for("died (crash", timeout=30)
        reader.read_until(2000, 60)
    finally:
        code = supervisor.stop()
        reader.close()
    assert code == 0, supervisor.log()
    broken_pid = int((tmp_path / "broken").read_text())
    log = supervisor.log(300)
    assert f"(pid {broken_pid}) died (crash, exit code 1); restarting it now" in log
    assert "the consumer thread failed" in log
    assert log.count("started worker") == 3  # two, and one replacement
    assert "did not stop" not in log
    assert set(reader.seen) == set(range(2000))


def test_a_worker_whose_agent_crashed_is_replaced_at_once(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """A crashed agent's event never finishes: the worker used to wait the whole drain
    timeout for it (30 s) before it exited and was replaced."""
    env = numbers_env(kafka_bootstrap, unique, partitions=2)
    env.update(NUMBERS_CRASH_ON="150", NUMBERS_CRASH_MARKER=str(tmp_path / "crashed"))
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "1", env=env)
    reader = OutputReader(kafka_bootstrap, env["NUMBERS_OUT"])
    try:
        supervisor.wait_for("this host owns 2 partitions over 1 workers")
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(1000))
        supervisor.wait_for("raised on", timeout=30)
        crashed_at = time.monotonic()
        supervisor.wait_for("is ready", count=2, timeout=30)
        replaced_in = time.monotonic() - crashed_at
        reader.read_until(1000, 60)
    finally:
        code = supervisor.stop()
        reader.close()
    assert code == 0, supervisor.log()
    assert replaced_in < 10, f"the replacement was ready {replaced_in:.1f} s after the crash"
    assert "died (crash, exit code 1)" in supervisor.log(300)
    assert set(reader.seen) == set(range(1000))

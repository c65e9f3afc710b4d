"""A worker SIGKILLed in the middle of a stream loses nothing: at-least-once across a crash."""

from __future__ import annotations

import signal

import pytest

from tests.processes import Clusterctl, OutputReader, numbers_env, produce_numbers

pytestmark = pytest.mark.kafka


def test_sigkill_mid_stream_then_restart_processes_every_event(
    kafka_bootstrap: str, unique: str
) -> None:
    env = numbers_env(kafka_bootstrap, unique)
    env["NUMBERS_SPIN"] = "20000"  # about 0.5 ms of work per event: the kill lands mid-stream
    total = 6000
    first = Clusterctl("tests.apps.numbers_app", "worker", env=env)
    reader = OutputReader(kafka_bootstrap, env["NUMBERS_OUT"])
    try:
        first.wait_for("assigned")
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(0, 3000))
        reader.read_until(1000, 60)
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(3000, total))
        first.proc.send_signal(signal.SIGKILL)  # in the middle of the stream
        assert first.proc.wait(30) == -signal.SIGKILL
        killed_at = len(reader.seen)

        second = Clusterctl("tests.apps.numbers_app", "worker", env=env)
        try:
            second.wait_for("assigned")
            reader.read_until(total, 90)
        finally:
            code = second.stop()
        assert code == 0, second.log()
    finally:
        first.kill()
        reader.close()
    assert set(reader.seen) == set(range(total))
    # The kill landed mid-stream: the restarted worker had work left.
    assert killed_at < total
    assert any(second.proc.pid == pid for pids in reader.pids_by_partition.values() for pid in pids)
    duplicates = sum(n - 1 for n in reader.seen.values())
    print(f"outputs seen when killed: {killed_at}; reprocessed after restart: {duplicates}")

"""clusterctl ask / agents / clean against a running cluster."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.processes import Clusterctl, numbers_env

pytestmark = pytest.mark.kafka


def test_ask_agents_and_clean_through_the_cli(
    kafka_bootstrap: str, unique: str, admin: AdminClient
) -> None:
    env = numbers_env(kafka_bootstrap, unique)
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "2", env=env)
    try:
        supervisor.wait_for("this host owns 4 partitions over 2 workers")
        ask = Clusterctl("tests.apps.numbers_app", "ask", "numbers", "41", "--key", "k", env=env)
        assert ask.proc.wait(60) == 0, ask.log()
        value, _partition, pid = json.loads(ask.lines[-1]).split()
        assert value == "41"
        assert pid in supervisor.log(100)

        # Only the app id and broker: no app module to import.
        by_id = Clusterctl(
            "no.such.module",
            "ask",
            "--id",
            unique,
            "--broker",
            kafka_bootstrap,
            "numbers",
            "7",
            env=env,
        )
        assert by_id.proc.wait(60) == 0, by_id.log()
        assert json.loads(by_id.lines[-1]).startswith("7 ")

        agents = Clusterctl("tests.apps.numbers_app", "agents", env=env)
        assert agents.proc.wait(60) == 0, agents.log()
        row = next(line for line in agents.lines if "tests.apps.numbers_app.numbers" in line)
        assert f"{unique}-in" in row and "0,1" in row

        stale = f"{unique}-reply-deadbeefdeadbeef"
        admin.create_topics([NewTopic(stale, num_partitions=1)])[stale].result(30)
        clean = Clusterctl("tests.apps.numbers_app", "clean", env=env)
        assert clean.proc.wait(60) == 0, clean.log()
        assert f"deleting {stale}" in clean.log()
    finally:
        code = supervisor.stop()
    assert code == 0, supervisor.log()


def test_ask_timeout_bounds_the_command_when_no_broker_answers(unique: str) -> None:
    env = numbers_env("127.0.0.1:1", unique)  # nothing listens there
    started = time.monotonic()
    ask = Clusterctl("tests.apps.numbers_app", "ask", "--timeout", "3", "numbers", "1", env=env)
    code = ask.proc.wait(60)
    took = time.monotonic() - started
    assert code == 1, ask.log()
    error = next(line for line in ask.lines if line.startswith("Error:"))
    assert "gave up on agent 'numbers' after 3 s" in error
    assert "127.0.0.1:1" in error
    # Python's start, the 3 s, and a moment to clean up: not the 14 s it used to take.
    assert took < 3 + 3, f"`clusterctl ask --timeout 3` took {took:.1f} s"
    assert not any("Traceback" in line for line in ask.lines)

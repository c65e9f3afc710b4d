"""librdkafka's lines through Python logging: one of each kind per window, with a count of
what was held back (an outage used to print about 1,160 raw lines a minute)."""

from __future__ import annotations

import logging
import uuid

import pytest

from shoal.kafka import clients
from shoal.kafka.clients import RepeatFilter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(message: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("shoal.kafka", level, __file__, 1, message, args, None)


def test_repeats_are_held_back_and_counted_once_the_window_ends() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(window=30.0, clock=clock)
    line = "FAIL [rdkafka#consumer-%d] [thrd:127.0.0.1:1/bootstrap]: Connect failed (after %dms)"
    assert repeats.filter(record(line, 1, 0))
    # The same line, from another client, with other timings: one kind.
    assert not any(repeats.filter(record(line, n, n * 3)) for n in range(2, 200))
    clock.now += 31
    again = record(line, 7, 1)
    assert repeats.filter(again)
    assert again.getMessage().endswith("(198 more like it in the last 30 s)")


def test_lines_of_other_kinds_or_levels_pass() -> None:
    repeats = RepeatFilter(window=30.0, clock=FakeClock())
    assert repeats.filter(record("1/1 brokers are down"))
    assert repeats.filter(record("GroupCoordinator: Connect failed"))
    assert repeats.filter(record("1/1 brokers are down", level=logging.WARNING))
    assert not repeats.filter(record("1/1 brokers are down"))


def test_client_errors_are_logged_and_kept_as_the_cause(caplog: pytest.LogCaptureFixture) -> None:
    unique = uuid.uuid4().hex  # the filter is per process: a kind no other test logged

    class Err:
        def str(self) -> str:
            return f"127.0.0.1:1/bootstrap: Connect failed: Connection refused ({unique})"

    caplog.set_level(logging.WARNING, "shoal.kafka")
    clients.on_client_error(Err())
    assert "Connection refused" in caplog.text
    assert "Connection refused" in clients.describe_unreachable("127.0.0.1:1", within=60)
    assert clients.describe_unreachable("127.0.0.1:1", within=-1) == ""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator

import pytest

from shoal.logs import setup_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_text_lines_carry_app_worker_and_pid() -> None:
    out = io.StringIO()
    setup_logging("info", "text", app_id="orders", worker=2, stream=out)
    logging.getLogger("shoal.conductor").info("assigned %d partitions", 4)
    logging.getLogger("shoal.conductor").debug("below the level")

    (line,) = out.getvalue().splitlines()
    assert re.fullmatch(
        rf"\[.+\] \[orders worker 2 {os.getpid()}\] \[INFO\] shoal\.conductor: "
        r"assigned 4 partitions",
        line,
    )


def test_the_supervisor_is_named_as_such() -> None:
    out = io.StringIO()
    setup_logging("info", "text", app_id="orders", worker=None, stream=out)
    logging.getLogger("x").warning("hello")
    assert f"[orders supervisor {os.getpid()}] [WARNING] x: hello" in out.getvalue()


def test_json_lines() -> None:
    out = io.StringIO()
    setup_logging("debug", "json", app_id="orders", worker=0, stream=out)
    logging.getLogger("shoal.agents").warning("slow: %s\nsecond line é", "count")

    lines = out.getvalue().splitlines()
    assert len(lines) == 1  # a newline in the message stays inside the object
    entry = json.loads(lines[0])
    assert set(entry) == {"ts", "level", "logger", "message", "app", "worker", "pid"}
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "shoal.agents"
    assert entry["message"] == "slow: count\nsecond line é"
    assert entry["app"] == "orders"
    assert entry["worker"] == "0"  # always a string, like "supervisor"
    assert entry["pid"] == os.getpid()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["ts"])


def test_json_carries_the_traceback_in_the_object() -> None:
    out = io.StringIO()
    setup_logging("info", "json", app_id="orders", worker=None, stream=out)
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("shoal").exception("agent count failed")

    (line,) = out.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["worker"] == "supervisor"
    assert entry["message"] == "agent count failed"
    assert entry["exc_info"].startswith("Traceback (most recent call last):")
    assert "ValueError: bad value" in entry["exc_info"]


def test_setup_replaces_the_previous_handlers() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("info", "text", app_id="a", worker=0, stream=first)
    setup_logging("info", "json", app_id="a", worker=0, stream=second)
    logging.getLogger("x").info("once")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["message"] == "once"


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="allowed: text, json"):
        setup_logging("info", "yaml", app_id="a", worker=0)

"""Log lines say what process wrote them: a supervisor, a supervisor's worker N, or a process
of its own (``clusterctl worker`` says "worker", not "supervisor")."""

from __future__ import annotations

import logging

from shoal.logs import ContextFilter


def stamped(worker: int | str | None) -> str:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    ContextFilter("app", worker).filter(record)
    return str(record.worker_name)  # type: ignore[attr-defined]


def test_each_kind_of_process_is_named_in_its_lines() -> None:
    assert stamped(None) == "supervisor"
    assert stamped(2) == "worker 2"
    assert stamped("worker") == "worker"
    assert stamped("hello") == "hello"

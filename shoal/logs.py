"""Logging for the supervisor and its workers: every line says which app, which process.

A host runs one supervisor and N workers writing to the same stderr (or journal), so every
line carries the app id, the worker index (``supervisor`` for the supervisor) and the pid.
``text`` is for people; ``json`` writes one object per line for log shippers, with a
traceback inside the object instead of on lines of its own.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Literal

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")

TEXT_FORMAT = (
    "[%(asctime)s] [%(app)s %(worker_name)s %(process)d] [%(levelname)s] %(name)s: %(message)s"
)


class ContextFilter(logging.Filter):
    """Stamps the app id and worker on every record that reaches the handler (records of
    every logger, third-party ones included, pass through it)."""

    def __init__(self, app_id: str, worker: int | str | None) -> None:
        super().__init__()
        self.app_id = app_id
        # Always a string: a JSON field that is sometimes 0 and sometimes "supervisor" breaks
        # the field mappings of log stores.
        self.worker = "supervisor" if worker is None else str(worker)
        # A supervisor's worker has its index; a process of its own says what it is.
        self.worker_name = f"worker {worker}" if isinstance(worker, int) else self.worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.app = self.app_id
        record.worker = self.worker
        record.worker_name = self.worker_name
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, app, worker, pid, and exc_info
    (the formatted traceback) or stack when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "app": getattr(record, "app", ""),
            "worker": getattr(record, "worker", ""),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a message argument that is not JSON-serializable is already formatted
        # into "message"; this only guards odd values in the fields above.
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(
    level: str,
    fmt: LogFormat | str = "text",
    *,
    app_id: str,
    worker: int | str | None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Replace the root logger's handlers with one that writes ``fmt`` lines to ``stream``
    (stderr by default); ``worker=None`` marks the supervisor. Returns the handler."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: allowed: {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFilter(app_id, worker))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler

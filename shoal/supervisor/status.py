"""The supervisor's status file: what ``clusterctl status`` reads and prints.

The supervisor rewrites one JSON file per app every few seconds; ``clusterctl status`` is a
separate process, so a file (atomically replaced) is the simplest channel that needs no socket
and still answers after a crash (a stale ``updated_at`` tells the reader the supervisor is gone).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import psutil

from shoal.exceptions import ShoalError
from shoal.supervisor.rundir import app_dir

__all__ = [
    "ProcessSampler",
    "StatusCorruptError",
    "StatusNotFoundError",
    "SupervisorStatus",
    "WorkerStatus",
    "partition_label",
    "read_status",
    "render_table",
    "status_path",
    "status_pid",
    "write_status",
]

_HINT = "is `clusterctl up` running for this app?"


class StatusNotFoundError(ShoalError, FileNotFoundError):
    """No status file: no supervisor has run for this app (or the run dir differs)."""


class StatusCorruptError(ShoalError, ValueError):
    """The status file exists but is not a status this version of shoal can read."""


@dataclass
class WorkerStatus:
    """One worker process as its supervisor last saw it."""

    index: int
    pid: int
    started_at: float
    """Epoch seconds (wall clock, so another process can compute the uptime)."""
    restarts: int
    rss_bytes: int
    cpu_percent: float
    partitions: list[str]
    """Labels such as ``"orders[3]"`` (see :func:`partition_label`)."""
    events_per_s: float
    lag: int | None
    """Messages behind the high watermark over its partitions; None while unknown."""
    state: str
    """``"starting"``, ``"running"``, ``"stopping"``, or ``"backoff"``: it keeps crashing
    and waits ``restart_in`` seconds before its next start."""
    crash_streak: int = 0
    """Crashes in a row (0 once a worker ran ``worker_restart_backoff_reset`` seconds)."""
    restart_in: float | None = None
    recovering: int = 0
    """Changelog records its table recovery has still to replay; its partitions are not
    processed until that reaches 0."""


@dataclass
class SupervisorStatus:
    """One host's supervisor and its workers, as written to the status file."""

    app_id: str
    pid: int
    started_at: float
    host: str = field(default_factory=socket.gethostname)
    workers: list[WorkerStatus] = field(default_factory=list)
    group_partitions: int = 0
    """Partitions the consumer group gave this supervisor."""
    updated_at: float = field(default_factory=time.time)


def partition_label(topic: str, partition: int) -> str:
    """The label a topic partition has in :attr:`WorkerStatus.partitions`: ``"orders[3]"``."""
    return f"{topic}[{partition}]"


def status_path(app_id: str, run_dir: Path | None = None) -> Path:
    """Where the status file of ``app_id`` lives: ``<run_dir>/<app_id>/status.json``.

    ``run_dir`` defaults to this user's private runtime directory (see
    :func:`shoal.supervisor.rundir.runtime_root`); a directory on the way that another user
    could have planted raises :class:`~shoal.supervisor.rundir.RunDirError`.
    """
    return app_dir(app_id, run_dir) / "status.json"


def write_status(path: Path, status: SupervisorStatus) -> None:
    """Write ``status`` to ``path`` atomically: a reader sees the old file or the new one.

    Written to a temporary file in the same directory, then ``os.replace``d over ``path``
    (a rename within one filesystem is atomic). No fsync: after a power loss the status is
    meaningless anyway, and the supervisor rewrites it every few seconds.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = msgspec.json.encode(status)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_status(path: Path) -> SupervisorStatus:
    """Read the status file at ``path``.

    Raises :class:`StatusNotFoundError` (a ``FileNotFoundError``) when there is none and
    :class:`StatusCorruptError` (a ``ValueError``) when it cannot be decoded.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise StatusNotFoundError(f"no supervisor status at {path}: {_HINT}") from exc
    try:
        return msgspec.json.decode(data, type=SupervisorStatus)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        message = f"unreadable supervisor status at {path} ({exc}): {_HINT}"
        raise StatusCorruptError(message) from exc


def status_pid(path: Path) -> int | None:
    """The pid in the status file at ``path``, or None when there is none to read."""
    try:
        return read_status(path).pid
    except (OSError, ShoalError):
        return None


# --- rendering -------------------------------------------------------------------------------

_COLUMNS = ("WORKER", "PID", "UPTIME", "RESTARTS", "RSS", "CPU%", "EVENTS/S", "LAG", "PARTITIONS")
_LEFT_ALIGNED = {"WORKER", "PARTITIONS"}


def render_table(status: SupervisorStatus, now: float | None = None, max_per_topic: int = 8) -> str:
    """A plain-text table of ``status`` for ``clusterctl status``.

    A header line about the supervisor, then one row per worker. ``now`` (epoch seconds)
    defaults to the current time; pass it to make the output reproducible. Each topic shows at
    most ``max_per_topic`` partition numbers, then ``…(+N)``.

    Example output::

        app orders-app on host1, pid 4242, up 3m05s, 16 partitions owned, 2 workers (updated 2s ago)
        WORKER         PID  UPTIME  RESTARTS       RSS  CPU%  EVENTS/S  LAG  PARTITIONS
        0             4250   1h02m         0  41.2 MiB  12.5    1520.0   17  orders[0,4,8,12]
        1 (starting)  4251     12s         3  40.1 MiB   0.0       0.0    -  orders[1,5] payments[1]
    """
    now = time.time() if now is None else now
    header = (
        f"app {status.app_id} on {status.host}, pid {status.pid}, "
        f"up {format_duration(now - status.started_at)}, "
        f"{status.group_partitions} partitions owned, {len(status.workers)} workers "
        f"(updated {format_duration(now - status.updated_at)} ago)"
    )
    rows = [_COLUMNS]
    for w in sorted(status.workers, key=lambda w: w.index):
        # A worker that is not serving yet (or any more) says so where its index is.
        name = str(w.index) if w.state == "running" else f"{w.index} ({w.state})"
        if w.state == "running" and w.recovering:
            name = f"{w.index} (recovering, {w.recovering} records left)"
        if w.state == "backoff" and w.restart_in is not None:
            name = f"{w.index} (backoff {w.restart_in:.0f}s, {w.crash_streak} crashes)"
        rows.append(
            (
                name,
                str(w.pid),
                format_duration(now - w.started_at),
                str(w.restarts),
                format_bytes(w.rss_bytes),
                f"{w.cpu_percent:.1f}",
                f"{w.events_per_s:.1f}",
                "-" if w.lag is None else str(w.lag),
                compact_partitions(w.partitions, max_per_topic),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [header]
    for row in rows:
        cells = [
            cell.ljust(width) if column in _LEFT_ALIGNED else cell.rjust(width)
            for column, cell, width in zip(_COLUMNS, row, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    """``12s``, ``3m05s``, ``1h02m``, ``2d03h``: two units at most, for a glance."""
    s = max(0, int(seconds))  # clocks of two processes may disagree by a hair
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_bytes(n: int) -> str:
    """``512 B``, ``41.2 MiB``, ``1.5 GiB``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def compact_partitions(labels: list[str], max_per_topic: int = 8) -> str:
    """``["orders[4]", "orders[0]", "pay[1]"]`` -> ``"orders[0,4] pay[1]"``.

    Topics sorted by name, partitions numerically; past ``max_per_topic`` numbers a topic ends
    in ``…(+N)``. A label that is not ``topic[n]`` is shown as it is.
    """
    by_topic: dict[str, list[int]] = {}
    odd: list[str] = []
    for label in labels:
        topic, sep, rest = label.rpartition("[")
        if sep and rest.endswith("]") and rest[:-1].isdigit():
            by_topic.setdefault(topic, []).append(int(rest[:-1]))
        else:
            odd.append(label)
    parts = []
    for topic in sorted(by_topic):
        numbers = sorted(set(by_topic[topic]))
        shown = [str(n) for n in numbers[:max_per_topic]]
        if len(numbers) > max_per_topic:
            shown.append(f"…(+{len(numbers) - max_per_topic})")
        parts.append(f"{topic}[{','.join(shown)}]")
    return " ".join(parts + sorted(odd))


# --- sampling --------------------------------------------------------------------------------


class ProcessSampler:
    """Per-process RSS and CPU, read with psutil.

    Keeps one ``psutil.Process`` per pid because CPU percent is a difference between two
    readings of the same handle. Call :meth:`forget` when a worker is reaped.
    """

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, pid: int) -> tuple[int, float] | None:
        """``(rss_bytes, cpu_percent)`` of ``pid``, or None when it is gone.

        CPU is measured since the previous sample of ``pid``; the first sample only starts the
        measurement and reports 0.0. It can exceed 100 on several cores.
        """
        proc = self._procs.get(pid)
        try:
            if proc is None:
                proc = self._procs[pid] = psutil.Process(pid)
            # is_running() compares the start time, so a pid the OS reused for another
            # process is not mistaken for our worker.
            if not proc.is_running():
                raise psutil.NoSuchProcess(pid)
            with proc.oneshot():
                if proc.status() == psutil.STATUS_ZOMBIE:  # dead, not yet reaped
                    raise psutil.NoSuchProcess(pid)
                cpu = float(proc.cpu_percent(interval=None))
                rss = int(proc.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            # AccessDenied: not ours to watch; report it like a process we cannot see.
            self.forget(pid)
            return None
        return rss, cpu

    def forget(self, pid: int) -> None:
        """Drop what is kept for ``pid`` (a later pid reuse then starts afresh)."""
        self._procs.pop(pid, None)

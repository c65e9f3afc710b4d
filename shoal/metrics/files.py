"""The multiprocess directory: made before the workers start, read at each scrape, and a dead
worker's files folded into one archive so its counts stay summed (see :mod:`shoal.metrics`)."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"

# The archive and a scrape both read and rewrite files of the directory: one lock per process
# keeps a scrape from seeing a dead worker's counters twice (archive written, file not yet
# removed) or not at all.
_dir_lock = threading.Lock()


def multiprocess_dir() -> Path | None:
    path = os.environ.get(ENV_VAR)
    return Path(path) if path else None


def setup_multiprocess(path: str | Path | None = None) -> Path:
    """Prepare a fresh multiprocess directory and export it; call before spawning workers.

    ``path`` is emptied of ``*.db`` files left by an earlier run (their counters would be added
    to this run's); without it a new temporary directory is made.
    """
    if path is None:
        directory = Path(tempfile.mkdtemp(prefix="shoal-metrics-"))
    else:
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    os.environ[ENV_VAR] = str(directory)
    return directory


def teardown_multiprocess(path: str | Path) -> None:
    """Remove the directory and the variable (when the supervisor stops)."""
    if os.environ.get(ENV_VAR) == str(path):
        del os.environ[ENV_VAR]
    shutil.rmtree(path, ignore_errors=True)


def mark_worker_dead(pid: int, path: str | Path | None = None) -> None:
    """Bookkeeping for a worker process that exited; call before starting its replacement.

    Its live gauges disappear (prometheus_client's ``mark_process_dead``). Its counters and
    histograms must keep counting in the host's totals: they are merged into
    ``<type>_archive.db`` and its own file removed, so the directory holds one file per type
    per live worker plus one archive, however many restarts there were.
    """
    from prometheus_client import multiprocess

    directory = Path(path) if path is not None else multiprocess_dir()
    if directory is None:
        return
    with _dir_lock:
        multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        for kind in ("counter", "histogram"):
            dead = directory / f"{kind}_{pid}.db"
            if dead.exists():
                _archive(directory, kind, dead)


def _archive(directory: Path, kind: str, dead: Path) -> None:
    from prometheus_client.mmap_dict import MmapedDict, mmap_key
    from prometheus_client.multiprocess import MultiProcessCollector

    archive = directory / f"{kind}_archive.db"
    sources = [str(p) for p in (archive, dead) if p.exists()]
    # accumulate=False: histogram buckets stay per-bucket, as the files store them.
    merged = MultiProcessCollector.merge(sources, accumulate=False)  # type: ignore[no-untyped-call]
    staging = directory / f"{kind}_archive.tmp"  # not *.db: a scrape never reads it
    staging.unlink(missing_ok=True)
    out = MmapedDict(str(staging))  # type: ignore[no-untyped-call]
    try:
        for metric in merged:
            for sample in metric.samples:
                key = mmap_key(
                    metric.name,
                    sample.name,
                    list(sample.labels),
                    list(sample.labels.values()),
                    metric.documentation,
                )
                out.write_value(key, sample.value, 0.0)  # type: ignore[no-untyped-call]
    finally:
        out.close()  # type: ignore[no-untyped-call]
    os.replace(staging, archive)
    dead.unlink()


def multiprocess_collector(path: str | Path) -> Collector:
    """A collector summing every worker's files in ``path``; register it in the registry the
    supervisor serves (never in the same registry as a recorder's own metrics)."""
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.registry import Collector

    class LockedMultiProcessCollector(Collector):
        """MultiProcessCollector, read under the lock that mark_worker_dead takes."""

        def __init__(self) -> None:
            self._inner = MultiProcessCollector(None, path=str(path))  # type: ignore[no-untyped-call]

        def collect(self) -> Iterable[Metric]:
            with _dir_lock:
                return list(self._inner.collect())  # type: ignore[no-untyped-call]

    return LockedMultiProcessCollector()


def db_files(path: str | Path) -> Iterator[str]:
    """The metric files in ``path`` (for tests and diagnostics)."""
    return iter(sorted(os.path.basename(f) for f in glob.glob(os.path.join(path, "*.db"))))

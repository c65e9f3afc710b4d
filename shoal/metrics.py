"""Every metric a worker records, in one place, for prometheus-client's multiprocess mode.

How the pieces fit (see docs/metrics.md):

- The supervisor calls :func:`setup_multiprocess` *before it spawns any worker*. That makes a
  fresh directory and puts it in ``PROMETHEUS_MULTIPROC_DIR``. Workers start from a fresh
  interpreter (``spawn``) and inherit the variable, so it is set before prometheus_client is
  first imported there.
- prometheus_client decides once, when ``prometheus_client.values`` is first imported, whether
  values live in per-process mmap files (the variable is set) or in memory. So this module does
  not import prometheus_client at import time: importing ``shoal.metrics`` is always safe, and
  the mode is checked when :func:`configure` builds the metrics. A process where the variable
  is set but prometheus_client was imported before it was would record into memory, where the
  supervisor never sees it: :func:`configure` refuses that (:class:`MetricsError`).
- Each worker calls :func:`configure` first thing, then records through the module attribute
  ``record`` (``from shoal import metrics; metrics.record.events_processed(...)``; import the
  module, not the name, because :func:`configure` rebinds it). Until then, and with metrics
  off, ``record`` is a :class:`Recorder` whose methods do nothing, so a benchmark can compare
  on and off with the same call sites.
- When a worker process exits, the supervisor calls :func:`mark_worker_dead` with its pid:
  its live gauges go, its counters and histograms are folded into one archive file per type,
  so they stay summed (a restarted worker's counters keep growing from where the dead one
  stopped, as Prometheus expects) while the directory does not grow by a file per restart.
- The supervisor serves the directory through :func:`multiprocess_collector`
  (``shoal/supervisor/metrics_server.py``).

Series that follow partition ownership (lag, partitions owned) and per-process resources (RSS,
CPU, restarts) are not recorded here: the supervisor knows which worker owns what *now*, so it
renders them at scrape time and a moved partition leaves no stale series behind.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal.exceptions import ShoalError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"

#: Labels every series of this module starts with; the recorder fills them in.
BASE_LABELS = ("app", "worker")

#: An agent's handling of one event: mostly sub-millisecond, with a tail into seconds when it
#: awaits I/O.
PROCESSING_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Round trips through Kafka (asks, commits): milliseconds to the ask timeout.
ROUND_TRIP_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

# The archive and a scrape both read and rewrite files of the directory: one lock per process
# keeps a scrape from seeing a dead worker's counters twice (archive written, file not yet
# removed) or not at all.
_dir_lock = threading.Lock()


class MetricsError(ShoalError):
    """Metrics cannot be recorded the way they are configured."""


class Recorder:
    """What call sites record through. This base records nothing: metrics off, or not yet
    configured. Counts take ``n`` so a call site can count a whole batch in one call."""

    enabled = False

    def events_received(self, agent: str, topic: str, n: int = 1) -> None:
        """Events delivered to an agent's inbox (or a stream's)."""

    def events_processed(self, agent: str, topic: str, n: int = 1) -> None:
        """Events an agent finished (acked)."""

    def events_failed(self, agent: str, topic: str, n: int = 1) -> None:
        """Events whose handling raised in the agent."""

    def processing_time(self, agent: str, seconds: float) -> None:
        """Time an agent spent on one event."""

    def commit(self, seconds: float, ok: bool) -> None:
        """One commit round (the barrier excluded), successful or not."""

    def produce_error(self, topic: str) -> None:
        """A message the broker did not acknowledge."""

    def dead_lettered(self, topic: str, error: str) -> None:
        """An event sent to the dead-letter topic; ``topic`` is its source, ``error`` the
        exception type name (a small, code-bounded set)."""

    def dead_letter_truncated(self, topic: str) -> None:
        """A dead letter too large to copy as it was, sent cut short."""

    def ask_sent(self, agent: str) -> None:
        """A request produced by ``ask``."""

    def ask_reply(self, agent: str, seconds: float, error: bool = False) -> None:
        """A reply that reached its asker in time; ``seconds`` is the round trip."""

    def ask_timeout(self, agent: str) -> None:
        """An ask that raised AskTimeoutError."""

    def late_reply(self) -> None:
        """A reply nobody waited for any more, dropped."""

    def asks_pending(self, n: int) -> None:
        """Asks of this process waiting for their reply now."""

    def inbox_events(self, agent: str, n: int) -> None:
        """Events waiting in an agent's inbox now."""


class PrometheusRecorder(Recorder):
    """Records into prometheus_client metrics, registered in :attr:`registry` (a private
    registry, never the global one: a second :func:`configure` in one process, as tests do,
    must not collide with the first)."""

    enabled = True

    def __init__(self, app_id: str, worker: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry: CollectorRegistry = CollectorRegistry()
        self._base = (app_id, worker)
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, (*BASE_LABELS, *labels), registry=self.registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...], *labels: str) -> Histogram:
            return Histogram(
                name, doc, (*BASE_LABELS, *labels), buckets=buckets, registry=self.registry
            )

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            # livesum: a worker slot has one live process at a time, so the sum over live pids
            # is that process's value, under a series that keeps its identity across restarts
            # (no pid label, unlike liveall); a dead pid's file is removed by
            # mark_worker_dead, so its last value neither lingers nor adds up.
            return Gauge(
                name,
                doc,
                (*BASE_LABELS, *labels),
                multiprocess_mode="livesum",
                registry=self.registry,
            )

        self._received = counter(
            "shoal_events_received_total", "Events delivered to an agent.", "agent", "topic"
        )
        self._processed = counter(
            "shoal_events_processed_total", "Events an agent finished.", "agent", "topic"
        )
        self._failed = counter(
            "shoal_events_failed_total", "Events whose handling raised.", "agent", "topic"
        )
        self._processing = histogram(
            "shoal_processing_time_seconds",
            "Time an agent spent on one event.",
            PROCESSING_BUCKETS,
            "agent",
        )
        self._commits = counter("shoal_commits_total", "Offset commit rounds.", "result")
        self._commit_latency = histogram(
            "shoal_commit_latency_seconds",
            "Time to commit offsets, producer barrier excluded.",
            ROUND_TRIP_BUCKETS,
        )
        self._produce_errors = counter(
            "shoal_produce_errors_total", "Messages the broker did not acknowledge.", "topic"
        )
        self._dead_lettered = counter(
            "shoal_dead_lettered_total",
            "Events sent to the dead-letter topic, by source topic and error type.",
            "topic",
            "error",
        )
        self._dead_letters_truncated = counter(
            "shoal_dead_letters_truncated_total",
            "Dead letters too large to copy as they were, sent cut short.",
            "topic",
        )
        self._asks = counter("shoal_asks_total", "Requests sent with ask.", "agent")
        self._replies = counter(
            "shoal_ask_replies_total", "Replies received in time.", "agent", "result"
        )
        self._ask_timeouts = counter("shoal_ask_timeouts_total", "Asks that timed out.", "agent")
        self._ask_latency = histogram(
            "shoal_ask_latency_seconds",
            "Round trip of an ask, request produced to reply received.",
            ROUND_TRIP_BUCKETS,
            "agent",
        )
        self._late_replies = counter(
            "shoal_late_replies_total", "Replies that arrived after their ask gave up."
        )
        self._asks_pending = gauge("shoal_asks_pending", "Asks waiting for their reply.")
        self._inbox = gauge("shoal_inbox_events", "Events waiting in an agent's inbox.", "agent")

    def _child(self, metric: Any, *labels: str) -> Any:
        # labels() takes a lock and builds a tuple per call; the hot path looks up a dict.
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*self._base, *labels)
        return child

    def events_received(self, agent: str, topic: str, n: int = 1) -> None:
        self._child(self._received, agent, topic).inc(n)

    def events_processed(self, agent: str, topic: str, n: int = 1) -> None:
        self._child(self._processed, agent, topic).inc(n)

    def events_failed(self, agent: str, topic: str, n: int = 1) -> None:
        self._child(self._failed, agent, topic).inc(n)

    def processing_time(self, agent: str, seconds: float) -> None:
        self._child(self._processing, agent).observe(seconds)

    def commit(self, seconds: float, ok: bool) -> None:
        self._child(self._commits, "ok" if ok else "failed").inc()
        self._child(self._commit_latency).observe(seconds)

    def produce_error(self, topic: str) -> None:
        self._child(self._produce_errors, topic).inc()

    def dead_lettered(self, topic: str, error: str) -> None:
        self._child(self._dead_lettered, topic, error).inc()

    def dead_letter_truncated(self, topic: str) -> None:
        self._child(self._dead_letters_truncated, topic).inc()

    def ask_sent(self, agent: str) -> None:
        self._child(self._asks, agent).inc()

    def ask_reply(self, agent: str, seconds: float, error: bool = False) -> None:
        self._child(self._replies, agent, "error" if error else "ok").inc()
        self._child(self._ask_latency, agent).observe(seconds)

    def ask_timeout(self, agent: str) -> None:
        self._child(self._ask_timeouts, agent).inc()

    def late_reply(self) -> None:
        self._child(self._late_replies).inc()

    def asks_pending(self, n: int) -> None:
        self._child(self._asks_pending).set(n)

    def inbox_events(self, agent: str, n: int) -> None:
        self._child(self._inbox, agent).set(n)


#: The recorder of this process; :func:`configure` rebinds it.
record: Recorder = Recorder()


def worker_label(worker: int | str | None) -> str:
    """The ``worker`` label: the slot index (stable across restarts), or ``supervisor``."""
    return "supervisor" if worker is None else str(worker)


def multiprocess_dir() -> Path | None:
    path = os.environ.get(ENV_VAR)
    return Path(path) if path else None


def configure(*, app_id: str, worker: int | str | None, enabled: bool = True) -> Recorder:
    """Build this process's metrics (or the no-op recorder) and make it :data:`record`.

    Call it before the App starts recording, in each worker, after the supervisor has set
    :data:`ENV_VAR` (spawned workers inherit it). Without the variable, metrics live in
    :attr:`PrometheusRecorder.registry` of this process (single-process mode).
    """
    global record
    if not enabled:
        record = Recorder()
        return record
    from prometheus_client import values

    in_files = bool(getattr(values.ValueClass, "_multiprocess", False))
    if (multiprocess_dir() is not None) != in_files:
        raise MetricsError(
            f"{ENV_VAR} is {'set' if multiprocess_dir() else 'not set'} but prometheus_client "
            f"was imported {'without' if not in_files else 'with'} it: set the variable before "
            "prometheus_client is first imported in this process (the supervisor does it for "
            "its workers before spawning them)"
        )
    record = PrometheusRecorder(app_id, worker_label(worker))
    return record


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

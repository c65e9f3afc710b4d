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

from shoal.exceptions import ShoalError
from shoal.metrics.files import (
    ENV_VAR,
    db_files,
    mark_worker_dead,
    multiprocess_collector,
    multiprocess_dir,
    setup_multiprocess,
    teardown_multiprocess,
)
from shoal.metrics.prometheus import PrometheusRecorder
from shoal.metrics.recorder import BASE_LABELS, Recorder

__all__ = [
    "BASE_LABELS",
    "ENV_VAR",
    "MetricsError",
    "PrometheusRecorder",
    "Recorder",
    "configure",
    "db_files",
    "mark_worker_dead",
    "multiprocess_collector",
    "multiprocess_dir",
    "record",
    "setup_multiprocess",
    "teardown_multiprocess",
    "worker_label",
]


class MetricsError(ShoalError):
    """Metrics cannot be recorded the way they are configured."""


#: The recorder of this process; :func:`configure` rebinds it.
record: Recorder = Recorder()


def worker_label(worker: int | str | None) -> str:
    """The ``worker`` label: the slot index (stable across restarts), or ``supervisor``."""
    return "supervisor" if worker is None else str(worker)


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

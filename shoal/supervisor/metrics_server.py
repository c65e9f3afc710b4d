"""The host's ``/metrics``, served by the supervisor.

One HTTP endpoint per host (:mod:`shoal.supervisor.web`, which also serves ``/status``,
``/livez`` and ``/readyz``): the workers' metrics, summed from the multiprocess directory
(:func:`shoal.metrics.multiprocess_collector`), and the supervisor's own
(:class:`SupervisorMetrics`). The server runs in a daemon thread: a scrape never waits for
the supervisor's event loop, and a busy loop never delays a scrape.

The supervisor's series are rendered from plain state at scrape time instead of being
prometheus_client metrics: they describe what the supervisor knows *now* (which worker owns
which partition, which workers exist), so a partition that moved or a worker slot that was
scaled away simply stops being rendered, with no stale series to remove. It also keeps them
out of the multiprocess files whatever order prometheus_client and the environment variable
were set up in this process.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from shoal import metrics
from shoal.supervisor.status import SupervisorStatus
from shoal.supervisor.web import AddRoutes, HostWeb
from shoal.types import TP

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric


#: Why a worker was replaced; the supervisor's ``handle.cause`` values.
RESTART_CAUSES = ("crash", "stall", "memory")

log = logging.getLogger(__name__)


@dataclass
class _Worker:
    rss_bytes: int = 0
    cpu_percent: float = 0.0
    partitions: int = 0
    crash_streak: int = 0
    backoff_seconds: float = 0.0
    highs: dict[TP, int] = field(default_factory=dict)


class SupervisorMetrics(Collector):
    """What the supervisor knows about its workers and the group, as metrics.

    Setters are called from the supervisor's event loop; :meth:`collect` from the HTTP thread:
    a lock keeps a scrape from reading half an update.
    """

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self._lock = threading.Lock()
        self._workers: dict[int, _Worker] = {}
        self._restarts: defaultdict[tuple[int, str], int] = defaultdict(int)
        self._rebalances: defaultdict[str, int] = defaultdict(int)
        self._committed: dict[TP, int] = {}

    # -- setters (the supervisor's loop) -----------------------------------------------------

    def worker_sample(
        self,
        worker: int,
        *,
        rss_bytes: int,
        cpu_percent: float,
        partitions: int,
        crash_streak: int = 0,
        backoff_seconds: float = 0.0,
    ) -> None:
        """The per-second psutil sample of a worker, how many partitions it owns, and how it
        backs off when it keeps crashing."""
        with self._lock:
            state = self._workers.setdefault(worker, _Worker())
            state.rss_bytes, state.cpu_percent, state.partitions = (
                rss_bytes,
                cpu_percent,
                partitions,
            )
            state.crash_streak, state.backoff_seconds = crash_streak, backoff_seconds

    def worker_restarted(self, worker: int, cause: str) -> None:
        """A worker's process was replaced; ``cause``: crash, stall, memory (or another
        reason the supervisor gives, such as ``exit 0``)."""
        with self._lock:
            self._restarts[(worker, cause)] += 1
            state = self._workers.get(worker)
            if state is not None:
                state.highs.clear()  # its replacement reports its own on the first heartbeat

    def forget_worker(self, worker: int) -> None:
        """A worker slot that no longer exists (scaled down): its gauges go; its restart
        counts stay (a counter that vanishes would read as a reset)."""
        with self._lock:
            self._workers.pop(worker, None)

    def rebalance(self, kind: str) -> None:
        """A group callback ran (``assign`` or ``revoke``) or a local rescale moved
        partitions (``scale``)."""
        with self._lock:
            self._rebalances[kind] += 1

    def high_watermarks(self, worker: int, highs: Mapping[TP, int]) -> None:
        """The high watermarks of the partitions a worker owns (from its heartbeat). Replaces
        what that worker reported before, so a partition it gave up stops being rendered."""
        with self._lock:
            self._workers.setdefault(worker, _Worker()).highs = dict(highs)

    def committed(self, offsets: Mapping[TP, int]) -> None:
        """Offsets the group now has committed (after a commit, or read at assignment)."""
        with self._lock:
            self._committed.update(offsets)

    def forget_partitions(self, tps: Iterable[TP]) -> None:
        """Partitions this host no longer owns (group revoke): their lag is another host's."""
        with self._lock:
            for tp in tps:
                self._committed.pop(tp, None)
                for state in self._workers.values():
                    state.highs.pop(tp, None)

    # -- the scrape (HTTP thread) ------------------------------------------------------------

    def collect(self) -> Iterable[Metric]:
        app = self.app_id
        rss = GaugeMetricFamily(
            "shoal_worker_rss_bytes",
            "Resident memory of a worker (psutil).",
            labels=["app", "worker"],
        )
        cpu = GaugeMetricFamily(
            "shoal_worker_cpu_percent",
            "CPU use of a worker over the last sample (psutil; 100 = one core).",
            labels=["app", "worker"],
        )
        owned = GaugeMetricFamily(
            "shoal_partitions_owned", "Partitions a worker owns.", labels=["app", "worker"]
        )
        lag = GaugeMetricFamily(
            "shoal_consumer_lag",
            "High watermark minus committed offset, per partition owned by this host.",
            labels=["app", "worker", "topic", "partition"],
        )
        streak = GaugeMetricFamily(
            "shoal_worker_crash_streak",
            "Crashes in a row of a worker slot (0 once it ran worker_restart_backoff_reset).",
            labels=["app", "worker"],
        )
        backoff = GaugeMetricFamily(
            "shoal_worker_backoff_seconds",
            "Seconds until a crash-looping worker slot starts again (0: not backing off).",
            labels=["app", "worker"],
        )
        workers = GaugeMetricFamily("shoal_workers", "Worker slots of this host.", labels=["app"])
        restarts = CounterMetricFamily(
            "shoal_worker_restarts",
            "Worker processes replaced, by cause.",
            labels=["app", "worker", "cause"],
        )
        rebalances = CounterMetricFamily(
            "shoal_rebalances",
            "Partition moves: group assign/revoke callbacks and local rescales.",
            labels=["app", "kind"],
        )
        with self._lock:
            workers.add_metric([app], len(self._workers))
            for index, state in sorted(self._workers.items()):
                label = str(index)
                rss.add_metric([app, label], state.rss_bytes)
                cpu.add_metric([app, label], state.cpu_percent)
                owned.add_metric([app, label], state.partitions)
                streak.add_metric([app, label], state.crash_streak)
                backoff.add_metric([app, label], state.backoff_seconds)
                for (topic, partition), high in sorted(state.highs.items()):
                    done = self._committed.get((topic, partition))
                    if done is not None and high >= 0 and done >= 0:
                        lag.add_metric([app, label, topic, str(partition)], max(0, high - done))
            for cause in RESTART_CAUSES:  # zeros too: rate() needs the series before the 1st
                for index in self._workers:
                    self._restarts.setdefault((index, cause), 0)
            for (index, cause), count in sorted(self._restarts.items()):
                restarts.add_metric([app, str(index), cause], count)
            for kind, count in sorted(self._rebalances.items()):
                rebalances.add_metric([app, kind], count)
        return [rss, cpu, owned, lag, streak, backoff, workers, restarts, rebalances]


class MetricsServer:
    """``/metrics`` of this host over HTTP, from a daemon thread."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str | Path | None,
        *,
        app_id: str,
        views: AddRoutes | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.supervisor = SupervisorMetrics(app_id)
        self.registry.register(self.supervisor)
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.registry.register(metrics.multiprocess_collector(self.path))
        self.web = HostWeb(host, port, self.registry, views)
        self.host = host
        self.port = port

    def start(self) -> None:
        self.web.start()
        self.port = self.web.port  # the real one when asked for port 0

    def publish(self, status: SupervisorStatus) -> None:
        """The supervisor's status of this second, for /status, /livez and /readyz."""
        self.web.publish(status)

    def worker_exited(self, pid: int) -> None:
        """Bookkeeping for a dead worker's files (see :func:`shoal.metrics.mark_worker_dead`)."""
        if self.path is not None:
            metrics.mark_worker_dead(pid, self.path)

    @property
    def url(self) -> str:
        return f"{self.web.url}/metrics"

    def stop(self) -> None:
        self.web.stop()


def start_for_host(
    host: str, port: int, path: Path | None, *, app_id: str, views: AddRoutes | None = None
) -> MetricsServer | None:
    """The host's web server, before any worker starts (they inherit the metrics directory,
    ``path``; None: metrics are off).

    A port in use is logged and None returned: the cluster runs on without the endpoint,
    since metrics and views matter, but not more than processing the events."""
    if path is not None:
        metrics.setup_multiprocess(path)
    server = MetricsServer(host, port, path, app_id=app_id, views=views)
    try:
        server.start()
    except OSError as exc:
        log.error(
            "cannot serve the host's web endpoint on %s:%d (%s): running without /metrics "
            "and the app's pages; set web_port to a free port (0 picks one) or "
            "web_enabled = false",
            host,
            port,
            exc,
        )
        return None
    log.info(
        "web endpoint on %s: /metrics, /status, /livez, /readyz%s",
        server.web.url,
        ", /router, /table and the app's pages" if views is not None else "",
    )
    return server


def start(host: str, port: int, path: str | Path | None, *, app_id: str) -> MetricsServer:
    """Serve ``/metrics`` on ``host:port`` (port 0: any free port, see ``server.port``).

    ``path`` is the multiprocess directory the workers write to (``None``: the supervisor's
    own series only; a single-process app can register its recorder's registry in
    ``server.registry``).
    """
    server = MetricsServer(host, port, path, app_id=app_id)
    server.start()
    return server

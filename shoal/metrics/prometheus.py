"""The recorder of a process whose metrics are on: prometheus_client metrics, in the
multiprocess directory the supervisor serves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shoal.metrics.recorder import BASE_LABELS, PROCESSING_BUCKETS, ROUND_TRIP_BUCKETS, Recorder

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


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
        self._recovered = counter(
            "shoal_table_recovered_records_total",
            "Changelog records replayed into table stores.",
            "table",
        )
        self._recovery_left = gauge(
            "shoal_table_recovery_records_left",
            "Changelog records a running table recovery has still to replay.",
        )
        self._recovery_rate = gauge(
            "shoal_table_recovery_records_per_second", "The rate of the running table recovery."
        )

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

    def recovery(self, done: dict[str, int], left: int, rate: float) -> None:
        for table, n in done.items():
            if n:
                self._child(self._recovered, table).inc(n)
        self._child(self._recovery_left).set(left)
        self._child(self._recovery_rate).set(rate)

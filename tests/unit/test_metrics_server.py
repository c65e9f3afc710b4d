"""The supervisor's /metrics: workers' files summed, its own series rendered, over HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shoal import metrics
from shoal.supervisor import metrics_server
from shoal.supervisor.metrics_server import MetricsServer
from tests.unit.test_metrics import APP, run_worker

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fetch(server: MetricsServer) -> tuple[str, Series]:
    with urllib.request.urlopen(server.url, timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return content_type, series


def value(series: Series, name: str, **labels: str) -> float | None:
    return series.get((name, frozenset(labels.items())))


@pytest.fixture
def mpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(metrics.ENV_VAR, raising=False)
    return metrics.setup_multiprocess(tmp_path / "metrics")


@pytest.fixture
def server(mpdir: Path) -> Iterator[MetricsServer]:
    served = metrics_server.start("127.0.0.1", 0, mpdir, app_id=APP)
    try:
        yield served
    finally:
        served.stop()


def test_serves_the_workers_metrics_summed(server: MetricsServer) -> None:
    assert server.port > 0
    run_worker(0, processed=5)
    run_worker(1, processed=7)

    content_type, series = fetch(server)
    assert content_type.startswith("text/plain")
    labels = {"app": APP, "agent": "count", "topic": "orders"}
    assert value(series, "shoal_events_received_total", worker="0", **labels) == 5
    assert value(series, "shoal_events_received_total", worker="1", **labels) == 7


def test_a_dead_worker_keeps_its_counts_through_the_server(server: MetricsServer) -> None:
    pid = run_worker(0, processed=5, pending=4)
    server.worker_exited(pid)
    run_worker(0, processed=1, pending=2)  # its replacement, still "running" (files kept)

    _, series = fetch(server)
    labels = {"app": APP, "worker": "0", "agent": "count", "topic": "orders"}
    assert value(series, "shoal_events_processed_total", **labels) == 6
    assert value(series, "shoal_asks_pending", app=APP, worker="0") == 2


def test_the_supervisors_own_series(server: MetricsServer) -> None:
    sup = server.supervisor
    sup.worker_sample(0, rss_bytes=50_000_000, cpu_percent=12.5, partitions=2)
    sup.worker_sample(1, rss_bytes=60_000_000, cpu_percent=80.0, partitions=1)
    sup.worker_restarted(1, "memory")
    sup.worker_restarted(1, "memory")
    sup.worker_restarted(0, "crash")
    sup.rebalance("assign")
    sup.committed({("orders", 0): 100, ("orders", 2): 40})
    sup.high_watermarks(0, {("orders", 0): 130, ("orders", 2): 40})
    sup.high_watermarks(1, {("orders", 1): 10})  # nothing committed for it yet: no guess

    _, series = fetch(server)
    w0, w1 = {"app": APP, "worker": "0"}, {"app": APP, "worker": "1"}
    assert value(series, "shoal_worker_rss_bytes", **w1) == 60_000_000
    assert value(series, "shoal_worker_cpu_percent", **w0) == 12.5
    assert value(series, "shoal_partitions_owned", **w0) == 2
    assert value(series, "shoal_workers", app=APP) == 2
    assert value(series, "shoal_worker_restarts_total", cause="memory", **w1) == 2
    assert value(series, "shoal_worker_restarts_total", cause="crash", **w0) == 1
    assert value(series, "shoal_worker_restarts_total", cause="stall", **w0) == 0
    assert value(series, "shoal_rebalances_total", app=APP, kind="assign") == 1
    assert value(series, "shoal_consumer_lag", topic="orders", partition="0", **w0) == 30
    assert value(series, "shoal_consumer_lag", topic="orders", partition="2", **w0) == 0
    assert value(series, "shoal_consumer_lag", topic="orders", partition="1", **w1) is None

    # Partition 2 moves to worker 1 (scale); then the group takes partition 0 away.
    sup.high_watermarks(0, {("orders", 0): 150})
    sup.high_watermarks(1, {("orders", 1): 10, ("orders", 2): 45})
    sup.forget_partitions([("orders", 0)])
    sup.forget_worker(0)  # scaled down to one worker

    _, series = fetch(server)
    lags = {lbls for (name, lbls) in series if name == "shoal_consumer_lag"}
    assert lags == {frozenset({**w1, "topic": "orders", "partition": "2"}.items())}
    assert value(series, "shoal_consumer_lag", topic="orders", partition="2", **w1) == 5
    assert value(series, "shoal_worker_rss_bytes", **w0) is None
    assert value(series, "shoal_workers", app=APP) == 1
    # A counter that vanished would read as a reset: restarts of slot 0 stay.
    assert value(series, "shoal_worker_restarts_total", cause="crash", **w0) == 1


def test_stop_closes_the_port(mpdir: Path) -> None:
    served = metrics_server.start("127.0.0.1", 0, mpdir, app_id=APP)
    fetch(served)
    served.stop()
    served.stop()  # idempotent: the supervisor's shutdown may run it from two paths
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(served.url, timeout=5)


def test_without_a_directory_only_the_supervisor_series(tmp_path: Path) -> None:
    served = metrics_server.start("127.0.0.1", 0, None, app_id=APP)
    try:
        served.supervisor.worker_sample(0, rss_bytes=1, cpu_percent=0.0, partitions=0)
        _, series = fetch(served)
        assert value(series, "shoal_worker_rss_bytes", app=APP, worker="0") == 1
        assert not any(name.startswith("shoal_events") for (name, _) in series)
    finally:
        served.stop()


def test_the_dashboard_uses_only_defined_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import re

    from prometheus_client import values

    if getattr(values.ValueClass, "_multiprocess", False):
        pytest.skip("this test process itself runs prometheus_client in multiprocess mode")
    monkeypatch.delenv(metrics.ENV_VAR, raising=False)
    monkeypatch.setattr(metrics, "record", metrics.record)  # put back after the test
    record = metrics.configure(app_id=APP, worker=0)
    assert isinstance(record, metrics.PrometheusRecorder)
    families = [*record.registry.collect(), *metrics_server.SupervisorMetrics(APP).collect()]
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    defined = {f.name + s for f in families for s in suffixes[f.type]}

    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "ops" / "grafana" / "shoal-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bshoal_[a-z_]+", expr)}
    assert used and used <= defined, used - defined

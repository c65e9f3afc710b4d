"""shoal.metrics in multiprocess mode, with real spawned processes writing the files.

Each child is what a worker does: it inherits PROMETHEUS_MULTIPROC_DIR from its parent, calls
configure, records and exits. The parent reads the directory as the supervisor does.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shoal import metrics

SPAWN = multiprocessing.get_context("spawn")
APP = "orders-app"

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _worker_body(worker: int, processed: int, pending: int) -> None:
    """A worker's life in miniature (runs in a spawned child)."""
    record = metrics.configure(app_id=APP, worker=worker)
    record.events_received("count", "orders", processed)
    record.events_processed("count", "orders", processed)
    record.processing_time("count", 0.002)
    record.processing_time("count", 3.0)
    record.asks_pending(pending)


def run_worker(worker: int, processed: int, pending: int = 1) -> int:
    """Run one short-lived worker process to its end; returns its pid."""
    process = SPAWN.Process(target=_worker_body, args=(worker, processed, pending))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert process.pid is not None
    return process.pid


def scrape(path: Path) -> Series:
    registry = CollectorRegistry()
    registry.register(metrics.multiprocess_collector(path))
    text = generate_latest(registry).decode()
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(series: Series, name: str, **labels: str) -> float | None:
    return series.get((name, frozenset(labels.items())))


@pytest.fixture
def mpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A multiprocess directory exported the way the supervisor does it; undone afterwards."""
    monkeypatch.delenv(metrics.ENV_VAR, raising=False)  # monkeypatch restores the original
    path = metrics.setup_multiprocess(tmp_path / "metrics")
    assert os.environ[metrics.ENV_VAR] == str(path)
    yield path


@pytest.fixture(autouse=True)
def no_recorder() -> Iterator[None]:
    yield
    metrics.configure(app_id="", worker=None, enabled=False)


def test_two_workers_are_summed_and_dead_live_gauges_disappear(mpdir: Path) -> None:
    pid0 = run_worker(0, processed=5, pending=2)
    pid1 = run_worker(1, processed=7, pending=3)

    series = scrape(mpdir)
    processed = "shoal_events_processed_total"
    labels = {"app": APP, "agent": "count", "topic": "orders"}
    assert value(series, processed, worker="0", **labels) == 5
    assert value(series, processed, worker="1", **labels) == 7
    assert value(series, "shoal_asks_pending", app=APP, worker="0") == 2
    assert value(series, "shoal_asks_pending", app=APP, worker="1") == 3
    # livesum drops the pid label: one series per worker slot, not one per process.
    assert all("pid" not in dict(lbls) for (_, lbls) in series)

    metrics.mark_worker_dead(pid0, mpdir)

    series = scrape(mpdir)
    assert value(series, "shoal_asks_pending", app=APP, worker="0") is None
    assert value(series, "shoal_asks_pending", app=APP, worker="1") == 3
    assert value(series, processed, worker="0", **labels) == 5  # counters outlive the process
    assert value(series, processed, worker="1", **labels) == 7
    files = set(metrics.db_files(mpdir))
    assert f"counter_{pid0}.db" not in files and "counter_archive.db" in files
    assert f"counter_{pid1}.db" in files


def test_a_restarted_worker_continues_its_counters_without_double_counting(
    mpdir: Path,
) -> None:
    first = run_worker(0, processed=5)
    metrics.mark_worker_dead(first, mpdir)
    second = run_worker(0, processed=7)

    series = scrape(mpdir)
    labels = {"app": APP, "worker": "0", "agent": "count"}
    assert value(series, "shoal_events_processed_total", topic="orders", **labels) == 12
    assert value(series, "shoal_processing_time_seconds_count", **labels) == 4

    # Archiving the second one too merges into the same archive: the totals do not move.
    metrics.mark_worker_dead(second, mpdir)
    metrics.mark_worker_dead(second, mpdir)  # a repeated call finds nothing left to merge
    after = scrape(mpdir)
    assert value(after, "shoal_events_processed_total", topic="orders", **labels) == 12
    hist = "shoal_processing_time_seconds"
    assert value(after, f"{hist}_count", **labels) == 4
    assert value(after, f"{hist}_sum", **labels) == pytest.approx(2 * (0.002 + 3.0))
    # Buckets stay cumulative after being stored per bucket in the archive.
    assert value(after, f"{hist}_bucket", le="0.0025", **labels) == 2
    assert value(after, f"{hist}_bucket", le="2.5", **labels) == 2
    assert value(after, f"{hist}_bucket", le="5.0", **labels) == 4
    assert value(after, f"{hist}_bucket", le="+Inf", **labels) == 4
    assert value(after, "shoal_asks_pending", app=APP, worker="0") is None
    assert set(metrics.db_files(mpdir)) == {"counter_archive.db", "histogram_archive.db"}


def test_setup_multiprocess_starts_from_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"left by an earlier run")
    (tmp_path / "notes.txt").write_text("not ours")
    try:
        path = metrics.setup_multiprocess(tmp_path)
        assert list(metrics.db_files(path)) == []
        assert (tmp_path / "notes.txt").exists()
    finally:
        metrics.teardown_multiprocess(tmp_path)
    assert metrics.ENV_VAR not in os.environ
    assert not tmp_path.exists()


def test_configure_refuses_a_variable_set_after_prometheus_client_was_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client import values

    if getattr(values.ValueClass, "_multiprocess", False):
        pytest.skip("this test process itself runs prometheus_client in multiprocess mode")
    monkeypatch.setenv(metrics.ENV_VAR, str(tmp_path))
    with pytest.raises(metrics.MetricsError, match="before prometheus_client is first imported"):
        metrics.configure(app_id=APP, worker=0)
    assert not metrics.record.enabled


def test_in_process_mode_records_into_the_recorders_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prometheus_client import values

    if getattr(values.ValueClass, "_multiprocess", False):
        pytest.skip("this test process itself runs prometheus_client in multiprocess mode")
    monkeypatch.delenv(metrics.ENV_VAR, raising=False)
    record = metrics.configure(app_id=APP, worker=2)
    assert metrics.record is record and record.enabled
    assert isinstance(record, metrics.PrometheusRecorder)
    record.ask_sent("adder")
    record.ask_reply("adder", 0.01)
    record.ask_reply("adder", 0.02, error=True)
    record.ask_timeout("adder")
    record.late_reply()
    record.commit(0.004, ok=True)
    record.commit(0.5, ok=False)
    record.dead_lettered("orders", "DecodeError")
    record.produce_error("totals")
    record.events_failed("count", "orders")
    record.inbox_events("count", 9)
    registry = record.registry
    base = {"app": APP, "worker": "2"}
    assert registry.get_sample_value("shoal_asks_total", {**base, "agent": "adder"}) == 1
    assert (
        registry.get_sample_value(
            "shoal_ask_replies_total", {**base, "agent": "adder", "result": "error"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("shoal_ask_latency_seconds_count", {**base, "agent": "adder"})
        == 2
    )
    assert registry.get_sample_value("shoal_ask_timeouts_total", {**base, "agent": "adder"}) == 1
    assert registry.get_sample_value("shoal_late_replies_total", base) == 1
    assert registry.get_sample_value("shoal_commits_total", {**base, "result": "failed"}) == 1
    assert registry.get_sample_value("shoal_commit_latency_seconds_count", base) == 2
    assert (
        registry.get_sample_value(
            "shoal_dead_lettered_total", {**base, "topic": "orders", "error": "DecodeError"}
        )
        == 1
    )
    assert registry.get_sample_value("shoal_produce_errors_total", {**base, "topic": "totals"}) == 1
    assert (
        registry.get_sample_value(
            "shoal_events_failed_total", {**base, "agent": "count", "topic": "orders"}
        )
        == 1
    )
    assert registry.get_sample_value("shoal_inbox_events", {**base, "agent": "count"}) == 9

    # A second configure (a second App in one process) builds a fresh registry: no clash.
    again = metrics.configure(app_id=APP, worker=2)
    assert again is not record


def test_metrics_off_records_nothing() -> None:
    record = metrics.configure(app_id=APP, worker=0, enabled=False)
    assert metrics.record is record
    assert not record.enabled
    assert type(record) is metrics.Recorder
    record.events_processed("count", "orders", 3)  # accepted and dropped
    record.processing_time("count", 0.1)


def test_worker_label() -> None:
    assert metrics.worker_label(None) == "supervisor"
    assert metrics.worker_label(3) == "3"

"""The host's HTTP endpoint without a broker: /metrics, /status, /livez, /readyz, errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from shoal.supervisor import web as web_module
from shoal.supervisor.status import SupervisorStatus, WorkerStatus
from shoal.supervisor.web import HostWeb


def worker(index: int, state: str = "running", recovering: int = 0) -> WorkerStatus:
    return WorkerStatus(
        index=index,
        pid=1000 + index,
        started_at=0.0,
        restarts=0,
        rss_bytes=1,
        cpu_percent=0.0,
        partitions=["t[0]"],
        events_per_s=0.0,
        lag=0,
        state=state,
        recovering=recovering,
    )


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def server() -> Iterator[HostWeb]:
    registry = CollectorRegistry()
    Counter("shoal_test_total", "A counter.", registry=registry).inc(3)
    host = HostWeb("127.0.0.1", 0, registry)
    host.start()
    try:
        yield host
    finally:
        host.stop()


def test_metrics_status_and_errors(server: HostWeb) -> None:
    assert server.port > 0
    code, headers, body = get(f"{server.url}/metrics")
    assert code == 200 and b"shoal_test_total 3.0" in body
    assert headers["Content-Type"].startswith("text/plain")
    code, headers, _ = get(f"{server.url}/status")
    assert code == 503 and headers["Retry-After"] == "2"  # nothing published yet
    server.publish(SupervisorStatus(app_id="a", pid=1, started_at=0.0, workers=[worker(0)]))
    code, _, body = get(f"{server.url}/status")
    status: dict[str, Any] = json.loads(body)
    assert code == 200 and status["app_id"] == "a" and status["workers"][0]["pid"] == 1000
    code, _, body = get(f"{server.url}/nowhere")
    assert code == 404 and "/readyz" in json.loads(body)["routes"]


def test_ready_once_every_worker_runs_and_none_recovers(server: HostWeb) -> None:
    def readyz() -> tuple[int, dict[str, Any]]:
        code, _, body = get(f"{server.url}/readyz")
        return code, json.loads(body)

    assert readyz()[0] == 503
    server.publish(
        SupervisorStatus(
            app_id="a",
            pid=1,
            started_at=0.0,
            workers=[worker(0, recovering=1200), worker(1, state="starting")],
        )
    )
    code, body = readyz()
    assert code == 503
    assert body["waiting"] == [
        "worker 0 is recovering its tables (1200 changelog records left)",
        "worker 1 is starting",
    ]
    server.publish(
        SupervisorStatus(app_id="a", pid=1, started_at=0.0, workers=[worker(0), worker(1)])
    )
    assert readyz() == (200, {"ready": True})


def test_live_while_the_supervisor_publishes(
    server: HostWeb, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.publish(SupervisorStatus(app_id="a", pid=1, started_at=0.0, workers=[worker(0)]))
    assert get(f"{server.url}/livez")[0] == 200
    monkeypatch.setattr(web_module, "LIVE_WITHIN", -1.0)  # as if the loop went silent
    code, _, body = get(f"{server.url}/livez")
    assert code == 503 and json.loads(body)["live"] is False


def test_a_taken_port_is_an_error(server: HostWeb) -> None:
    other = HostWeb("127.0.0.1", server.port, CollectorRegistry())
    with pytest.raises(OSError):
        other.start()

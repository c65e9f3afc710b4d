"""The host's /metrics under load: counts add up, lag drains, a restart keeps the counts."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import wait_until_sync
from tests.processes import Clusterctl, OutputReader, numbers_env, produce_numbers

pytestmark = pytest.mark.kafka
AGENT = "tests.apps.numbers_app.numbers"


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of the endpoint, by name (parsed with prometheus_client's own parser)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: defaultdict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), sample.value))
    return samples


def total(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(
        value
        for found, value in samples.get(name, [])
        if all(found.get(k) == v for k, v in labels.items())
    )


def test_metrics_add_up_drain_and_survive_a_restart(kafka_bootstrap: str, unique: str) -> None:
    env = numbers_env(kafka_bootstrap, unique, partitions=4)
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "2", env=env)
    reader = OutputReader(kafka_bootstrap, env["NUMBERS_OUT"])
    try:
        supervisor.wait_for("this host owns 4 partitions over 2 workers")
        url = supervisor.web_url() + "/metrics"
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(3000))
        reader.read_until(3000, 60)
        wait_until_sync(
            lambda: total(scrape(url), "shoal_events_processed_total", agent=AGENT) == 3000,
            30,
            "3000 processed events in /metrics",
        )
        samples = scrape(url)
        assert total(samples, "shoal_events_received_total", agent=AGENT) == 3000
        per_worker = {
            labels["worker"]: value
            for labels, value in samples["shoal_events_processed_total"]
            if labels.get("agent") == AGENT
        }
        assert set(per_worker) == {"0", "1"} and sum(per_worker.values()) == 3000
        assert total(samples, "shoal_worker_rss_bytes") > 0
        # Sampled once a second, as the memory is: the sample after the assignment.
        wait_until_sync(
            lambda: total(scrape(url), "shoal_partitions_owned") == 4 + 1,  # + the leader's
            10,
            "the owned partitions in /metrics",
        )
        wait_until_sync(
            lambda: (lag := scrape(url).get("shoal_consumer_lag")) and sum(v for _, v in lag) == 0,
            30,
            "lag to fall to 0",
        )

        # A killed worker's counts stay (archived), its replacement continues the series.
        victim = next(
            int(m.group(1))
            for line in supervisor.lines
            if (m := re.search(r"started worker 0 \(pid (\d+)\)", line))
        )
        os.kill(victim, signal.SIGKILL)
        supervisor.wait_for("is ready", count=3)  # two at start, then the replacement
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(3000, 4000))
        reader.read_until(4000, 60)
        wait_until_sync(
            lambda: total(scrape(url), "shoal_events_processed_total", agent=AGENT) >= 4000,
            30,
            "4000 processed events in /metrics",
        )
        samples = scrape(url)
        # Nothing was in flight when it died: no reprocessing, so exactly 4000.
        assert total(samples, "shoal_events_processed_total", agent=AGENT) == 4000
        assert total(samples, "shoal_worker_restarts_total", cause="crash") == 1
    finally:
        code = supervisor.stop()
        reader.close()
    assert code == 0, supervisor.log()


def test_the_host_endpoint_says_status_liveness_and_readiness(
    kafka_bootstrap: str, unique: str
) -> None:
    env = numbers_env(kafka_bootstrap, unique, partitions=4)
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "2", env=env)
    try:
        base = supervisor.web_url()

        def get(path: str) -> tuple[int, dict[str, Any]]:
            try:
                with urllib.request.urlopen(base + path, timeout=10) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        wait_until_sync(lambda: get("/readyz")[0] == 200, 60, "the host to be ready")
        code, status = get("/status")
        assert code == 200 and status["app_id"] == unique
        assert sorted(w["index"] for w in status["workers"]) == [0, 1]
        code, live = get("/livez")
        assert code == 200 and live["live"] is True, live
        # A worker killed: its replacement shows in /status, and the host is ready again.
        victim = status["workers"][0]["pid"]
        os.kill(victim, signal.SIGKILL)
        wait_until_sync(
            lambda: get("/status")[1]["workers"][0]["restarts"] == 1, 30, "the replacement"
        )
        wait_until_sync(lambda: get("/readyz")[0] == 200, 60, "ready again")
        assert get("/status")[1]["workers"][0]["pid"] != victim
    finally:
        assert supervisor.stop() == 0, supervisor.log()

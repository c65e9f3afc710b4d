"""Test harness: one real Kafka broker for the whole run, unique topics and groups per test.

The broker is the one ``ops/test`` started (``SHOAL_TEST_BROKER=host:port``). Without it, the
first test that needs Kafka starts one with ``ops/kafka/broker.py`` on port 19092 (or
``SHOAL_TEST_KAFKA_PORT``) and leaves it running for the next run; a file lock keeps
pytest-xdist workers from starting two.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from shoal.cluster.devbroker import broker as broker_ops

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``host:port`` of the shared test broker."""
    given = os.environ.get("SHOAL_TEST_BROKER")
    if given:
        return given
    port = int(os.environ.get("SHOAL_TEST_KAFKA_PORT", "19092"))
    ops = broker_ops
    lock_path = ROOT / ".cache" / "kafka-test.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = ops.up(port, quiet=True)
    bootstrap = str(info.bootstrap)
    os.environ["SHOAL_TEST_BROKER"] = bootstrap
    return bootstrap


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A name no other test (or earlier run) uses: for topics, group ids and app ids."""
    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:40]
    return f"t-{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def topic_factory(admin: AdminClient, unique: str) -> Callable[..., str]:
    """Create a topic with a unique name: ``topic_factory('orders', partitions=4)``."""
    counter = iter(range(1000))

    def create(suffix: str = "topic", partitions: int = 1) -> str:
        name = f"{unique}-{suffix}-{next(counter)}"
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions)])
        futures[name].result(30)
        return name

    return create


@pytest.fixture
def app_factory(kafka_bootstrap: str, unique: str) -> Iterator[Callable[..., Any]]:
    """Build shoal Apps on the test broker with unique ids (so unique consumer groups)."""
    import shoal

    counter = iter(range(1000))

    def make(**settings: Any) -> shoal.App:
        settings.setdefault("broker", f"kafka://{kafka_bootstrap}")
        settings.setdefault("topic_partitions", 4)
        settings.setdefault("broker_commit_interval", 0.5)
        return shoal.App(f"{unique}-{next(counter)}", **settings)

    yield make


@pytest.fixture
async def running() -> AsyncIterator[Callable[..., Any]]:
    """Start apps as workers in this event loop; stop them at the end of the test."""
    started: list[Any] = []

    async def start(app: Any) -> Any:
        await app.start()
        started.append(app)
        return app

    yield start
    for app in reversed(started):
        await app.stop()

"""ops/kafka/broker.py against real brokers: up, produce/consume, two side by side, down."""

from __future__ import annotations

import socket
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from shoal.cluster.devbroker import broker as broker_ops

# ops/kafka/broker.py, loaded the way `clusterctl kafka` loads it.
ops: Any = broker_ops
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


def _free_ports(count: int) -> list[int]:
    """Distinct ports the OS says are free now (all held open together, then released)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def _roundtrip(bootstrap: str) -> None:
    topic, payload = f"ops-smoke-{uuid.uuid4().hex[:8]}", uuid.uuid4().bytes
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"k", value=payload)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            assert (msg.key(), msg.value()) == (b"k", payload)
            return
        pytest.fail(f"no message consumed from {topic} within 60 s")
    finally:
        consumer.close()


def test_up_roundtrip_two_brokers_down(tmp_path: Path) -> None:
    port1, cport1, port2, cport2 = _free_ports(4)
    data1, data2 = tmp_path / "b1", tmp_path / "b2"
    try:
        first = ops.up(port1, controller_port=cport1, data_dir=data1, timeout=120)
        assert first.bootstrap == f"127.0.0.1:{port1}"
        assert (first.port, first.controller_port, first.data_dir) == (port1, cport1, data1)
        assert first.log_file.is_file() and first.pid > 0
        assert ops.is_answering("127.0.0.1", port1, 2.0)
        assert ops.status(port1, data_dir=data1) == first
        # Idempotent: a second `up` finds the running broker and starts nothing.
        assert ops.up(port1, controller_port=cport1, data_dir=data1, quiet=True).pid == first.pid

        _roundtrip(first.bootstrap)

        second = ops.up(port2, controller_port=cport2, data_dir=data2, timeout=120)
        assert second.pid != first.pid
        assert ops.is_answering("127.0.0.1", port1, 2.0)
        assert ops.is_answering("127.0.0.1", port2, 2.0)

        assert ops.down(port2, data_dir=data2) is True
        assert not ops.is_answering("127.0.0.1", port2, 2.0)
        assert ops.status(port2, data_dir=data2) is None
        assert not (data2 / "broker.pid").exists()
        assert ops.is_answering("127.0.0.1", port1, 2.0)
        _roundtrip(first.bootstrap)

        assert ops.down(port1, data_dir=data1) is True
        assert not ops.is_answering("127.0.0.1", port1, 2.0)
        assert ops.down(port1, data_dir=data1) is False  # nothing left to stop
    finally:
        ops.down(port2, data_dir=data2, quiet=True)
        ops.down(port1, data_dir=data1, quiet=True)


def test_restart_keeps_data(tmp_path: Path) -> None:
    """A second `up` on a formatted data dir skips formatting and starts again."""
    port, cport = _free_ports(2)
    try:
        ops.up(port, controller_port=cport, data_dir=tmp_path, timeout=120, quiet=True)
        meta = (tmp_path / "log" / "meta.properties").read_text()
        assert ops.down(port, data_dir=tmp_path, quiet=True)
        ops.up(port, controller_port=cport, data_dir=tmp_path, timeout=120, quiet=True)
        assert (tmp_path / "log" / "meta.properties").read_text() == meta
        assert ops.is_answering("127.0.0.1", port, 2.0)
    finally:
        ops.down(port, data_dir=tmp_path, quiet=True)

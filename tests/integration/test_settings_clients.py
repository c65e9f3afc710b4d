"""librdkafka takes every client setting shoal maps from Faust's names, and a message goes
through a producer and a consumer built from them."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer

from shoal.config import load_settings
from shoal.kafka.clients import consumer_config, producer_config

pytestmark = pytest.mark.kafka


def test_clients_built_from_faust_settings_work(
    kafka_bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic = topic_factory("settings")
    conf = load_settings(
        {
            "id": unique,
            "broker": f"aiokafka://{kafka_bootstrap}",
            "broker_client_id": f"{unique}-client",
            "producer_acks": -1,
            "producer_linger": 0.001,
            "producer_compression_type": "zstd",
            "producer_max_batch_size": 65536,
            "producer_max_request_size": 2_000_000,
            "producer_request_timeout": 30,
            "broker_request_timeout": 20,
            "producer_metadata_max_age_ms": 60_000,
            "producer_connections_max_idle_ms": 540_000,
            "consumer_auto_offset_reset": "earliest",
            "consumer_group_instance_id": f"{unique}-member",
            "consumer_max_fetch_size": 65536,
            "broker_heartbeat_interval": 1,
            "broker_session_timeout": 10,
            "broker_max_poll_interval": 60,
            "broker_check_crcs": True,
            "consumer_metadata_max_age_ms": 60_000,
            "consumer_connections_max_idle_ms": 540_000,
        },
        env={},
        config_file=False,
    )
    producer = Producer(producer_config(conf, "unused", wait_out_outages=False))
    producer.produce(topic, b"value", b"key")
    assert producer.flush(30) == 0
    consumer = Consumer(consumer_config(conf, "unused", unique))
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        message = None
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error():
                raise AssertionError(message.error())
        assert message is not None, "no message within 30 s"
        assert (message.key(), message.value()) == (b"key", b"value")
    finally:
        consumer.close()

"""Faust's client settings reach librdkafka under librdkafka's names."""

from __future__ import annotations

from typing import Any

from shoal.config import Settings, load_settings
from shoal.kafka.clients import consumer_config, producer_config


def settings(**kwargs: Any) -> Settings:
    return load_settings({"id": "orders", **kwargs}, env={}, config_file=False)


def test_defaults_keep_librdkafka_s_behaviour() -> None:
    conf = settings()
    producer = producer_config(conf, "shoal-orders", wait_out_outages=True)
    assert producer["client.id"] == "shoal-orders"
    assert producer["message.timeout.ms"] == 0
    assert "compression.type" not in producer
    assert "connections.max.idle.ms" not in producer
    consumer = consumer_config(conf, "shoal-orders", "orders")
    assert consumer["auto.offset.reset"] == "earliest"
    assert consumer["max.poll.interval.ms"] == 300_000
    assert "group.instance.id" not in consumer


def test_producer_settings() -> None:
    conf = settings(
        broker="kafka://all:1",
        broker_producer="aiokafka://out:2",
        broker_client_id="billing",
        producer_acks=1,
        producer_linger=0.05,
        producer_compression_type="zstd",
        producer_max_batch_size=65536,
        producer_max_request_size=2_000_000,
        producer_request_timeout=90,
        broker_request_timeout=45,
        producer_metadata_max_age_ms=60_000,
        producer_connections_max_idle_ms=540_000,
    )
    config = producer_config(conf, "shoal-orders", wait_out_outages=False)
    assert {k: v for k, v in config.items() if k not in ("logger", "error_cb")} == {
        "bootstrap.servers": "out:2",
        "client.id": "billing",
        "acks": "1",
        "enable.idempotence": False,
        "linger.ms": 50,
        "partitioner": "murmur2_random",
        "compression.type": "zstd",
        "batch.size": 65536,
        "message.max.bytes": 2_000_000,
        "message.timeout.ms": 90_000,
        "socket.timeout.ms": 45_000,
        "topic.metadata.refresh.interval.ms": 60_000,
        "connections.max.idle.ms": 540_000,
    }
    # A worker's outputs wait out outages whatever producer_request_timeout says.
    assert producer_config(conf, "x", wait_out_outages=True)["message.timeout.ms"] == 0


def test_consumer_settings() -> None:
    conf = settings(
        broker="kafka://all:1",
        broker_consumer="in:3",
        broker_client_id="billing",
        consumer_auto_offset_reset="latest",
        consumer_group_instance_id="host-1",
        consumer_max_fetch_size=4096,
        broker_heartbeat_interval=2,
        broker_session_timeout=20,
        broker_max_poll_interval=600,
        broker_request_timeout=30,
        broker_check_crcs=True,
        consumer_metadata_max_age_ms=10_000,
        consumer_connections_max_idle_ms=60_000,
    )
    config = consumer_config(conf, "shoal-orders", "orders")
    assert {k: v for k, v in config.items() if k not in ("logger", "error_cb")} == {
        "bootstrap.servers": "in:3",
        "client.id": "billing",
        "group.id": "orders",
        "group.instance.id": "host-1",
        "enable.auto.commit": False,
        "auto.offset.reset": "latest",
        "enable.partition.eof": False,
        "session.timeout.ms": 20_000,
        "heartbeat.interval.ms": 2000,
        "max.poll.interval.ms": 600_000,
        "socket.timeout.ms": 30_000,
        "max.partition.fetch.bytes": 4096,
        "check.crcs": True,
        "topic.metadata.refresh.interval.ms": 10_000,
        "connections.max.idle.ms": 60_000,
    }


def test_a_reply_topic_s_consumer_reads_from_the_start_and_is_not_static() -> None:
    conf = settings(consumer_auto_offset_reset="latest", consumer_group_instance_id="host-1")
    config = consumer_config(conf, "shoal-orders", "orders-reply-abc")
    assert config["auto.offset.reset"] == "earliest"
    assert "group.instance.id" not in config


def test_the_app_group_follows_the_version() -> None:
    conf = settings(version=2, consumer_auto_offset_reset="latest")
    assert consumer_config(conf, "shoal-orders", "orders-v2")["auto.offset.reset"] == "latest"

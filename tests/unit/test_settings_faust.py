"""Faust's setting names: all accepted, the old ones mapped, those without effect reported."""

from __future__ import annotations

import logging
import zoneinfo
from datetime import UTC, timedelta
from typing import Any

import pytest

from shoal.config import SETTING_NAMES, Settings, load_settings, warn_ignored
from shoal.exceptions import ConfigError

# faust-streaming's Settings.SETTINGS (main branch, 114 names), written out here so that a name
# dropped from shoal's own table fails this test.
FAUST_SETTINGS = """
autodiscover datadir tabledir debug env_prefix id_format origin timezone version
agent_supervisor cython_optimizations blocking_timeout broker broker_consumer broker_producer
broker_api_version broker_check_crcs broker_client_id broker_commit_every broker_commit_interval
broker_commit_livelock_soft_timeout broker_credentials broker_heartbeat_interval
broker_max_poll_interval broker_max_poll_records broker_rebalance_timeout broker_request_timeout
broker_session_timeout ssl_context consumer_api_version consumer_max_fetch_size
consumer_auto_offset_reset consumer_group_instance_id consumer_metadata_max_age_ms
consumer_connections_max_idle_ms key_serializer value_serializer logging_config loghandlers
producer_acks producer_api_version producer_compression_type producer_linger
producer_max_batch_size producer_max_request_size producer_partitioner producer_request_timeout
producer_threaded producer_metadata_max_age_ms producer_connections_max_idle_ms
recovery_consistency_check store_check_exists crash_app_on_aerospike_exception
aerospike_retries_on_exception aerospike_sleep_seconds_between_retries_on_exception
reply_create_topic reply_expires reply_to reply_to_prefix processing_guarantee
stream_buffer_maxsize stream_processing_timeout stream_publish_on_commit stream_recovery_delay
stream_wait_empty store table_cleanup_interval table_key_index_size table_standby_replicas
topic_allow_declare topic_disable_leader topic_partitions topic_replication_factor cache web
web_bind web_application_options web_cors_options web_enabled web_stats_enabled
web_graph_enabled web_router_enabled web_tables_enabled web_metrics_enabled web_host
web_in_thread web_port web_ssl_context web_transport canonical_url worker_redirect_stdouts
worker_redirect_stdouts_level Agent ConsumerScheduler Event Schema Stream Table SetTable
GlobalTable SetGlobalTable TableManager Serializers Worker PartitionAssignor LeaderAssignor
Router Topic HttpClient Monitor stream_ack_cancelled_tasks stream_ack_exceptions
producer_linger_ms
""".split()  # noqa: SIM905 (as Faust's docs list them)


def load(**kwargs: Any) -> Settings:
    return load_settings(kwargs, env={}, config_file=False)


def test_every_faust_setting_name_is_accepted() -> None:
    assert len(FAUST_SETTINGS) == 113  # and url, Faust's deprecated name for broker
    assert set(FAUST_SETTINGS) <= set(SETTING_NAMES)


def test_a_faust_app_s_typical_settings_load() -> None:
    settings = load_settings(
        {
            "id": "orders",
            "broker": "kafka://localhost:9092",
            "store": "rocksdb://",
            "datadir": "/var/lib/orders",
            "web_port": 6067,
            "web_enabled": False,
            "topic_partitions": 4,
            "producer_acks": -1,
            "Stream": "faust:Stream",
            "timezone": UTC,
        },
        env={},
        config_file=False,
    )
    assert settings.web_port == 6067
    assert str(settings.datadir) == "/var/lib/orders"
    assert settings.timezone == "UTC"


def test_settings_without_effect_are_listed_with_why() -> None:
    settings = load_settings(
        {"store": "rocksdb://", "web_port": 6067, "debug": True, "web_in_thread": True},
        env={"APP_TABLEDIR": "/t", "RECOVERY_CONSISTENCY_CHECK": "false"},
        config_file=False,
    )
    # store and tabledir are used (by tables): not listed.
    assert settings.ignored == [
        ("debug", "no effect in shoal (log_level='debug' logs more)"),
        ("recovery_consistency_check", "no effect in shoal's tables"),
        (
            "web_in_thread",
            "no effect in shoal: the host's web server always runs in a thread of its own",
        ),
    ]


def test_settings_that_ask_for_what_shoal_does_are_not_listed() -> None:
    settings = load(
        web_enabled=False, debug=False, stream_wait_empty=True, Agent=None, store="memory://"
    )
    assert settings.ignored == []


def test_warn_ignored_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(
        {"store": "rocksdb://", "store_check_exists": True, "web_cors_options": {}},
        env={},
        config_file=False,
    )
    logger = logging.getLogger("test-ignored")
    with caplog.at_level(logging.WARNING, logger="test-ignored"):
        warn_ignored(settings, logger)
    (record,) = caplog.records
    assert record.getMessage() == (
        "settings accepted for Faust compatibility that do nothing here: "
        "store_check_exists (no effect in shoal's tables); "
        "web_cors_options (no effect in shoal's web server)"
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="test-ignored"):
        warn_ignored(load_settings(env={}, config_file=False), logger)
    assert caplog.records == []


@pytest.mark.parametrize(
    ("old", "new", "value", "expected"),
    [
        ("client_id", "broker_client_id", "me", "me"),
        ("commit_interval", "broker_commit_interval", 1.5, 1.5),
        ("create_reply_topic", "reply_create_topic", True, True),
        ("num_standby_replicas", "table_standby_replicas", 2, 2),
        ("default_partitions", "topic_partitions", 3, 3),
        ("replication_factor", "topic_replication_factor", 3, 3),
        ("url", "broker", "kafka://h:1", ("h:1",)),
    ],
)
def test_faust_old_names_map_to_the_new_with_a_warning(
    old: str, new: str, value: object, expected: object
) -> None:
    with pytest.warns(FutureWarning, match=f"setting '{old}'.* is deprecated: use '{new}'"):
        settings = load_settings({old: value}, env={}, config_file=False)
    assert getattr(settings, new) == expected


def test_an_old_name_and_its_new_name_together_fail() -> None:
    with (
        pytest.warns(FutureWarning),
        pytest.raises(ConfigError, match=r"'default_partitions'.*'topic_partitions'.*give it once"),
    ):
        load(default_partitions=3, topic_partitions=4)


@pytest.mark.parametrize(
    ("given", "expected"), [(-1, "all"), ("all", "all"), ("-1", "all"), (0, "0"), ("1", "1")]
)
def test_producer_acks_in_faust_s_forms(given: object, expected: str) -> None:
    assert load(producer_acks=given).producer_acks == expected


def test_producer_linger_is_seconds_beside_producer_linger_ms() -> None:
    settings = load_settings({"producer_linger": 0.02}, env={}, config_file=False)
    assert settings.producer_linger_ms == 20
    assert settings.producer_linger == 0.02
    settings = load_settings(
        {"producer_linger_ms": 7}, env={"PRODUCER_LINGER": "0.5"}, config_file=False
    )
    assert settings.producer_linger_ms == 500
    settings.producer_linger = timedelta(milliseconds=30)  # type: ignore[assignment]
    assert settings.producer_linger_ms == 30


def test_broker_max_poll_records_is_consumer_max_batch() -> None:
    settings = load_settings(env={"BROKER_MAX_POLL_RECORDS": "50"}, config_file=False)
    assert settings.consumer_max_batch == 50
    assert settings.broker_max_poll_records == 50


def test_version_makes_the_app_id_after_every_source() -> None:
    settings = load_settings(
        {"id": "orders", "version": 2, "id_format": "{id}__{self.version}"},
        env={"APP_VERSION": "3"},
        config_file=False,
    )
    assert settings.name == "orders"
    assert settings.id == "orders__3"  # Faust would say orders-v2 here
    assert settings.dead_letter_topic_name == "orders__3-dead-letters"
    assert load(id="orders").id == "orders"
    assert load(id="orders", version=2).id == "orders-v2"


def test_an_id_format_that_makes_a_bad_id_fails() -> None:
    with pytest.raises(ConfigError, match=r"'id_format'.*makes the app id 'orders v2'"):
        load(id="orders", version=2, id_format="{id} v{self.version}")


def test_timezone_is_kept_by_name_and_read_as_zoneinfo() -> None:
    settings = load_settings(env={"TIMEZONE": "Europe/Oslo"}, config_file=False)
    assert settings.timezone == "Europe/Oslo"
    assert settings.tzinfo == zoneinfo.ZoneInfo("Europe/Oslo")
    assert load(timezone=zoneinfo.ZoneInfo("Asia/Tokyo")).timezone == "Asia/Tokyo"
    assert load().timezone == "UTC"
    assert load(timezone="utc").timezone == "UTC"


def test_env_prefix_reads_prefixed_faust_names_only() -> None:
    env = {"MYAPP_BROKER_URL": "kafka://prefixed:1", "BROKER_URL": "kafka://bare:1"}
    settings = load_settings({"env_prefix": "MYAPP_"}, env=env, config_file=False)
    assert settings.broker == ("prefixed:1",)
    env = {**env, "APP_ENV_PREFIX": "OTHER", "OTHER_APP_VERSION": "4"}
    settings = load_settings({"id": "x", "env_prefix": "MYAPP_"}, env=env, config_file=False)
    assert settings.env_prefix == "OTHER"  # the environment's prefix wins, as in Faust
    assert settings.id == "x-v4"
    assert settings.broker == ("localhost:9092",)


def test_shoal_s_variable_wins_over_faust_s_for_one_setting() -> None:
    settings = load_settings(
        env={"BROKER_URL": "kafka://faust:1", "SHOAL_BROKER": "kafka://shoal:1"},
        config_file=False,
    )
    assert settings.broker == ("shoal:1",)
    assert settings.source("broker") == "environment variable SHOAL_BROKER"


def test_shoal_variables_name_faust_settings_too() -> None:
    settings = load_settings(
        env={"SHOAL_WEB_PORT": "7000", "SHOAL_AGENT": "x:Y"}, config_file=False
    )
    assert (settings.web_port, settings.Agent) == (7000, "x:Y")


def test_faust_env_names_that_are_one_setting_fail_together() -> None:
    with pytest.raises(ConfigError, match=r"PRODUCER_LINGER.*PRODUCER_LINGER_MS.*give it once"):
        load_settings(env={"PRODUCER_LINGER": "0.1", "PRODUCER_LINGER_MS": "5"}, config_file=False)


def test_an_empty_faust_flag_variable_is_false() -> None:
    settings = load_settings(env={"TOPIC_ALLOW_DECLARE": ""}, config_file=False)
    assert settings.topic_allow_declare is False

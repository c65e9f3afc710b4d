from __future__ import annotations

from pathlib import Path

import pytest

from shoal.config import Settings, load_settings, parse_broker
from shoal.exceptions import ConfigError


def test_defaults_without_any_source() -> None:
    settings = load_settings(env={}, config_file=False)
    assert settings == Settings()
    assert settings.value_serializer == "json"
    assert settings.key_serializer == "raw"


def test_sources_apply_in_order(tmp_path: Path) -> None:
    """defaults < keyword arguments < config file < Faust's variables < SHOAL_* < flags."""
    config = tmp_path / "shoal.toml"
    config.write_text(
        'topic_partitions = 3\nvalue_serializer = "msgpack"\nask_timeout = 5\nworkers = 2\n'
    )
    settings = load_settings(
        {"ask_timeout": 7, "broker": None, "log_level": "debug", "workers": 9},
        env={
            "TOPIC_PARTITIONS": "4",
            "SHOAL_VALUE_SERIALIZER": "raw",
            "APP_VALUE_SERIALIZER": "json",
            "SHOAL_BROKER": "kafka://h1:1;kafka://h2",
            "SHOAL_WORKERS": "5",
        },
        config_file=config,
        flags={"workers": 6, "log_format": None},
    )
    assert settings.log_level == "debug"  # keyword beats default
    assert settings.ask_timeout == 5.0  # file beats keyword
    assert settings.topic_partitions == 4  # Faust's variable beats file
    assert settings.value_serializer == "raw"  # SHOAL_* beats Faust's variable
    assert settings.broker == ("h1:1", "h2:9092")  # None keyword is not given
    assert settings.workers == 6  # a flag beats them all
    assert settings.log_format == "text"  # None flag is not given
    assert settings.source("topic_partitions") == "environment variable TOPIC_PARTITIONS"
    assert settings.source("ask_timeout") == f"config file {config}"
    assert settings.source("log_level") == "keyword argument"
    assert settings.source("web_port") == "default"


def test_the_environment_wins_over_keyword_arguments() -> None:
    settings = load_settings(
        {"topic_partitions": 2, "broker": "kafka://kwhost:2"},
        env={"SHOAL_TOPIC_PARTITIONS": "16", "BROKER_URL": "kafka://envhost:1"},
        config_file=False,
    )
    assert settings.topic_partitions == 16
    assert settings.broker == ("envhost:1",)


def test_app_env_mapping_replaces_the_environment() -> None:
    """As in Faust, App(..., env=mapping) reads that mapping instead of os.environ."""
    settings = load_settings({"env": {"TOPIC_PARTITIONS": "5"}}, config_file=False)
    assert settings.topic_partitions == 5


def test_pyproject_tool_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.shoal]\ntopic_partitions = 12\n")
    settings = load_settings(env={"SHOAL_CONFIG": str(tmp_path / "pyproject.toml")})
    assert settings.topic_partitions == 12


def test_bad_env_value_names_setting_value_and_source() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"SHOAL_TOPIC_PARTITIONS": "zero"}, config_file=False)
    message = str(info.value)
    assert "'topic_partitions'" in message
    assert "'zero'" in message
    assert "SHOAL_TOPIC_PARTITIONS" in message
    assert "integer >= 1" in message


def test_bad_faust_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="from environment variable APP_VERSION"):
        load_settings(env={"APP_VERSION": "two"}, config_file=False)


def test_unknown_setting_suggests_the_close_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'topic_partitions'") as info:
        load_settings({"topic_partition": 4}, env={}, config_file=False)
    assert "unknown setting 'topic_partition'" in str(info.value)


def test_unknown_setting_suggests_faust_names_too() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'web_port'"):
        load_settings({"web_prot": 80}, env={}, config_file=False)


def test_unknown_env_variable_is_rejected_but_tool_variables_pass() -> None:
    with pytest.raises(ConfigError, match="SHOAL_BROKERS"):
        load_settings(env={"SHOAL_BROKERS": "x:1"}, config_file=False)
    settings = load_settings(
        env={
            "SHOAL_KAFKA_CACHE": "/x",
            "SHOAL_OPS_DIR": "/y",
            "SHOAL_TEST_BROKER": "z:1",
            "SHOAL_APP": "examples.agent",  # clusterctl's -A, read from the environment
        },
        config_file=False,
    )
    assert settings == Settings()


def test_the_app_id_comes_from_the_code_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'id' cannot come from environment variable SHOAL_ID"):
        load_settings({"id": "orders"}, env={"SHOAL_ID": "other"}, config_file=False)
    config = tmp_path / "shoal.toml"
    config.write_text('id = "other"\n')
    with pytest.raises(ConfigError, match="'id' cannot come from config file"):
        load_settings({"id": "orders"}, env={}, config_file=config)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("topic_partitions", 0),
        ("topic_partitions", True),
        ("topic_partitions", 2.5),
        ("ask_timeout", -1),
        ("ask_timeout", "soon"),
        ("processing_guarantee", "exactly_once"),
        ("processing_guarantee", "sometimes"),
        ("agent_error_policy", "ignore"),
        ("broker", "kafka://host:notaport"),
        ("broker", ""),
        ("broker", "redis://localhost:6379"),
        ("id", "has space"),
        ("value_serializer", "json||"),
        ("dead_letter_topic", "{nope}"),
        ("topic_allow_declare", "perhaps"),
        ("version", 0),
        ("id_format", "{self.nope}-{id}"),
        ("id_format", "no-id-here"),
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", 5),
        ("producer_acks", 2),
        ("producer_compression_type", "brotli"),
        ("consumer_auto_offset_reset", "middle"),
        ("consumer_group_instance_id", "has space"),
        ("producer_max_request_size", 1000),
        ("broker_request_timeout", 301),
        ("web_port", 70000),
        ("datadir", 5),
        ("store", "no scheme"),
        ("env_prefix", "MY-APP"),
    ],
)
def test_invalid_values_fail(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"setting '{name}' has an invalid value"):
        load_settings({name: value}, env={}, config_file=False)


def test_exactly_once_says_it_is_not_built() -> None:
    with pytest.raises(ConfigError, match="not built yet"):
        load_settings({"processing_guarantee": "exactly_once"}, env={}, config_file=False)


def test_broker_forms() -> None:
    assert parse_broker("kafka://localhost") == ("localhost:9092",)
    assert parse_broker(["a:1", "kafka://b:2"]) == ("a:1", "b:2")
    assert parse_broker("a:1,b:2") == ("a:1", "b:2")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("aiokafka://h1:9093", ("h1:9093",)),
        ("confluent://h1", ("h1:9092",)),
        ("AIOKAFKA://h1:1;aiokafka://h2:2", ("h1:1", "h2:2")),
        ("kafka://h1:1;h2:2,h3", ("h1:1", "h2:2", "h3:9092")),
        ("x:1;aiokafka://y:2", ("x:1", "y:2")),
        (["kafka://a:1", "b:2"], ("a:1", "b:2")),  # Faust reads b: as a scheme here
        ("kafka://h1:9092/", ("h1:9092",)),
        ("[::1]:9093", ("[::1]:9093",)),
    ],
)
def test_broker_schemes_and_separators(value: object, expected: tuple[str, ...]) -> None:
    assert parse_broker(value) == expected


def test_broker_with_another_scheme_says_so() -> None:
    with pytest.raises(ConfigError, match=r"BROKER_URL.*unsupported scheme 'redis'"):
        load_settings(env={"BROKER_URL": "redis://localhost:6379"}, config_file=False)


def test_bad_config_file_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "shoal.toml"
    broken.write_text("topic_partitions = = 3")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(env={}, config_file=broken)


def test_dead_letter_topic_is_named_after_the_app() -> None:
    settings = load_settings({"id": "orders"}, env={}, config_file=False)
    assert settings.dead_letter_topic_name == "orders-dead-letters"


def test_base_settings_are_copied_not_changed() -> None:
    base = load_settings({"id": "orders", "topic_partitions": 3}, env={}, config_file=False)
    base.lock()
    settings = load_settings({"ask_timeout": 2}, env={}, config_file=False, base=base)
    assert (settings.id, settings.topic_partitions, settings.ask_timeout) == ("orders", 3, 2.0)
    assert base.ask_timeout == 30.0
    assert not settings.locked

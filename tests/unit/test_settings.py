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
    config = tmp_path / "shoal.toml"
    config.write_text('topic_partitions = 3\nvalue_serializer = "msgpack"\nask_timeout = 5\n')
    settings = load_settings(
        {"ask_timeout": 7, "broker": None},
        env={"SHOAL_VALUE_SERIALIZER": "raw", "SHOAL_BROKER": "kafka://h1:1;kafka://h2"},
        config_file=config,
    )
    assert settings.topic_partitions == 3  # file
    assert settings.value_serializer == "raw"  # env beats file
    assert settings.ask_timeout == 7.0  # keyword beats file
    assert settings.broker == ("h1:1", "h2:9092")  # None keyword is ignored


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


def test_unknown_setting_suggests_the_close_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'topic_partitions'") as info:
        load_settings({"topic_partition": 4}, env={}, config_file=False)
    assert "unknown setting 'topic_partition'" in str(info.value)


def test_unknown_env_variable_is_rejected_but_tool_variables_pass() -> None:
    with pytest.raises(ConfigError, match="SHOAL_BROKERS"):
        load_settings(env={"SHOAL_BROKERS": "x:1"}, config_file=False)
    settings = load_settings(
        env={"SHOAL_KAFKA_CACHE": "/x", "SHOAL_OPS_DIR": "/y", "SHOAL_TEST_BROKER": "z:1"},
        config_file=False,
    )
    assert settings == Settings()


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
        ("id", "has space"),
        ("value_serializer", "json||"),
        ("dead_letter_topic", "{nope}"),
        ("topic_allow_declare", "perhaps"),
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


def test_bad_config_file_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "shoal.toml"
    broken.write_text("topic_partitions = = 3")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(env={}, config_file=broken)


def test_dead_letter_topic_is_named_after_the_app() -> None:
    settings = load_settings({"id": "orders"}, env={}, config_file=False)
    assert settings.dead_letter_topic_name == "orders-dead-letters"

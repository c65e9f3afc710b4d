"""app.conf.<name> = value: validated like any source before the app starts, refused after;
the runtime reads what it is assigned when it uses it."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from shoal.config import Settings, load_settings
from shoal.exceptions import ConfigError
from shoal.kafka.admin import TopicSpec
from shoal.runtime.runtime import Runtime


def settings(**kwargs: Any) -> Settings:
    return load_settings({"id": "orders", **kwargs}, env={}, config_file=False)


def test_assignment_is_validated_and_converted() -> None:
    conf = settings()
    conf.topic_partitions = "12"  # type: ignore[assignment]
    assert conf.topic_partitions == 12
    assert conf.source("topic_partitions") == "assignment"
    conf.broker = "kafka://h1:1;h2"  # type: ignore[assignment]
    assert conf.broker == ("h1:1", "h2:9092")


def test_a_bad_assignment_names_setting_value_and_source() -> None:
    conf = settings()
    with pytest.raises(ConfigError) as info:
        conf.topic_partitions = -1
    assert str(info.value) == (
        "setting 'topic_partitions' has an invalid value -1 (from assignment): "
        "expected an integer >= 1"
    )
    assert conf.topic_partitions == 8


def test_assigning_an_unknown_name_suggests_the_close_one() -> None:
    conf = settings()
    with pytest.raises(ConfigError, match=r"unknown setting 'topic_partiton' .*Did you mean"):
        conf.topic_partiton = 4


def test_assigning_faust_names() -> None:
    conf = settings()
    conf.id = "invoices"  # as in Faust, the id names the app; the version is added
    conf.version = 2
    assert (conf.name, conf.id) == ("invoices", "invoices-v2")
    conf.producer_linger = 0.25
    assert conf.producer_linger_ms == 250
    with pytest.warns(FutureWarning, match="'default_partitions'"):
        conf.default_partitions = 3
    assert conf.topic_partitions == 3
    conf.web_port = 7000
    conf.web_transport = "unix://"
    assert conf.web_port == 7000
    assert conf.ignored == [("web_transport", "no effect in shoal's web server")]


def test_update_changes_all_or_nothing() -> None:
    conf = settings()
    with pytest.raises(ConfigError, match="'workers'"):
        conf.update({"topic_partitions": 3, "workers": 0}, source="command-line flag --workers")
    assert conf.topic_partitions == 8
    conf.update({"workers": 3}, source="command-line flag --workers")
    assert conf.source("workers") == "command-line flag --workers"


def test_nothing_changes_after_lock() -> None:
    conf = settings()
    conf.lock()
    assert conf.locked
    with pytest.raises(ConfigError) as info:
        conf.topic_partitions = 3
    assert str(info.value).startswith(
        "cannot change setting 'topic_partitions' after the app started"
    )
    assert conf.topic_partitions == 8


def test_lock_checks_what_spans_settings() -> None:
    conf = settings()
    conf.broker_session_timeout = 2
    with pytest.raises(ConfigError, match=r"'broker_heartbeat_interval' .* less than"):
        conf.lock()
    assert not conf.locked


def test_session_timeout_over_the_poll_interval_fails_at_load() -> None:
    with pytest.raises(ConfigError, match=r"'broker_max_poll_interval' .* at least"):
        settings(broker_session_timeout=400)


class Named:
    def __init__(self, name: str) -> None:
        self.topics = (name,)
        self.internal = False

    def get_topic_name(self) -> str:
        return self.topics[0]

    def specs(self, default_partitions: int) -> list[TopicSpec]:
        return [TopicSpec(self.topics[0], default_partitions, {})]


def test_the_runtime_reads_settings_assigned_after_it_was_made() -> None:
    conf = settings()
    runtime = Runtime(conf, "orders")
    conf.stream_buffer_maxsize = 7
    conf.dead_letter_topic = "{id}-trash"
    conf.version = 3
    inbox = runtime.subscriptions.subscribe(Named("in"), owner="agent")  # type: ignore[arg-type]
    assert inbox.maxsize == 7
    assert runtime.dead_letters.topic == "orders-v3-trash"
    assert runtime.app_id == "orders-v3"
    assert runtime.client_id == "shoal-orders-v3"


def test_copies_and_pickles_keep_values_sources_and_lock() -> None:
    conf = settings(topic_partitions=3)
    conf.lock()
    for copied in (copy.copy(conf), copy.deepcopy(conf), pickle.loads(pickle.dumps(conf))):
        assert copied == conf
        assert copied.locked
        assert copied.source("topic_partitions") == "keyword argument"
    unlocked = dataclasses.replace(conf, ask_timeout=2.0)
    assert (unlocked.topic_partitions, unlocked.ask_timeout, unlocked.locked) == (3, 2.0, False)
    unlocked.workers = 2
    assert conf.workers == 1

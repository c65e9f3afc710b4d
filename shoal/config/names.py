"""Every setting's name and how its value is read: shoal's settings, Faust's (implemented
or only accepted), Faust's other names for a shoal setting, and Faust's old names.

Names are resolved here (an old name warns, as in Faust; an unknown one fails with a
did-you-mean over shoal's and Faust's names), so that the settings object only stores.
"""

from __future__ import annotations

import difflib
import re
import warnings
from typing import Any

from shoal.config import parsers as p
from shoal.config.accepted import ACCEPTED
from shoal.config.faust import FAUST_COMPAT, FAUST_NAMES
from shoal.exceptions import ConfigError

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _exactly_once(value: Any) -> str:
    text = p.choice("at_least_once", "exactly_once")(value)
    if text == "exactly_once":
        raise p.Invalid("only 'at_least_once' is supported; exactly_once is not built yet")
    return text


def _env_prefix(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise p.Invalid("expected letters, digits and '_', e.g. 'MYAPP_'")
    return text


def _linger_seconds(value: Any) -> int:
    return round(p.seconds(zero=True, maximum=900)(value) * 1000)


_SECONDS = p.seconds()
_BROKERS = p.optional(p.parse_broker)

#: How each setting shoal implements is read (by setting name).
PARSERS: dict[str, p.Parser[Any]] = {
    "id": p.optional(p.name),
    "version": p.integer(1),
    "id_format": p.id_format,  # and formatted with the settings when given (Settings.apply)
    "env_prefix": _env_prefix,
    "timezone": p.timezone,
    "broker": p.parse_broker,
    "broker_consumer": _BROKERS,
    "broker_producer": _BROKERS,
    "broker_client_id": p.optional(p.text),
    "broker_check_crcs": p.boolean,
    "broker_heartbeat_interval": p.seconds(maximum=3600),
    "broker_max_poll_interval": p.seconds(maximum=86_400),
    "broker_request_timeout": p.seconds(maximum=300),
    "topic_partitions": p.integer(1),
    "topic_replication_factor": p.integer(1),
    "topic_allow_declare": p.boolean,
    "topic_disable_leader": p.boolean,
    "key_serializer": p.serializer,
    "value_serializer": p.serializer,
    "processing_guarantee": _exactly_once,
    "broker_commit_interval": _SECONDS,
    "broker_commit_every": p.integer(1),
    "broker_session_timeout": _SECONDS,
    "broker_connect_timeout": _SECONDS,
    "stream_buffer_maxsize": p.integer(1),
    "consumer_max_batch": p.integer(1),
    "consumer_auto_offset_reset": p.choice("earliest", "latest"),
    "consumer_max_fetch_size": p.integer(1, 1_000_000_000, "bytes"),
    "consumer_group_instance_id": p.optional(p.name),
    "consumer_metadata_max_age_ms": p.integer(-1, 3_600_000, "ms"),
    "consumer_connections_max_idle_ms": p.integer(0, 2_147_483_647, "ms"),
    "producer_linger_ms": p.integer(0, 900_000),
    "producer_acks": p.acks,
    "producer_compression_type": p.compression,
    "producer_max_batch_size": p.integer(1, 2_147_483_647, "bytes"),
    # A dead letter keeps up to 64 KiB of a message's key and of its value: it must fit.
    "producer_max_request_size": p.integer(200_000, 1_000_000_000, "bytes"),
    "producer_request_timeout": p.seconds(maximum=2_147_483),
    "producer_metadata_max_age_ms": p.integer(-1, 3_600_000, "ms"),
    "producer_connections_max_idle_ms": p.integer(0, 2_147_483_647, "ms"),
    "reply_expires": _SECONDS,
    "ask_timeout": _SECONDS,
    "agent_error_policy": p.choice("crash", "continue"),
    "dead_letter_topic": p.template,
    "log_level": p.choice(*_LOG_LEVELS),
    "log_format": p.choice("text", "json"),
    "metrics_enabled": p.boolean,
    "web_enabled": p.boolean,
    "web_bind": p.host,
    "web_port": p.port(0),
    "web_host": p.optional(p.host),
    "canonical_url": p.optional(p.url),
    "web_router_enabled": p.boolean,
    "web_tables_enabled": p.boolean,
    "workers": p.integer(1),
    "worker_heartbeat_interval": _SECONDS,
    "worker_stall_timeout": _SECONDS,
    "worker_drain_timeout": _SECONDS,
    "worker_shutdown_timeout": _SECONDS,
    "worker_max_memory_mb": p.integer(0),
    "worker_restart_backoff_max": _SECONDS,
    "worker_restart_backoff_reset": _SECONDS,
    **{name: accepted.parse for name, accepted in ACCEPTED.items()},
}

#: Faust's names for a shoal setting in other units: name -> (field, parser to its value).
ALIASES: dict[str, tuple[str, p.Parser[Any]]] = {
    "producer_linger": ("producer_linger_ms", _linger_seconds),
    "broker_max_poll_records": ("consumer_max_batch", p.integer(1)),
}

#: shoal's own old names: the host's one web server serves /metrics and the app's pages.
RENAMED: dict[str, str] = {"metrics_host": "web_bind", "metrics_port": "web_port"}

#: Every setting name accepted (Faust's old names aside).
SETTING_NAMES: tuple[str, ...] = (*PARSERS, *ALIASES)
_BY_FOLDED = {name.lower(): name for name in (*SETTING_NAMES, *FAUST_COMPAT, *RENAMED)}

assert set(FAUST_NAMES) <= set(SETTING_NAMES) | set(FAUST_COMPAT), "every Faust name is accepted"


def setting_name(key: str) -> str | None:
    """The setting (or Faust's old name) that ``key`` names, ignoring case."""
    return _BY_FOLDED.get(key.lower())


def public_name(target: str) -> str:
    return "id" if target == "name" else target


def field_name(name: str) -> str:
    if name in ALIASES:
        return ALIASES[name][0]
    return "name" if name == "id" else name


def canonical(key: str, source: str) -> str:
    """The setting ``key`` names; Faust's old names (and shoal's) warn, as in Faust."""
    if key in FAUST_COMPAT or key in RENAMED:
        new = FAUST_COMPAT.get(key) or RENAMED[key]
        warnings.warn(
            f"setting {key!r} (from {source}) is deprecated: use {new!r}",
            FutureWarning,
            stacklevel=5,
        )
        return new
    if key in PARSERS or key in ALIASES:
        return key
    raise unknown_setting(key, source)


def unknown_setting(key: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(key, (*SETTING_NAMES, *FAUST_COMPAT), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        f"unknown setting {key!r} (from {source}).{hint} "
        "docs/settings.md lists every setting, shoal's and Faust's."
    )


def parse(name: str, key: str, value: Any, source: str) -> Any:
    reader = ALIASES[name][1] if name in ALIASES else PARSERS[name]
    try:
        return reader(value)
    except p.Invalid as exc:
        raise ConfigError(
            f"setting {key!r} has an invalid value {value!r} (from {source}): {exc}"
        ) from None

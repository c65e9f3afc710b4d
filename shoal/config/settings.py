"""One typed Settings object, read from defaults, a config file, ``SHOAL_*`` and keyword arguments.

Sources are applied in this order, each overriding the one before:

1. the defaults below;
2. a config file: ``$SHOAL_CONFIG`` if set, else ``shoal.toml`` in the working directory, else
   the ``[tool.shoal]`` table of ``pyproject.toml`` in the working directory;
3. environment variables ``SHOAL_<NAME>`` (``SHOAL_TOPIC_PARTITIONS=16``);
4. keyword arguments (``App(..., topic_partitions=16)``) and CLI flags.

Names follow Faust's where Faust has the setting. An unknown name or an invalid value raises
:class:`~shoal.exceptions.ConfigError` naming the setting, the value, where it came from and
what is allowed, so a typo fails at start instead of being ignored.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from shoal.exceptions import ConfigError

ENV_PREFIX = "SHOAL_"
# SHOAL_* variables read by shoal's tooling (the ops scripts, the test harness), not settings.
_TOOL_ENV = re.compile(r"^SHOAL_(CONFIG|OPS_DIR|KAFKA_\w+|TEST_\w+|BENCH_\w+)$")


class _Invalid(ValueError):
    """A parser's complaint; turned into a ConfigError that names the setting and source."""


def _int(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise _Invalid(f"expected an integer >= {minimum}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise _Invalid(f"expected an integer >= {minimum}") from None
        if number < minimum or (isinstance(value, float) and value != number):
            raise _Invalid(f"expected an integer >= {minimum}")
        return number

    return parse


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise _Invalid("expected a number of seconds > 0")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _Invalid("expected a number of seconds > 0") from None
    if not number > 0 or number == float("inf"):
        raise _Invalid("expected a number of seconds > 0")
    return number


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower().replace("-", "_")
        if text not in allowed:
            raise _Invalid("allowed: " + ", ".join(repr(a) for a in allowed))
        return text

    return parse


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise _Invalid("expected true or false")


_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def _name(value: Any) -> str:
    text = str(value).strip()
    if not _NAME.match(text):
        raise _Invalid("expected a non-empty name of letters, digits, '.', '_' or '-'")
    return text


def _optional_name(value: Any) -> str | None:
    return None if value is None or value == "" else _name(value)


def _host(value: Any) -> str:
    text = str(value).strip()
    if ":" in text:  # only an IPv6 address has colons
        try:
            ipaddress.IPv6Address(text.strip("[]"))
        except ValueError:
            raise _Invalid("expected a host name or IP address, e.g. 127.0.0.1") from None
        return text.strip("[]")
    if not re.fullmatch(r"[A-Za-z0-9.-]+", text):
        raise _Invalid("expected a host name or IP address, e.g. 127.0.0.1")
    return text


def _port(value: Any) -> int:
    port = _int(0)(value)
    if port > 65535:
        raise _Invalid("expected a port number from 0 (any free port) to 65535")
    return port


def _serializer(value: Any) -> str:
    text = str(value).strip()
    parts = text.split("|")
    if not all(_NAME.match(p.strip()) for p in parts):
        raise _Invalid("expected a codec name such as 'json', 'msgpack', 'raw' or 'json|binary'")
    return "|".join(p.strip() for p in parts)


def _template(value: Any) -> str:
    text = str(value).strip()
    try:
        text.format(id="app")
    except (KeyError, IndexError, ValueError):
        raise _Invalid("expected a topic name; '{id}' is replaced by the app id") from None
    if not _NAME.match(text.format(id="app")):
        raise _Invalid("expected a topic name; '{id}' is replaced by the app id")
    return text


def parse_broker(value: Any) -> tuple[str, ...]:
    """Parse Faust-style broker URLs into ``host:port`` strings.

    Accepts ``"kafka://h1:9092;kafka://h2:9092"``, ``"h1:9092,h2"`` or a list of either. A
    missing port means 9092, as in Faust.
    """
    items: Iterable[Any] = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for item in items:
        for raw in re.split(r"[;,\s]+", str(item).strip()):
            if not raw:
                continue
            url = raw.removeprefix("kafka://")
            host, sep, port = url.rpartition(":")
            if not sep:
                host, port = url, "9092"
            if not host or "/" in host or not port.isdigit() or not 0 < int(port) < 65536:
                raise _Invalid("expected host:port or kafka://host:port, separated by ';' or ','")
            out.append(f"{host}:{int(port)}")
    if not out:
        raise _Invalid("expected at least one broker address (kafka://host:port)")
    return tuple(out)


_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of a shoal app, validated. Build one with :func:`load_settings`."""

    id: str | None = None
    broker: tuple[str, ...] = ("localhost:9092",)
    topic_partitions: int = 8
    topic_replication_factor: int = 1
    topic_allow_declare: bool = True
    key_serializer: str = "raw"
    value_serializer: str = "json"
    processing_guarantee: str = "at_least_once"
    broker_commit_interval: float = 2.8
    broker_commit_every: int = 10_000
    broker_session_timeout: float = 10.0
    broker_connect_timeout: float = 30.0
    stream_buffer_maxsize: int = 4096
    consumer_max_batch: int = 1000
    producer_linger_ms: int = 5
    producer_acks: str = "all"
    reply_expires: float = 86_400.0
    ask_timeout: float = 30.0
    agent_error_policy: str = "crash"
    dead_letter_topic: str = "{id}-dead-letters"
    log_level: str = "info"
    log_format: str = "text"
    metrics_enabled: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 6066
    workers: int = 1
    worker_heartbeat_interval: float = 1.0
    worker_stall_timeout: float = 15.0
    worker_drain_timeout: float = 20.0
    worker_shutdown_timeout: float = 30.0
    worker_max_memory_mb: int = 0
    worker_restart_backoff_max: float = 30.0
    worker_restart_backoff_reset: float = 60.0

    @property
    def bootstrap_servers(self) -> str:
        """The broker list in librdkafka's ``bootstrap.servers`` form."""
        return ",".join(self.broker)

    @property
    def dead_letter_topic_name(self) -> str:
        return self.dead_letter_topic.format(id=self.id or "shoal")


def _exactly_once(value: Any) -> str:
    text = _choice("at_least_once", "exactly_once")(value)
    if text == "exactly_once":
        raise _Invalid("only 'at_least_once' is supported; exactly_once is not built yet")
    return text


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "id": _optional_name,
    "broker": parse_broker,
    "topic_partitions": _int(1),
    "topic_replication_factor": _int(1),
    "topic_allow_declare": _bool,
    "key_serializer": _serializer,
    "value_serializer": _serializer,
    "processing_guarantee": _exactly_once,
    "broker_commit_interval": _seconds,
    "broker_commit_every": _int(1),
    "broker_session_timeout": _seconds,
    "broker_connect_timeout": _seconds,
    "stream_buffer_maxsize": _int(1),
    "consumer_max_batch": _int(1),
    "producer_linger_ms": _int(0),
    "producer_acks": _choice("all", "1", "0"),
    "reply_expires": _seconds,
    "ask_timeout": _seconds,
    "agent_error_policy": _choice("crash", "continue"),
    "dead_letter_topic": _template,
    "log_level": _choice(*_LOG_LEVELS),
    "log_format": _choice("text", "json"),
    "metrics_enabled": _bool,
    "metrics_host": _host,
    "metrics_port": _port,
    "workers": _int(1),
    "worker_heartbeat_interval": _seconds,
    "worker_stall_timeout": _seconds,
    "worker_drain_timeout": _seconds,
    "worker_shutdown_timeout": _seconds,
    "worker_max_memory_mb": _int(0),
    "worker_restart_backoff_max": _seconds,
    "worker_restart_backoff_reset": _seconds,
}
SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Settings))
assert set(_PARSERS) == set(SETTING_NAMES), "every setting needs a parser"


def _unknown(name: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(name, SETTING_NAMES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        f"unknown setting {name!r} (from {source}).{hint} "
        f"Known settings: {', '.join(SETTING_NAMES)}."
    )


def _parse(name: str, value: Any, source: str) -> Any:
    parser = _PARSERS.get(name)
    if parser is None:
        raise _unknown(name, source)
    try:
        return parser(value)
    except _Invalid as exc:
        raise ConfigError(
            f"setting {name!r} has an invalid value {value!r} (from {source}): {exc}"
        ) from None


def find_config_file(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The config file that applies: ``$SHOAL_CONFIG``, ``shoal.toml`` or ``pyproject.toml``."""
    env = os.environ if env is None else env
    if env.get("SHOAL_CONFIG"):
        path = Path(env["SHOAL_CONFIG"])
        if not path.is_file():
            raise ConfigError(f"SHOAL_CONFIG points at {str(path)!r}, which is not a file")
        return path
    base = cwd or Path.cwd()
    for candidate in (base / "shoal.toml", base / "pyproject.toml"):
        if candidate.is_file():
            return candidate
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings table of a config file (``[tool.shoal]`` for a pyproject.toml)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from exc
    table = data.get("tool", {}).get("shoal", {}) if path.name == "pyproject.toml" else data
    if not isinstance(table, dict):
        raise ConfigError(f"config file {str(path)!r}: the shoal settings must be a table")
    return table


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_file: Path | bool | None = True,
    base: Settings | None = None,
) -> Settings:
    """Build Settings from defaults, the config file, ``SHOAL_*`` and ``overrides``, in order.

    ``config_file=True`` finds the file as :func:`find_config_file` does; ``False`` or ``None``
    reads none; a Path reads that file. ``overrides`` with value ``None`` are ignored, so CLI
    flags that were not given can be passed straight through.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = find_config_file(env=env) if config_file is True else config_file or None
    if path is not None:
        for name, value in read_config_file(path).items():
            values[name] = _parse(name, value, f"config file {path}")
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or _TOOL_ENV.match(key):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        values[name] = _parse(name, value, f"environment variable {key}")
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _parse(name, value, "keyword argument")
    return replace(base or Settings(), **values)

"""One typed Settings object: every setting of a shoal app, validated wherever it comes from.

Names follow Faust's. Every Faust setting is accepted: those shoal implements do what Faust
documents (on librdkafka), the others are kept and reported by :func:`warn_ignored` (see
:mod:`shoal.config.accepted`). Faust's old names map to the new ones with a warning, as in
Faust. An unknown name or an invalid value raises :class:`~shoal.exceptions.ConfigError`
naming the setting, the value, where it came from and what is allowed.

Settings can be assigned (``app.conf.topic_partitions = 4``), validated like any other source,
until :meth:`Settings.lock` (the app started). How the sources are read, and in which order,
is :mod:`shoal.config.loading`.
"""

from __future__ import annotations

import logging
import socket
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from shoal.config import parsers as p
from shoal.config.accepted import ACCEPTED, FaustOnlySettings
from shoal.config.names import PARSERS, canonical, field_name, parse, public_name
from shoal.exceptions import ConfigError


@dataclass(slots=True, eq=True, repr=False)
class Settings(FaustOnlySettings):
    """Every setting of a shoal app. Build one with :func:`~shoal.config.load_settings`.

    ``name`` is the name the app was given (``App('orders')``), ``id`` the app id made of it
    and ``version``: ``'orders'``, or ``'orders-v2'`` from version 2 on (``id_format``).
    """

    name: str | None = None
    version: int = 1
    id_format: str = "{id}-v{self.version}"
    env_prefix: str | None = None
    timezone: str = "UTC"
    broker: tuple[str, ...] = ("localhost:9092",)
    broker_consumer: tuple[str, ...] | None = None
    broker_producer: tuple[str, ...] | None = None
    broker_client_id: str | None = None
    broker_check_crcs: bool = False
    broker_heartbeat_interval: float = 3.0
    broker_max_poll_interval: float = 300.0
    broker_request_timeout: float = 60.0
    topic_partitions: int = 8
    topic_replication_factor: int = 1
    topic_allow_declare: bool = True
    topic_disable_leader: bool = False
    key_serializer: str = "raw"
    value_serializer: str = "json"
    processing_guarantee: str = "at_least_once"
    broker_commit_interval: float = 2.8
    broker_commit_every: int = 10_000
    broker_session_timeout: float = 10.0
    broker_connect_timeout: float = 30.0
    stream_buffer_maxsize: int = 4096
    consumer_max_batch: int = 1000
    consumer_auto_offset_reset: str = "earliest"
    consumer_max_fetch_size: int = 1_048_576
    consumer_group_instance_id: str | None = None
    consumer_metadata_max_age_ms: int = 300_000
    consumer_connections_max_idle_ms: int = 0
    producer_linger_ms: int = 5
    producer_acks: str = "all"
    producer_compression_type: str | None = None
    producer_max_batch_size: int = 1_000_000
    producer_max_request_size: int = 1_000_000
    producer_request_timeout: float = 300.0
    producer_metadata_max_age_ms: int = 300_000
    producer_connections_max_idle_ms: int = 0
    reply_expires: float = 86_400.0
    ask_timeout: float = 30.0
    agent_error_policy: str = "crash"
    dead_letter_topic: str = "{id}-dead-letters"
    log_level: str = "info"
    log_format: str = "text"
    metrics_enabled: bool = True
    web_enabled: bool = True
    web_bind: str = "127.0.0.1"
    web_port: int = 6066
    web_host: str | None = None
    canonical_url: str | None = None
    web_router_enabled: bool = True
    web_tables_enabled: bool = True
    workers: int = 1
    worker_heartbeat_interval: float = 1.0
    worker_stall_timeout: float = 15.0
    worker_drain_timeout: float = 20.0
    worker_shutdown_timeout: float = 30.0
    worker_max_memory_mb: int = 0
    worker_restart_backoff_max: float = 30.0
    worker_restart_backoff_reset: float = 60.0
    # Where each setting given came from (field -> source), and the life of the object.
    _sources: dict[str, str] = field(default_factory=dict, init=False, compare=False)
    _locked: bool = field(default=False, init=False, compare=False)
    _ready: bool = field(default=False, init=False, compare=False)

    def __post_init__(self) -> None:
        # From here on, assigning a setting validates it (see __setattr__).
        object.__setattr__(self, "_ready", True)

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_") or not getattr(self, "_ready", False):
            object.__setattr__(self, key, value)  # the dataclass's own __init__
            return
        self.update({key: value}, source="assignment")

    # Copies and pickles restore the slots as they were, around __setattr__.
    def __getstate__(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, dict(value) if key == "_sources" else value)

    def __repr__(self) -> str:
        default = Settings()
        given = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if not f.name.startswith("_") and getattr(self, f.name) != getattr(default, f.name)
        ]
        return f"Settings({', '.join(given)})"

    # -- what is derived from the settings ----------------------------------------------------

    @property
    def id(self) -> str | None:
        """The app id: ``name``, or ``id_format`` applied to it from ``version`` 2 on.

        Computed when read, so it follows every source and assignment (Faust computes it
        once, before the environment and ``id_format`` are applied).
        """
        if self.name is None:
            return None
        if self.version > 1:
            return self.id_format.format(id=self.name, self=self)
        return self.name

    @id.setter
    def id(self, value: str) -> None:  # as Faust's: it names the app (see __setattr__)
        self.update({"id": value})

    @property
    def producer_linger(self) -> float:
        """Faust's name for ``producer_linger_ms``, in seconds."""
        return self.producer_linger_ms / 1000

    @producer_linger.setter
    def producer_linger(self, value: float) -> None:
        self.update({"producer_linger": value})

    @property
    def broker_max_poll_records(self) -> int:
        """Faust's name for ``consumer_max_batch``."""
        return self.consumer_max_batch

    @broker_max_poll_records.setter
    def broker_max_poll_records(self, value: int) -> None:
        self.update({"broker_max_poll_records": value})

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        """``timezone`` as a :class:`zoneinfo.ZoneInfo` (crontab timers run in it)."""
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def bootstrap_servers(self) -> str:
        """The broker list in librdkafka's ``bootstrap.servers`` form."""
        return ",".join(self.broker)

    @property
    def consumer_bootstrap_servers(self) -> str:
        """``broker_consumer`` if set, else ``broker``."""
        return ",".join(self.broker_consumer or self.broker)

    @property
    def producer_bootstrap_servers(self) -> str:
        """``broker_producer`` if set, else ``broker``."""
        return ",".join(self.broker_producer or self.broker)

    def web_url(self, port: int | None = None) -> str:
        """The URL other hosts and clients reach this host's web server at: ``canonical_url``,
        else ``http://{web_host}:{web_port}`` (``web_host``: ``web_bind`` unless that is a
        wildcard address, then this machine's host name); ``port``: the port bound, when
        ``web_port`` is 0."""
        if self.canonical_url:
            return self.canonical_url.rstrip("/")
        host = self.web_host
        if host is None:
            host = socket.gethostname() if self.web_bind in ("0.0.0.0", "::", "") else self.web_bind
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port or self.web_port}"

    @property
    def dead_letter_topic_name(self) -> str:
        return self.dead_letter_topic.format(id=self.id or "shoal")

    # -- sources ------------------------------------------------------------------------------

    @property
    def sources(self) -> dict[str, str]:
        """Where each setting that is not at its default came from, by setting name."""
        return {public_name(name): source for name, source in self._sources.items()}

    def source(self, name: str) -> str:
        """Where setting ``name`` came from: ``'default'``, ``'keyword argument'``, ..."""
        return self._sources.get(field_name(name), "default")

    @property
    def ignored(self) -> list[tuple[str, str]]:
        """(name, reason) of each setting given that does nothing in shoal."""
        out = []
        for name, accepted in ACCEPTED.items():
            if name not in self._sources or accepted.reason is None:
                continue
            value = getattr(self, name)
            quiet = value is accepted.quiet or (
                type(value) is type(accepted.quiet) and value == accepted.quiet
            )
            if not quiet:
                out.append((name, accepted.reason))
        return out

    # -- changing -----------------------------------------------------------------------------

    def update(self, values: Mapping[str, Any], *, source: str = "assignment") -> None:
        """Set several settings, validated, as coming from ``source``; all or none change.

        ``app.conf.<setting> = value`` is ``update({setting: value}, source="assignment")``.
        """
        self.apply(((name, value, source) for name, value in values.items()), allow_id=True)

    def apply(
        self, items: Iterable[tuple[str, Any, str]], *, allow_id: bool, skip_none: bool = False
    ) -> None:
        """Set (name, value, source) items: one source's, so a setting may come once only."""
        chosen: dict[str, tuple[str, Any, str]] = {}
        for key, value, source in items:
            if skip_none and value is None:
                continue
            if self._locked:
                raise ConfigError(
                    f"cannot change setting {key!r} after the app started (from {source}); "
                    "set it before the app starts: in App(...), the config file, the "
                    "environment, or app.conf before start"
                )
            name = canonical(key, source)
            target = field_name(name)
            if target == "name" and not allow_id:
                raise ConfigError(
                    f"setting 'id' cannot come from {source}: the app id is App's first "
                    "argument (to run the same code as a new app, raise its version)"
                )
            if target in chosen:
                earlier, _, where = chosen[target]
                raise ConfigError(
                    f"settings {earlier!r} (from {where}) and {key!r} (from {source}) are one "
                    f"setting, {public_name(target)!r}: give it once"
                )
            chosen[target] = (key, parse(name, key, value, source), source)
        if "id_format" in chosen:
            self._check_id_format(*chosen["id_format"])
        for target, (_, value, source) in chosen.items():  # all valid: now change
            object.__setattr__(self, target, value)
            self._sources[target] = source

    def _check_id_format(self, key: str, value: str, source: str) -> None:
        try:
            value.format(id="app", self=self)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"setting {key!r} has an invalid value {value!r} (from {source}): it cannot "
                f"be formatted with id and self (the settings): {exc!r}"
            ) from None

    def check(self) -> None:
        """Checks that span settings; :func:`load_settings` and :meth:`lock` run them."""
        final = self.id
        if final is not None and not p.is_name(final):
            raise ConfigError(
                f"setting 'id_format' {self.id_format!r} (from {self.source('id_format')}) "
                f"makes the app id {final!r}, which is not a name of letters, digits, '.', "
                "'_' or '-'"
            )
        session = self.broker_session_timeout
        if self.broker_heartbeat_interval >= session:
            raise ConfigError(
                f"setting 'broker_heartbeat_interval' ({self.broker_heartbeat_interval:g} s, "
                f"from {self.source('broker_heartbeat_interval')}) must be less than "
                f"'broker_session_timeout' ({session:g} s, from "
                f"{self.source('broker_session_timeout')})"
            )
        if self.broker_max_poll_interval < session:
            raise ConfigError(
                f"setting 'broker_max_poll_interval' ({self.broker_max_poll_interval:g} s, "
                f"from {self.source('broker_max_poll_interval')}) must be at least "
                f"'broker_session_timeout' ({session:g} s, from "
                f"{self.source('broker_session_timeout')})"
            )

    def lock(self) -> None:
        """The app starts: check the settings once more; from now on they cannot change."""
        self.check()
        object.__setattr__(self, "_locked", True)

    @property
    def locked(self) -> bool:
        return self._locked


def warn_ignored(settings: Settings, logger: logging.Logger) -> list[tuple[str, str]]:
    """Log one warning naming the settings given that do nothing in shoal, and why."""
    ignored = settings.ignored
    if ignored:
        by_reason: dict[str, list[str]] = {}
        for name, reason in ignored:
            by_reason.setdefault(reason, []).append(name)
        logger.warning(
            "settings accepted for Faust compatibility that do nothing here: %s",
            "; ".join(f"{', '.join(names)} ({reason})" for reason, names in by_reason.items()),
        )
    return ignored


assert {f.name for f in fields(Settings) if not f.name.startswith("_")} == (
    set(PARSERS) - {"id"} | {"name"}
), "every field needs a parser"

"""Faust settings that shoal accepts, validates and keeps, but that do nothing in shoal yet.

A Faust app that sets them runs unchanged; the App logs one warning at start naming those
that were set and why they do nothing (:func:`shoal.config.settings.warn_ignored`). Defaults
are Faust's, so code that reads ``app.conf.web_port`` gets what it got from Faust.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from shoal.config import parsers as p
from shoal.config.faust import CLASS_SETTINGS

TABLES = "no effect in shoal's tables"
WEB = "no effect in shoal's web server"
NO_EFFECT = "no effect in shoal"
CLASSES = "no effect in shoal: its classes cannot be replaced"
API_VERSION = "no effect in shoal: librdkafka negotiates API versions with the broker"


@dataclass(slots=True, eq=True, repr=False)
class FaustOnlySettings:
    """The fields of those settings (:class:`~shoal.config.settings.Settings` inherits them)."""

    autodiscover: Any = False
    datadir: Path | None = None  # Faust: '{name}-data'
    tabledir: Path = Path("tables")
    debug: bool = False
    origin: str | None = None
    agent_supervisor: Any = None
    cython_optimizations: bool = False
    blocking_timeout: float | None = None
    broker_api_version: str = "auto"
    broker_commit_livelock_soft_timeout: float = 300.0
    broker_credentials: Any = None
    broker_rebalance_timeout: float = 60.0
    ssl_context: Any = None
    consumer_api_version: str | None = None
    logging_config: dict[str, Any] | None = None
    loghandlers: list[Any] = field(default_factory=list)
    producer_api_version: str | None = None
    producer_partitioner: Any = None
    producer_threaded: bool = False
    recovery_consistency_check: bool = True
    store_check_exists: bool = True
    crash_app_on_aerospike_exception: bool = True
    aerospike_retries_on_exception: int = 60
    aerospike_sleep_seconds_between_retries_on_exception: int = 1
    reply_create_topic: bool = False
    reply_to: str | None = None
    reply_to_prefix: str = "f-reply-"
    stream_processing_timeout: float = 300.0
    stream_publish_on_commit: bool = False
    stream_recovery_delay: float = 0.0
    stream_wait_empty: bool = True
    store: str = "memory://"
    table_cleanup_interval: float = 30.0
    table_key_index_size: int = 1000
    table_standby_replicas: int = 1
    cache: str = "memory://"
    web: str = "aiohttp://"
    web_application_options: dict[str, Any] | None = None
    web_cors_options: dict[str, Any] | None = None
    web_stats_enabled: bool = False
    web_graph_enabled: bool = False
    web_metrics_enabled: bool = False
    web_in_thread: bool = False
    web_ssl_context: Any = None
    web_transport: str = "tcp://"
    worker_redirect_stdouts: bool = True
    worker_redirect_stdouts_level: str = "WARN"
    Agent: Any = None
    ConsumerScheduler: Any = None
    Event: Any = None
    Schema: Any = None
    Stream: Any = None
    Table: Any = None
    SetTable: Any = None
    GlobalTable: Any = None
    SetGlobalTable: Any = None
    TableManager: Any = None
    Serializers: Any = None
    Worker: Any = None
    PartitionAssignor: Any = None
    LeaderAssignor: Any = None
    Router: Any = None
    Topic: Any = None
    HttpClient: Any = None
    Monitor: Any = None
    stream_ack_cancelled_tasks: bool = True
    stream_ack_exceptions: bool = True


_NEVER: Any = object()  # equal to no value: a setting without a quiet value


class Accepted(NamedTuple):
    """How one such setting is read, and why it does nothing."""

    parse: p.Parser[Any]
    #: Why it has no effect; None: no warning (it asks for what shoal does anyway).
    reason: str | None
    #: A value that asks for what shoal does anyway: setting it draws no warning.
    quiet: Any = _NEVER


_SECONDS = p.seconds()
_LOGGING = "no effect in shoal: logging follows log_level and log_format"

ACCEPTED: dict[str, Accepted] = {
    "autodiscover": Accepted(
        p.anything,
        "no effect in shoal: import the modules that declare agents from the app's module",
        False,
    ),
    "datadir": Accepted(p.optional(p.path), None),
    "tabledir": Accepted(p.path, None),
    "debug": Accepted(p.boolean, f"{NO_EFFECT} (log_level='debug' logs more)", False),
    "origin": Accepted(p.optional(p.text), f"{NO_EFFECT}: workers import the app named by -A"),
    "agent_supervisor": Accepted(
        p.symbol, f"{NO_EFFECT}: a failing agent follows agent_error_policy"
    ),
    "cython_optimizations": Accepted(p.boolean, NO_EFFECT, False),
    "blocking_timeout": Accepted(
        p.optional(_SECONDS),
        f"{NO_EFFECT}: a blocked worker is replaced after worker_stall_timeout",
    ),
    "broker_api_version": Accepted(p.text, API_VERSION, "auto"),
    "broker_commit_livelock_soft_timeout": Accepted(_SECONDS, NO_EFFECT),
    "broker_credentials": Accepted(
        p.anything, "broker authentication (SASL/SSL) is not built yet: shoal connects in plaintext"
    ),
    "broker_rebalance_timeout": Accepted(
        _SECONDS, f"{NO_EFFECT}: librdkafka uses broker_max_poll_interval as the rebalance timeout"
    ),
    "ssl_context": Accepted(
        p.anything, "broker TLS is not built yet (librdkafka cannot use an ssl.SSLContext)"
    ),
    "consumer_api_version": Accepted(p.optional(p.text), API_VERSION),
    "logging_config": Accepted(p.optional(p.mapping), _LOGGING),
    "loghandlers": Accepted(lambda v: list(v or ()), _LOGGING),
    "producer_api_version": Accepted(p.optional(p.text), API_VERSION),
    "producer_partitioner": Accepted(
        p.symbol,
        f"{NO_EFFECT}: keys are partitioned with murmur2, as the Java client does",
    ),
    "producer_threaded": Accepted(
        p.boolean, f"{NO_EFFECT}: shoal's producers always send from their own thread"
    ),
    "recovery_consistency_check": Accepted(p.boolean, TABLES),
    "store_check_exists": Accepted(p.boolean, TABLES),
    "crash_app_on_aerospike_exception": Accepted(p.boolean, f"{NO_EFFECT}: no aerospike store"),
    "aerospike_retries_on_exception": Accepted(p.integer(0), f"{NO_EFFECT}: no aerospike store"),
    "aerospike_sleep_seconds_between_retries_on_exception": Accepted(
        p.integer(0), f"{NO_EFFECT}: no aerospike store"
    ),
    # shoal always makes the reply topics it needs: nothing to warn about.
    "reply_create_topic": Accepted(p.boolean, None),
    "reply_to": Accepted(
        p.optional(p.name), f"{NO_EFFECT}: shoal names each process's reply topic itself"
    ),
    "reply_to_prefix": Accepted(
        p.text, f"{NO_EFFECT}: shoal names each process's reply topic itself"
    ),
    "stream_processing_timeout": Accepted(_SECONDS, NO_EFFECT),
    "stream_publish_on_commit": Accepted(
        p.boolean,
        f"{NO_EFFECT}: an offset is committed only after the outputs before it are stored",
    ),
    "stream_recovery_delay": Accepted(
        p.seconds(zero=True), f"{NO_EFFECT}: partitions are processed as soon as recovered"
    ),
    "stream_wait_empty": Accepted(
        p.boolean, f"{NO_EFFECT}: a worker always drains for worker_drain_timeout", True
    ),
    "store": Accepted(p.url, None),
    "table_cleanup_interval": Accepted(_SECONDS, None),
    "table_key_index_size": Accepted(
        p.integer(0), f"{NO_EFFECT}: windowed tables iterate their stores"
    ),
    "table_standby_replicas": Accepted(p.integer(0), None),
    "cache": Accepted(p.url, f"{NO_EFFECT}: no web view cache", "memory://"),
    "web": Accepted(p.url, f"{NO_EFFECT}: the web server is aiohttp's", "aiohttp://"),
    "web_application_options": Accepted(p.optional(p.mapping), WEB),
    "web_cors_options": Accepted(p.optional(p.mapping), WEB),
    "web_stats_enabled": Accepted(p.boolean, WEB, False),
    "web_graph_enabled": Accepted(p.boolean, WEB, False),
    "web_metrics_enabled": Accepted(
        p.boolean, f"{NO_EFFECT}: /metrics is served while metrics_enabled", False
    ),
    "web_in_thread": Accepted(
        p.boolean, f"{NO_EFFECT}: the host's web server always runs in a thread of its own"
    ),
    "web_ssl_context": Accepted(p.anything, WEB),
    "web_transport": Accepted(p.url, WEB),
    "worker_redirect_stdouts": Accepted(p.boolean, NO_EFFECT),
    "worker_redirect_stdouts_level": Accepted(p.severity, NO_EFFECT),
    **{name: Accepted(p.symbol, CLASSES, None) for name in CLASS_SETTINGS},
    "stream_ack_cancelled_tasks": Accepted(p.boolean, "deprecated in Faust 1.0; no effect"),
    "stream_ack_exceptions": Accepted(p.boolean, "deprecated in Faust 1.0; no effect"),
}

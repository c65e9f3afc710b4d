"""Faust's setting names, as faust-streaming declares them: the environment variable each is
read from, and the old names Faust still maps to new ones.

Faust writes each environment name by hand (there is no rule: ``broker`` is ``BROKER_URL``,
``version`` is ``APP_VERSION``, ``timezone`` is ``TIMEZONE``); they are copied here as they
are, so a Faust deployment's environment configures a shoal app the same way. Settings that
Faust reads from no variable (``origin``, ``web_in_thread``, the extension classes ...) are
absent from :data:`FAUST_ENV`.
"""

from __future__ import annotations

#: Setting -> the environment variable Faust reads it from (before ``env_prefix``).
FAUST_ENV: dict[str, str] = {
    "datadir": "APP_DATADIR",
    "tabledir": "APP_TABLEDIR",
    "debug": "APP_DEBUG",
    "env_prefix": "APP_ENV_PREFIX",  # read without the prefix, as Faust does
    "id_format": "APP_ID_FORMAT",
    "timezone": "TIMEZONE",
    "version": "APP_VERSION",
    "agent_supervisor": "AGENT_SUPERVISOR",
    "cython_optimizations": "CYTHON_OPTIMIZATIONS",
    "blocking_timeout": "BLOCKING_TIMEOUT",
    "broker": "BROKER_URL",
    "broker_consumer": "BROKER_CONSUMER_URL",
    "broker_producer": "BROKER_PRODUCER_URL",
    "broker_api_version": "BROKER_API_VERSION",
    "broker_check_crcs": "BROKER_CHECK_CRCS",
    "broker_client_id": "BROKER_CLIENT_ID",
    "broker_commit_every": "BROKER_COMMIT_EVERY",
    "broker_commit_interval": "BROKER_COMMIT_INTERVAL",
    "broker_commit_livelock_soft_timeout": "BROKER_COMMIT_LIVELOCK_SOFT_TIMEOUT",
    "broker_credentials": "BROKER_CREDENTIALS",
    "broker_heartbeat_interval": "BROKER_HEARTBEAT_INTERVAL",
    "broker_max_poll_interval": "BROKER_MAX_POLL_INTERVAL",
    "broker_max_poll_records": "BROKER_MAX_POLL_RECORDS",
    "broker_rebalance_timeout": "BROKER_REBALANCE_TIMEOUT",
    "broker_request_timeout": "BROKER_REQUEST_TIMEOUT",
    "broker_session_timeout": "BROKER_SESSION_TIMEOUT",
    "consumer_api_version": "CONSUMER_API_VERSION",
    "consumer_max_fetch_size": "CONSUMER_MAX_FETCH_SIZE",
    "consumer_auto_offset_reset": "CONSUMER_AUTO_OFFSET_RESET",
    "consumer_group_instance_id": "CONSUMER_GROUP_INSTANCE_ID",
    "consumer_metadata_max_age_ms": "CONSUMER_METADATA_MAX_AGE_MS",
    "consumer_connections_max_idle_ms": "CONSUMER_CONNECTIONS_MAX_IDLE_MS",
    "key_serializer": "APP_KEY_SERIALIZER",
    "value_serializer": "APP_VALUE_SERIALIZER",
    "producer_acks": "PRODUCER_ACKS",
    "producer_api_version": "PRODUCER_API_VERSION",
    "producer_compression_type": "PRODUCER_COMPRESSION_TYPE",
    "producer_linger": "PRODUCER_LINGER",
    "producer_linger_ms": "PRODUCER_LINGER_MS",
    "producer_max_batch_size": "PRODUCER_MAX_BATCH_SIZE",
    "producer_max_request_size": "PRODUCER_MAX_REQUEST_SIZE",
    "producer_request_timeout": "PRODUCER_REQUEST_TIMEOUT",
    "producer_threaded": "PRODUCER_THREADED",
    "producer_metadata_max_age_ms": "PRODUCER_METADATA_MAX_AGE_MS",
    "producer_connections_max_idle_ms": "PRODUCER_CONNECTIONS_MAX_IDLE_MS",
    "recovery_consistency_check": "RECOVERY_CONSISTENCY_CHECK",
    "store_check_exists": "STORE_CHECK_EXISTS",
    "crash_app_on_aerospike_exception": "CRASH_APP_ON_AEROSPIKE_EXCEPTION",
    "aerospike_retries_on_exception": "AEROSPIKE_RETRIES_ON_EXCEPTION",
    "aerospike_sleep_seconds_between_retries_on_exception": (
        "AEROSPIKE_SLEEP_SECONDS_BETWEEN_RETRIES_ON_EXCEPTION"
    ),
    "reply_create_topic": "APP_REPLY_CREATE_TOPIC",
    "reply_expires": "APP_REPLY_EXPIRES",
    "reply_to_prefix": "APP_REPLY_TO_PREFIX",
    "processing_guarantee": "PROCESSING_GUARANTEE",
    "stream_buffer_maxsize": "STREAM_BUFFER_MAXSIZE",
    "stream_processing_timeout": "STREAM_PROCESSING_TIMEOUT",
    "stream_recovery_delay": "STREAM_RECOVERY_DELAY",
    "stream_wait_empty": "STREAM_WAIT_EMPTY",
    "store": "APP_STORE",
    "table_cleanup_interval": "TABLE_CLEANUP_INTERVAL",
    "table_key_index_size": "TABLE_KEY_INDEX_SIZE",
    "table_standby_replicas": "TABLE_STANDBY_REPLICAS",
    "topic_allow_declare": "TOPIC_ALLOW_DECLARE",
    "topic_disable_leader": "TOPIC_DISABLE_LEADER",
    "topic_partitions": "TOPIC_PARTITIONS",
    "topic_replication_factor": "TOPIC_REPLICATION_FACTOR",
    "cache": "CACHE_URL",
    "web_bind": "WEB_BIND",
    "web_enabled": "APP_WEB_ENABLED",
    "web_stats_enabled": "APP_WEB_STATS_ENABLED",
    "web_graph_enabled": "APP_WEB_GRAPH_ENABLED",
    "web_router_enabled": "APP_WEB_ROUTER_ENABLED",
    "web_tables_enabled": "APP_WEB_TABLES_ENABLED",
    "web_metrics_enabled": "APP_WEB_METRICS_ENABLED",
    "web_host": "WEB_HOST",
    "web_port": "WEB_PORT",
    "canonical_url": "NODE_CANONICAL_URL",
    "worker_redirect_stdouts": "WORKER_REDIRECT_STDOUTS",
    "worker_redirect_stdouts_level": "WORKER_REDIRECT_STDOUTS_LEVEL",
}

#: Faust's settings that name a class to use instead of its own (none read from the
#: environment; shoal's classes cannot be replaced).
CLASS_SETTINGS: tuple[str, ...] = (
    "Agent",
    "ConsumerScheduler",
    "Event",
    "Schema",
    "Stream",
    "Table",
    "SetTable",
    "GlobalTable",
    "SetGlobalTable",
    "TableManager",
    "Serializers",
    "Worker",
    "PartitionAssignor",
    "LeaderAssignor",
    "Router",
    "Topic",
    "HttpClient",
    "Monitor",
)

#: Settings Faust reads from no environment variable.
FAUST_NO_ENV: tuple[str, ...] = (
    "autodiscover",
    "origin",
    "ssl_context",
    "logging_config",
    "loghandlers",
    "producer_partitioner",
    "reply_to",
    "stream_publish_on_commit",
    "web",
    "web_application_options",
    "web_cors_options",
    "web_in_thread",
    "web_ssl_context",
    "web_transport",
    *CLASS_SETTINGS,
    "stream_ack_cancelled_tasks",
    "stream_ack_exceptions",
    "url",
)

#: Every setting name of faust-streaming (its ``Settings.SETTINGS``, deprecated ones included).
FAUST_NAMES: tuple[str, ...] = (*FAUST_ENV, *FAUST_NO_ENV)

#: Old names Faust maps to new ones with a warning (``App._prepare_compat_settings``), and
#: ``url``, Faust's deprecated name for ``broker``.
FAUST_COMPAT: dict[str, str] = {
    "client_id": "broker_client_id",
    "commit_interval": "broker_commit_interval",
    "create_reply_topic": "reply_create_topic",
    "num_standby_replicas": "table_standby_replicas",
    "default_partitions": "topic_partitions",
    "replication_factor": "topic_replication_factor",
    "url": "broker",
}

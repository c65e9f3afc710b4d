"""What every Kafka client of shoal shares: its base configuration, librdkafka's own log lines
routed through Python logging (rate-limited), and what is known of the broker's reachability.

librdkafka writes its log lines to stderr unless a client is given a ``logger``; during an
outage that is thousands of ``%3|...|FAIL|`` lines a minute. Here they go to the
``shoal.kafka`` logger, so they carry the app, the worker and the pid like every other line
(and JSON when asked), and a :class:`RepeatFilter` lets one line of each kind through per
``window`` seconds, saying how many like it it held back.

The last error a client reported (``error_cb``) is kept, so a call that gives up can say why
(``Connection refused`` at an address) instead of only that it timed out.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from shoal.config import Settings

log = logging.getLogger("shoal.kafka")

#: Seconds within which repeats of one kind of line are held back.
REPEAT_WINDOW = 30.0
_VARYING = re.compile(r"\d+")


class RepeatFilter(logging.Filter):
    """Lets the first line of each kind through, then one per ``window`` seconds; the one let
    through says how many like it were held back. Lines that differ only in numbers (ports,
    durations, client numbers) are of one kind."""

    def __init__(self, window: float = REPEAT_WINDOW, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()  # librdkafka's lines arrive on several threads
        self._kinds: dict[str, tuple[float, int]] = {}  # kind -> (let through at, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        kind = f"{record.levelno}:{_VARYING.sub('#', record.getMessage())}"
        now = self._clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen[0] < self.window:
                self._kinds[kind] = (seen[0], seen[1] + 1)
                return False
            if len(self._kinds) > 1000:  # many kinds over a long run: forget the old ones
                horizon = now - self.window
                self._kinds = {k: v for k, v in self._kinds.items() if v[0] > horizon}
            self._kinds[kind] = (now, 0)
        held = seen[1] if seen is not None else 0
        if held:
            record.msg = (
                f"{record.getMessage()} ({held} more like it in the last {self.window:g} s)"
            )
            record.args = ()
        return True


log.addFilter(RepeatFilter())


class _Health:
    """The last error any client of this process reported, and when."""

    def __init__(self) -> None:
        self.last_error: str | None = None
        self.last_error_at = 0.0

    def note(self, text: str) -> None:
        self.last_error, self.last_error_at = text, time.monotonic()

    def recent_error(self, within: float) -> str | None:
        """The last error if it came within the last ``within`` seconds."""
        if self.last_error is not None and time.monotonic() - self.last_error_at <= within:
            return self.last_error
        return None


health = _Health()


def on_client_error(err: Any) -> None:
    """librdkafka's ``error_cb``: most are passing (a broker went away and will be retried);
    they are logged (rate-limited) and kept for the next message that needs a reason."""
    text = err.str() if hasattr(err, "str") else str(err)
    health.note(text)
    log.warning("%s", text)


def client_config(bootstrap: str, client_id: str | None = None) -> dict[str, Any]:
    """The configuration every librdkafka client of shoal starts from."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "logger": log,
        "error_cb": on_client_error,
    }
    if client_id is not None:
        config["client.id"] = client_id
    return config


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def producer_config(conf: Settings, client_id: str, *, wait_out_outages: bool) -> dict[str, Any]:
    """A producer of an app: ``acks``, idempotence, linger and the Java client's partitioner,
    and Faust's producer settings under their librdkafka names.

    With ``wait_out_outages`` (a worker) its messages wait for a broker that is away however
    long: their events are not committed until they are stored, so giving up on them would
    only repeat those events after a restart. Other producers (scripts, the client library)
    give up after ``producer_request_timeout``, as Faust's do.
    """
    config = {
        **client_config(conf.producer_bootstrap_servers, conf.broker_client_id or client_id),
        "acks": conf.producer_acks,
        "enable.idempotence": conf.producer_acks == "all",
        "linger.ms": conf.producer_linger_ms,
        # Keyed messages land where the Java client puts them, so group_by co-partitions
        # with topics written by other Kafka clients.
        "partitioner": "murmur2_random",
        "batch.size": conf.producer_max_batch_size,
        "message.max.bytes": conf.producer_max_request_size,
        "message.timeout.ms": 0 if wait_out_outages else _ms(conf.producer_request_timeout),
        "socket.timeout.ms": max(10, _ms(conf.broker_request_timeout)),
        "topic.metadata.refresh.interval.ms": conf.producer_metadata_max_age_ms,
    }
    if conf.producer_compression_type is not None:
        config["compression.type"] = conf.producer_compression_type
    if conf.producer_connections_max_idle_ms:  # 0: librdkafka's own choice
        config["connections.max.idle.ms"] = conf.producer_connections_max_idle_ms
    return config


def consumer_config(conf: Settings, client_id: str, group_id: str) -> dict[str, Any]:
    """A consumer of an app: manual commits, and Faust's consumer settings under their
    librdkafka names.

    The app's own group (``group_id`` is the app id) starts where
    ``consumer_auto_offset_reset`` says and joins as a static member when
    ``consumer_group_instance_id`` is set; other groups (a reply topic's) always read from
    the earliest offset, so no reply is missed, and are never static.
    """
    app_group = group_id == conf.id
    config: dict[str, Any] = {
        **client_config(conf.consumer_bootstrap_servers, conf.broker_client_id or client_id),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": conf.consumer_auto_offset_reset if app_group else "earliest",
        "enable.partition.eof": False,
        # How long the group waits for a member that died before moving its partitions.
        "session.timeout.ms": _ms(conf.broker_session_timeout),
        "heartbeat.interval.ms": _ms(conf.broker_heartbeat_interval),
        "max.poll.interval.ms": _ms(conf.broker_max_poll_interval),
        "socket.timeout.ms": max(10, _ms(conf.broker_request_timeout)),
        "max.partition.fetch.bytes": conf.consumer_max_fetch_size,
        "check.crcs": conf.broker_check_crcs,
        "topic.metadata.refresh.interval.ms": conf.consumer_metadata_max_age_ms,
    }
    if conf.consumer_connections_max_idle_ms:  # 0: librdkafka's own choice
        config["connections.max.idle.ms"] = conf.consumer_connections_max_idle_ms
    if app_group and conf.consumer_group_instance_id is not None:
        config["group.instance.id"] = conf.consumer_group_instance_id
    return config


def describe_unreachable(bootstrap: str, within: float) -> str:
    """`` (the broker at X reported: ...)`` when a client saw an error lately, else ``""``."""
    reason = health.recent_error(within)
    return f" (the broker at {bootstrap} reported: {reason})" if reason else ""

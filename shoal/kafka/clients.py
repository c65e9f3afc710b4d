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


def producer_config(conf: Settings, client_id: str, *, wait_out_outages: bool) -> dict[str, Any]:
    """A producer of an app: ``acks``, idempotence, linger and the Java client's partitioner.
    With ``wait_out_outages`` (a worker) its messages wait for a broker that is away however
    long: their events are not committed until they are stored, so giving up on them would
    only repeat those events after a restart."""
    config = {
        **client_config(conf.bootstrap_servers, client_id),
        "acks": conf.producer_acks,
        "enable.idempotence": conf.producer_acks == "all",
        "linger.ms": conf.producer_linger_ms,
        # Keyed messages land where the Java client puts them, so group_by co-partitions
        # with topics written by other Kafka clients.
        "partitioner": "murmur2_random",
    }
    if wait_out_outages:
        config["message.timeout.ms"] = 0
    return config


def consumer_config(conf: Settings, client_id: str, group_id: str) -> dict[str, Any]:
    """A consumer of an app: manual commits, from the earliest offset of a new group."""
    return {
        **client_config(conf.bootstrap_servers, client_id),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        # How long the group waits for a member that died before moving its partitions.
        "session.timeout.ms": int(conf.broker_session_timeout * 1000),
    }


def describe_unreachable(bootstrap: str, within: float) -> str:
    """`` (the broker at X reported: ...)`` when a client saw an error lately, else ``""``."""
    reason = health.recent_error(within)
    return f" (the broker at {bootstrap} reported: {reason})" if reason else ""

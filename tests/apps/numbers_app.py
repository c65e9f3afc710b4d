"""A worker app for process-level tests: numbers in, "value partition pid" lines out.

Topics and the app id come from NUMBERS_APP_ID, NUMBERS_IN and NUMBERS_OUT so each test uses
its own; the broker comes from SHOAL_BROKER. The output says which partition and which
process handled each number, so tests can check ownership.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import shoal

app = shoal.App(
    os.environ["NUMBERS_APP_ID"],
    topic_partitions=int(os.environ.get("NUMBERS_PARTITIONS", "4")),
    broker_commit_interval=0.2,
    broker_session_timeout=6,
)
out_topic = app.topic(os.environ["NUMBERS_OUT"], value_type=str, value_serializer="raw")


#: Simulated work per event (loop iterations), so a test can catch a worker mid-stream.
SPIN = int(os.environ.get("NUMBERS_SPIN", "0"))
#: The value on which the first worker to see it blocks its event loop (a stuck worker);
#: the marker file makes it happen once.
STALL_ON = int(os.environ.get("NUMBERS_STALL_ON", "-1"))
STALL_MARKER = os.environ.get("NUMBERS_STALL_MARKER", "")
#: The value on which a worker takes this many MiB and keeps them (a leak).
BLOAT_ON = int(os.environ.get("NUMBERS_BLOAT_ON", "-1"))
BLOAT_MB = int(os.environ.get("NUMBERS_BLOAT_MB", "0"))
_leak: list[bytearray] = []
#: The value on which the first worker to see it loses its consumer thread (a dead thread
#: in a live process); the marker file makes it happen once.
BREAK_CONSUMER_ON = int(os.environ.get("NUMBERS_BREAK_CONSUMER_ON", "-1"))
BREAK_MARKER = os.environ.get("NUMBERS_BREAK_MARKER", "")
#: The value whose event crashes the agent (the default ``crash`` policy stops the worker),
#: once: the marker file says it happened.
CRASH_ON = int(os.environ.get("NUMBERS_CRASH_ON", "-1"))
CRASH_MARKER = os.environ.get("NUMBERS_CRASH_MARKER", "")


async def _kill_consumer_thread(batch: object) -> None:
    raise RuntimeError("the consumer thread dies here (a test's fault injection)")


def _misbehave(value: int) -> None:
    if value == STALL_ON and STALL_MARKER and not os.path.exists(STALL_MARKER):
        with open(STALL_MARKER, "w") as marker:
            marker.write(str(os.getpid()))
        threading.Event().wait()  # blocks the event loop for good: no more heartbeats
    if value == BLOAT_ON:
        _leak.append(bytearray(BLOAT_MB * 1024 * 1024))
    if value == CRASH_ON and CRASH_MARKER and not os.path.exists(CRASH_MARKER):
        with open(CRASH_MARKER, "w") as marker:
            marker.write(str(os.getpid()))
        raise RuntimeError(f"event {value} crashes the agent (a test's fault injection)")
    if value == BREAK_CONSUMER_ON and BREAK_MARKER and not os.path.exists(BREAK_MARKER):
        with open(BREAK_MARKER, "w") as marker:
            marker.write(str(os.getpid()))
        assert app.conductor is not None
        # Its next batch raises on the consumer thread, which ends.
        app.conductor._consumer._on_batch = _kill_consumer_thread  # type: ignore[union-attr]


@app.agent(app.topic(os.environ["NUMBERS_IN"], value_type=int), sink=[out_topic])
async def numbers(stream: Any) -> Any:
    pid = os.getpid()
    async for event in stream.events():
        for _ in range(SPIN):
            pass
        _misbehave(event.value)
        yield f"{event.value} {event.partition} {pid}"

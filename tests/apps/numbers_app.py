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


def _misbehave(value: int) -> None:
    if value == STALL_ON and STALL_MARKER and not os.path.exists(STALL_MARKER):
        with open(STALL_MARKER, "w") as marker:
            marker.write(str(os.getpid()))
        threading.Event().wait()  # blocks the event loop for good: no more heartbeats
    if value == BLOAT_ON:
        _leak.append(bytearray(BLOAT_MB * 1024 * 1024))


@app.agent(app.topic(os.environ["NUMBERS_IN"], value_type=int), sink=[out_topic])
async def numbers(stream: Any) -> Any:
    pid = os.getpid()
    async for event in stream.events():
        for _ in range(SPIN):
            pass
        _misbehave(event.value)
        yield f"{event.value} {event.partition} {pid}"

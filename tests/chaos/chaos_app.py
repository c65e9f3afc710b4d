"""The app the chaos suite runs: numbered events in, one output line per event processed.

Each input event is ``{"k": key, "s": seq}``: ``seq`` counts the events of one key, in the
order the feeder produced them. The ``record`` agent (concurrency 1) writes ``"k s pid"`` to
the output topic, keyed by ``k``, so every output of a key lands in one partition in the order
it was produced: the checker finds lost events, repeats and per-key order violations there.
The ``echo`` agent answers asks.

Everything comes from the environment (the harness gives each run its own topics and app id):
CHAOS_APP_ID, CHAOS_IN, CHAOS_OUT, CHAOS_ECHO, CHAOS_PARTITIONS, and the misbehaviours below.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import shoal

app = shoal.App(
    os.environ["CHAOS_APP_ID"],
    topic_partitions=int(os.environ.get("CHAOS_PARTITIONS", "8")),
)


class Numbered(shoal.Record):
    k: int
    s: int


events = app.topic(os.environ["CHAOS_IN"], value_type=Numbered)
out = app.topic(os.environ["CHAOS_OUT"], key_serializer="raw", value_serializer="raw")

#: Every Nth event blocks the worker's loop for CHAOS_SLOW_SECONDS (a slow agent).
SLOW_EVERY = int(os.environ.get("CHAOS_SLOW_EVERY", "0"))
SLOW_SECONDS = float(os.environ.get("CHAOS_SLOW_SECONDS", "0"))
#: The first worker to see seq CHAOS_STALL_ON blocks its loop for good (the marker file makes
#: it happen once): its supervisor must kill and replace it.
STALL_ON = int(os.environ.get("CHAOS_STALL_ON", "-1"))
STALL_MARKER = os.environ.get("CHAOS_STALL_MARKER", "")
#: While this file exists, an event of partition CHAOS_CRASH_PARTITION crashes its worker
#: (the agent raises under the default ``crash`` policy): that slot crash-loops.
CRASH_MARKER = os.environ.get("CHAOS_CRASH_MARKER", "")
CRASH_PARTITION = int(os.environ.get("CHAOS_CRASH_PARTITION", "-1"))


def _misbehave(value: Numbered, offset: int, partition: int) -> None:
    if partition == CRASH_PARTITION and CRASH_MARKER and os.path.exists(CRASH_MARKER):
        raise RuntimeError(f"partition {partition} crashes its worker (remove {CRASH_MARKER})")
    if SLOW_EVERY and offset % SLOW_EVERY == SLOW_EVERY - 1:
        threading.Event().wait(SLOW_SECONDS)  # blocks the event loop on purpose
    if value.s == STALL_ON and STALL_MARKER and not os.path.exists(STALL_MARKER):
        with open(STALL_MARKER, "w") as marker:
            marker.write(str(os.getpid()))
        threading.Event().wait()  # blocks the event loop for good: no more heartbeats


@app.agent(events)
async def record(stream: Any) -> None:
    pid = os.getpid()
    async for event in stream.events():
        value = event.value
        _misbehave(value, event.offset, event.partition)
        out.send_soon(key=str(value.k).encode(), value=f"{value.k} {value.s} {pid}".encode())


@app.agent(app.topic(os.environ["CHAOS_ECHO"], value_type=int))
async def echo(stream: Any) -> Any:
    async for value in stream:
        yield value

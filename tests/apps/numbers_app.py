"""A worker app for process-level tests: numbers in, "value partition pid" lines out.

Topics and the app id come from NUMBERS_APP_ID, NUMBERS_IN and NUMBERS_OUT so each test uses
its own; the broker comes from SHOAL_BROKER. The output says which partition and which
process handled each number, so tests can check ownership.
"""

from __future__ import annotations

import os
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


@app.agent(app.topic(os.environ["NUMBERS_IN"], value_type=int), sink=[out_topic])
async def numbers(stream: Any) -> Any:
    pid = os.getpid()
    async for event in stream.events():
        for _ in range(SPIN):
            pass
        yield f"{event.value} {event.partition} {pid}"

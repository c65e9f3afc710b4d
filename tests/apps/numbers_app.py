"""A worker app for process-level tests: numbers in, the same numbers out to a sink topic.

Topics and the app id come from NUMBERS_APP_ID, NUMBERS_IN and NUMBERS_OUT so each test uses
its own; the broker comes from SHOAL_BROKER.
"""

from __future__ import annotations

import os
from typing import Any

import shoal

app = shoal.App(
    os.environ["NUMBERS_APP_ID"],
    topic_partitions=4,
    broker_commit_interval=0.2,
    broker_session_timeout=6,
)
out_topic = app.topic(os.environ["NUMBERS_OUT"], value_type=int)


@app.agent(app.topic(os.environ["NUMBERS_IN"], value_type=int), sink=[out_topic])
async def numbers(stream: Any) -> Any:
    async for value in stream:
        yield value

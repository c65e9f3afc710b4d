"""An app whose agent asks another agent: for routing tests across workers and hosts.

``fanout(n)`` joins ``square`` over 0..n-1 with keys that spread over every partition, so
the squares are computed by whichever workers own those partitions, and the replies must
find their way back to the worker that asked.
"""

from __future__ import annotations

import os
from typing import Any

import shoal

app = shoal.App(os.environ["NUMBERS_APP_ID"], topic_partitions=4, broker_commit_interval=0.2)


@app.agent(app.topic(f"{app.id}-square", value_type=int))
async def square(stream: Any) -> Any:
    async for value in stream:
        yield [value * value, os.getpid()]


@app.agent(app.topic(f"{app.id}-fanout", value_type=int))
async def fanout(stream: Any) -> Any:
    async for n in stream:
        replies = await square.kvjoin([(f"key-{i}", i) for i in range(n)], timeout=30)
        yield {"asker": os.getpid(), "replies": replies}

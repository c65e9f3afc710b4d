"""The comparison's workloads in faust-streaming, as an app module for its ``faust`` command.

Run by compare.py with the faust-streaming virtualenv (it never imports shoal), from the repo
root with it on PYTHONPATH::

    .cache/bench-venvs/faust/bin/faust -A bench.faust_app worker -l warning

Configured by environment variables: BENCH_APP_ID, BENCH_BROKER (host:port), BENCH_WORKLOAD
(``adding``, ``groupby`` or ``ask``), BENCH_IN and BENCH_OUT (adding, groupby),
BENCH_GROUP_KEYS (groupby: the new key is ``a % BENCH_GROUP_KEYS``), BENCH_PARTITIONS and
BENCH_DATADIR. The settings that differ from faust's defaults match the other systems':
commits every second, 8 partitions, no web server. The reply topic of an asking process is
named after the app id, so compare.py deletes it with the rest.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from typing import Any

import faust

APP_ID = os.environ["BENCH_APP_ID"]
WORKLOAD = os.environ.get("BENCH_WORKLOAD", "adding")
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "8"))
GROUP_KEYS = int(os.environ.get("BENCH_GROUP_KEYS", "1000"))

app = faust.App(
    APP_ID,
    broker=f"kafka://{os.environ['BENCH_BROKER']}",
    datadir=os.environ.get("BENCH_DATADIR", f"/tmp/{APP_ID}-data"),
    web_enabled=False,
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
    broker_commit_interval=1.0,
    consumer_auto_offset_reset="earliest",
    reply_to=f"{APP_ID}-reply-{os.getpid()}",
    reply_create_topic=True,
)


class Add(faust.Record, serializer="json"):
    a: int
    b: int


def group_key(value: Add) -> str:
    return str(value.a % GROUP_KEYS)


if WORKLOAD in ("adding", "groupby"):
    source = app.topic(os.environ["BENCH_IN"], value_type=Add)
    output = app.topic(os.environ["BENCH_OUT"], value_serializer="json")

    if WORKLOAD == "adding":

        @app.agent(source, sink=[output])
        async def adding(stream: faust.StreamT[Add]) -> AsyncIterator[int]:
            async for value in stream:
                yield value.a + value.b

    else:

        @app.agent(source, sink=[output])
        async def grouped(stream: faust.StreamT[Add]) -> AsyncIterator[int]:
            # faust names the repartition topic after the agent, the source topic and this
            # name, not the app: the app id in it keeps runs apart (and lets compare.py find
            # the topic to delete).
            async for value in stream.group_by(group_key, name=f"k-{APP_ID}"):
                yield value.a + value.b

elif WORKLOAD == "ask":

    @app.agent(app.topic(f"{APP_ID}-double", partitions=PARTITIONS))
    async def double(stream: faust.StreamT[Any]) -> AsyncIterator[Any]:
        async for value in stream:
            yield value * 2

    @app.agent(app.topic(f"{APP_ID}-stamped", partitions=PARTITIONS))
    async def stamped(stream: faust.StreamT[Any]) -> AsyncIterator[Any]:
        async for value in stream:
            yield [value * 2, time.time()]

else:
    raise SystemExit(f"unknown BENCH_WORKLOAD {WORKLOAD!r}")


if __name__ == "__main__":
    app.main()

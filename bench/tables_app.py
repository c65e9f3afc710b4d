"""A stateful count as an app module for ``clusterctl up`` (used by bench_tables.py).

Each event's key is counted in a table (RocksDB store, changelogged) and the new count is
written to the output topic. BENCH_APP_ID, BENCH_IN, BENCH_OUT, BENCH_DATADIR and
BENCH_PARTITIONS come from bench_tables.py; the broker from SHOAL_BROKER.
"""

from __future__ import annotations

import os
from typing import Any

import shoal

app = shoal.App(
    os.environ["BENCH_APP_ID"],
    topic_partitions=int(os.environ.get("BENCH_PARTITIONS", "8")),
    broker_commit_interval=1.0,
    store="rocksdb://",
    datadir=os.environ["BENCH_DATADIR"],
)

source = app.topic(os.environ["BENCH_IN"], key_type=bytes, key_serializer="raw")
output = app.topic(os.environ["BENCH_OUT"], key_type=bytes, key_serializer="raw")
counts = app.Table("counts", default=int, key_type=bytes)


@app.agent(source)
async def count(stream: shoal.Stream[Any]) -> None:
    async for event in stream.events():
        key = event.key
        n = counts[key] + 1
        counts[key] = n
        output.send_soon(key=key, value=n)

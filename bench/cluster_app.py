"""The seed's adding agent as an app module for ``clusterctl up`` (used by bench_cluster.py).

Run as ``python -m shoal.cluster.cli -A bench.cluster_app up --workers W`` with the repo root
as the working directory and on PYTHONPATH. The app id and the topics come from BENCH_APP_ID,
BENCH_IN and BENCH_OUT (BENCH_PARTITIONS, default 8, is the partition count the app declares),
so each run uses its own; the broker comes from SHOAL_BROKER. BENCH_SPIN (default 0) is a loop
of that many iterations per event, to model a CPU-bound agent. BENCH_GROUP_BY=K (compare.py's
group_by workload) first repartitions the stream by ``str(a % K)`` through the repartition
topic ``group_by`` makes.
"""

from __future__ import annotations

import os
from typing import Any

import shoal

app = shoal.App(
    os.environ["BENCH_APP_ID"],
    topic_partitions=int(os.environ.get("BENCH_PARTITIONS", "8")),
    broker_commit_interval=1.0,
)

#: Simulated CPU work per event (loop iterations).
SPIN = int(os.environ.get("BENCH_SPIN", "0"))
#: Repartition by ``str(a % GROUP_BY)`` first (0: no group_by).
GROUP_BY = int(os.environ.get("BENCH_GROUP_BY", "0"))


class Add(shoal.Record):
    a: int
    b: int


topic = app.topic(os.environ["BENCH_IN"], value_type=Add)
out_topic = app.topic(os.environ["BENCH_OUT"])


def group_key(value: Add) -> str:
    return str(value.a % GROUP_BY)


@app.agent(topic, sink=[out_topic])
async def adding(stream: shoal.Stream[Add]) -> Any:
    spin = SPIN
    if GROUP_BY:
        stream = stream.group_by(group_key, name="k")
    async for value in stream:
        for _ in range(spin):
            pass
        yield value.a + value.b

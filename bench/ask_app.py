"""Agents to ask, as an app module for ``clusterctl up`` (used by bench_ask.py).

Run as ``python -m shoal.cluster.cli -A bench.ask_app up --workers W`` with the repo root as
the working directory and on PYTHONPATH. The app id comes from BENCH_APP_ID, and the agents'
topics are named after it, so each run uses its own; BENCH_PARTITIONS (default 4) is their
partition count. The broker comes from SHOAL_BROKER, other settings from SHOAL_* as usual
(bench_ask.py sets SHOAL_PRODUCER_LINGER_MS=0 for one of its runs).

- ``double`` yields ``value * 2``.
- ``stamped`` yields ``[value * 2, time.time()]``: the wall-clock time the agent had the
  request, so the asker (on the same machine) can split a round trip into its two legs.
"""

from __future__ import annotations

import os
import time
from typing import Any

import shoal

APP_ID = os.environ["BENCH_APP_ID"]
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "4"))

app = shoal.App(APP_ID)


@app.agent(app.topic(f"{APP_ID}-double", partitions=PARTITIONS))
async def double(stream: shoal.Stream[Any]) -> Any:
    async for value in stream:
        yield value * 2


@app.agent(app.topic(f"{APP_ID}-stamped", partitions=PARTITIONS))
async def stamped(stream: shoal.Stream[Any]) -> Any:
    async for value in stream:
        yield [value * 2, time.time()]

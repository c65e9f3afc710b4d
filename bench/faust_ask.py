"""Asks to a faust-streaming worker from a separate process, paced like shoal's (pacing.py).

Run by compare.py with the faust-streaming virtualenv, from the repo root with it on
PYTHONPATH, the worker (``faust -A bench.faust_app worker``, BENCH_WORKLOAD=ask) already
running with the same environment::

    python -m bench.faust_ask RATE SECONDS TIMEOUT

This process imports the same app module and calls ``agent.ask()``: faust then starts the app
as a client (a producer and a consumer of its own reply topic, no agents, no consumer group).
The first ask is timed from the making of the app (faust imported before) to its reply, as a
fresh client's.
Prints one line, ``RESULT {json}``, with the first and second ask (seconds) and the paced
asks' latencies (``Latencies.summary()``, milliseconds).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

from bench.pacing import Latencies, paced_asks


async def main(rate: float, seconds: float, timeout: float) -> None:
    importlib.import_module("faust")  # not timed: shoal's first ask is timed after its import
    started = time.perf_counter()
    module = importlib.import_module("bench.faust_app")  # the app is made in this event loop
    double, stamped = module.double, module.stamped
    try:
        assert await asyncio.wait_for(double.ask(21), timeout) == 42
        first_ask = time.perf_counter() - started
        started = time.perf_counter()
        assert await asyncio.wait_for(double.ask(1), timeout) == 2
        second_ask = time.perf_counter() - started
        print(f"  faust: first ask {first_ask * 1000:.0f} ms", file=sys.stderr, flush=True)

        def ask(i: int) -> Any:
            return asyncio.wait_for(stamped.ask(i), timeout)

        await paced_asks(ask, rate, max(1, int(rate)), None)  # a warm-up second
        record = Latencies()
        await paced_asks(ask, rate, int(rate * seconds), record)
        result = {"first_ask_s": first_ask, "second_ask_s": second_ask, **record.summary()}
        print("RESULT " + json.dumps(result), flush=True)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    # A faust client's app.stop() blocked its event loop for a minute and more here (its
    # consumer thread), so the process ends without it: compare.py deletes the topics.
    os._exit(0)


if __name__ == "__main__":
    rate, seconds, timeout = (float(x) for x in sys.argv[1:4])
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(main(rate, seconds, timeout))

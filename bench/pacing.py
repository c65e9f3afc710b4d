"""Asks at a fixed rate, open loop, and their latencies: shared by bench_ask.py (shoal's
client) and faust_ask.py (faust-streaming's ``agent.ask``), so both are paced and timed the
same way. Standard library only: it runs in every benchmark virtualenv."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

#: Sends one ask with this number and returns the agent's reply, ``[2 * number, the agent's
#: time.time() when it had the request]`` (the ``stamped`` agents of ask_app / faust_app).
AskStamped = Callable[[int], Awaitable[Any]]


@dataclass
class Latencies:
    """Round trips of the paced asks, in seconds."""

    rtts: list[float] = field(default_factory=list)  # each round trip, ask call -> reply
    request_legs: list[float] = field(default_factory=list)  # ask call -> agent has it
    reply_legs: list[float] = field(default_factory=list)  # agent -> reply here
    timeouts: int = 0
    errors: int = 0
    late: float = 0.0  # the latest start of an ask after its scheduled time

    def summary(self) -> dict[str, float]:
        """Milliseconds: p50, p99, p99.9 and max of the round trips, and the legs' p50."""
        return {
            "count": len(self.rtts),
            "timeouts": self.timeouts,
            "errors": self.errors,
            "p50_ms": quantile(self.rtts, 0.5) * 1000,
            "p99_ms": quantile(self.rtts, 0.99) * 1000,
            "p999_ms": quantile(self.rtts, 0.999) * 1000,
            "max_ms": max(self.rtts, default=float("nan")) * 1000,
            "request_leg_p50_ms": quantile(self.request_legs, 0.5) * 1000,
            "reply_leg_p50_ms": quantile(self.reply_legs, 0.5) * 1000,
            "late_ms": self.late * 1000,
        }


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def paced_asks(ask: AskStamped, rate: float, count: int, record: Latencies | None) -> None:
    """``count`` asks, one every 1/rate s (open loop: each send is scheduled at a fixed time
    and runs as a task of its own, so a slow reply does not delay the next send); recorded in
    ``record`` unless it is None (a warm-up). ``ask`` bounds each ask with its own timeout
    and raises ``TimeoutError`` when it passes."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int, scheduled: float) -> None:
        started = loop.time()
        began = time.perf_counter()  # uvloop's loop.time() has only ms resolution
        sent_wall = time.time()
        try:
            value, agent_wall = await ask(i)
        except TimeoutError:
            if record is not None:
                record.timeouts += 1
            return
        except Exception as exc:
            if record is not None:
                record.errors += 1
            print(f"  ask {i} failed: {exc!r}", file=sys.stderr)
            return
        done = time.perf_counter()
        done_wall = time.time()
        if value != i * 2:
            raise SystemExit(f"ask {i} answered {value!r}, not {i * 2}")
        if record is not None:
            record.rtts.append(done - began)
            record.request_legs.append(agent_wall - sent_wall)
            record.reply_legs.append(done_wall - agent_wall)
            record.late = max(record.late, started - scheduled)

    start = loop.time() + 0.01
    for i in range(count):
        at = start + i / rate
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # the request rate: sends at fixed times
        tasks.append(asyncio.create_task(one(i, at)))
    await asyncio.gather(*tasks)

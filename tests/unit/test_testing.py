"""agent.test_context(): agents unit-tested on an in-memory channel."""

from __future__ import annotations

from typing import Any

import shoal


class Add(shoal.Record):
    a: int
    b: int


async def test_test_context_runs_without_kafka() -> None:
    app = shoal.App("unit-no-kafka", broker="kafka://127.0.0.1:1")

    @app.agent(app.topic("never-created", value_type=Add))
    async def adding(stream: Any) -> Any:
        async for value in stream:
            if value.a < 0:
                raise ValueError("negative")
            yield value.a + value.b

    async with adding.test_context() as ctx:
        event = await ctx.put(Add(a=1, b=2))
        assert ctx.results[event.offset] == [3]
        bad = await ctx.put(Add(a=-1, b=2))
        assert [e for e, _ in ctx.errors] == [bad]
        event = await ctx.put(Add(a=5, b=5))
        assert ctx.results[event.offset] == [10]

"""Stream operators on the in-memory test context: what each hands out, and what it acks."""

from __future__ import annotations

from typing import Any

import shoal


def make_app() -> shoal.App:
    return shoal.App("unit-operators", broker="kafka://127.0.0.1:1")


async def test_filter_hands_out_matches_and_acks_the_rest() -> None:
    app = make_app()

    @app.agent(app.topic("numbers", value_type=int))
    async def evens(stream: Any) -> Any:
        async for value in stream.filter(lambda v: v % 2 == 0):
            yield value

    async with evens.test_context() as ctx:
        events = [await ctx.put(i) for i in range(4)]
        assert ctx.sunk == [0, 2]
        assert [e.acked for e in events[:3]] == [True, True, True]


async def test_items_events_and_enumerate() -> None:
    app = make_app()

    @app.agent(app.topic("pairs"))
    async def pairs(stream: Any) -> Any:
        async for index, (key, value) in stream.items().enumerate(start=1):
            yield (index, key, value, stream.current_event.value)

    async with pairs.test_context() as ctx:
        await ctx.put("a", key="k1")
        await ctx.put("b", key="k2")
        assert ctx.sunk == [(1, "k1", "a", "a"), (2, "k2", "b", "b")]


async def test_take_batches_and_acks_a_batch_only_after_it() -> None:
    app = make_app()
    batches: list[list[int]] = []

    @app.agent(app.topic("batched", value_type=int))
    async def batched(stream: Any) -> Any:
        async for batch in stream.take(3, within=0.05):
            batches.append(batch)
            yield sum(batch)

    async with batched.test_context() as ctx:
        first = await ctx.put(1)  # returns once the batch of one closed by `within`
        assert batches == [[1]]
        assert first.acked
        assert ctx.sunk == [1]

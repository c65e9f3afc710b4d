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


async def test_a_reply_nobody_waits_for_is_dropped_and_counted() -> None:
    from shoal.rpc.futures import ReplyFutures

    replies = ReplyFutures("a-reply-topic")
    future = replies.expect("cid-1", "adding")
    replies.resolve("cid-1", b"8", None)
    assert future.result() == 8
    replies.resolve("cid-1", b"8", None)  # a duplicate, after its asker got the first
    replies.resolve("cid-unknown", b"1", None)  # an asker that timed out and forgot it
    assert (replies.received, replies.late) == (1, 2)

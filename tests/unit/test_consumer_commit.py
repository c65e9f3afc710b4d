"""A commit waits for the consumer thread, which may run a revocation first."""

from __future__ import annotations

import asyncio
from typing import Any

from shoal.consumer import TP, ConsumerThread
from tests.helpers import wait_until


class FakeKafka:
    def __init__(self) -> None:
        self.commits: list[dict[TP, int]] = []

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})


async def test_a_commit_asked_for_before_a_revocation_leaves_the_revoked_partitions_out() -> None:
    async def revoke(tps: list[TP]) -> dict[TP, int]:
        return {}

    async def nothing(_: Any) -> Any:
        return {}

    thread = ConsumerThread(
        {}, on_batch=nothing, on_assign=nothing, on_revoke=revoke, on_error=lambda _: None
    )
    kafka = thread._kafka = FakeKafka()

    # Asked for while the thread is busy (in a fetch, or in a group callback)...
    pending = asyncio.ensure_future(thread.commit({("t", 0): 5, ("t", 1): 7}))
    await wait_until(lambda: not thread._calls.empty(), 5, "the commit to be queued")
    # ...which revokes t[0] and commits its final offset itself; then the thread gets to it.
    await thread._revoking([("t", 0)])
    thread._serve_calls()
    await pending
    assert kafka.commits == [{("t", 1): 7}]  # t[0] is not moved back to what it was

    # Asked for after the revocation: nothing left out.
    pending = asyncio.ensure_future(thread.commit({("t", 0): 9}))
    await wait_until(lambda: not thread._calls.empty(), 5, "the commit to be queued")
    thread._serve_calls()
    await pending
    assert kafka.commits[-1] == {("t", 0): 9}

"""The host's reply topic, kept by the supervisor: asks of its workers are answered there.

The supervisor reads it (a :class:`~shoal.rpc.replytopics.ReplyTopic` of its own) and hands
each reply to the worker that asked, by the route header (the worker's index).
"""

from __future__ import annotations

from collections.abc import Callable

from shoal.rpc.replytopics import ReplyTopic
from shoal.rpc.request import CORRELATION_ID, ERROR, ROUTE
from shoal.runtime.runtime import Runtime

#: (route, correlation id, value, error type or None): hands a reply to a worker.
Forward = Callable[[str, str, bytes | None, bytes | None], None]


class ReplyHub:
    """Open, route through, and close the host's reply topic."""

    def __init__(self, runtime: Runtime, forward: Forward) -> None:
        self._runtime = runtime
        self._forward = forward
        self._topic = ReplyTopic(runtime.conf, runtime.app_id, self._on_reply, kind="host-")
        #: Replies nobody could be handed (no route, or its worker is gone).
        self.late = 0

    @property
    def topic(self) -> str:
        return self._topic.topic

    @property
    def started(self) -> bool:
        return self._topic.opened

    def count_late(self) -> None:
        """A reply for a worker that is gone: its ask died with it."""
        self.late += 1

    def _on_reply(self, headers: dict[str, bytes], value: bytes | None) -> None:
        cid, route = headers.get(CORRELATION_ID), headers.get(ROUTE)
        if cid is None or route is None:
            self.late += 1
            return
        self._forward(route.decode(), cid.decode(), value, headers.get(ERROR))

    async def start(self) -> None:
        await self._topic.open(await self._runtime.producers.ensure())

    async def stop(self, timeout: float = 15.0) -> None:
        await self._topic.close(self._runtime.producers.main(), timeout)

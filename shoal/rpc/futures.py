"""The asks of one process waiting for their replies, by correlation id."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from shoal import metrics
from shoal.exceptions import AskTimeoutError, RemoteAgentError
from shoal.rpc.request import decode_reply

log = logging.getLogger(__name__)


class ReplyFutures:
    """Asks waiting for replies; replies to them come to :attr:`topic`.

    ``route`` is what a worker of a supervisor puts in its requests' route header (its index:
    the supervisor reads the host's reply topic and hands each reply to the worker that
    asked); None for a process that reads a reply topic of its own.
    """

    def __init__(self, topic: str, route: str | None = None) -> None:
        self.topic = topic
        self.route = route
        self._pending: dict[str, tuple[asyncio.Future[Any], str, float]] = {}
        self.late = 0
        self.received = 0

    def expect(self, correlation_id: str, agent: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = (future, agent, time.perf_counter())
        metrics.record.ask_sent(agent)
        return future

    @property
    def pending(self) -> int:
        """Asks waiting for their reply."""
        return len(self._pending)

    def forget(self, correlation_id: str) -> None:
        self._pending.pop(correlation_id, None)

    def is_waiting(self, correlation_id: str) -> bool:
        return correlation_id in self._pending

    def resolve(self, correlation_id: str, value: bytes | None, error: bytes | None) -> None:
        """Hand a reply to its asker (called on the loop thread)."""
        entry = self._pending.pop(correlation_id, None)
        if entry is None:
            self.late += 1
            metrics.record.late_reply()
            log.debug("dropped a reply for %s: nobody waits for it (timed out?)", correlation_id)
            return
        future, agent, sent_at = entry
        if future.done():
            return
        self.received += 1
        metrics.record.ask_reply(agent, time.perf_counter() - sent_at, error is not None)
        try:
            decoded = decode_reply(value)
        except msgspec.DecodeError as exc:
            future.set_exception(RemoteAgentError(agent, "DecodeError", f"bad reply: {exc}"))
            return
        if error is not None:
            message = decoded.get("message", "") if isinstance(decoded, dict) else str(decoded)
            future.set_exception(RemoteAgentError(agent, error.decode(), message))
        else:
            future.set_result(decoded)

    async def wait(
        self,
        correlation_id: str,
        future: asyncio.Future[Any],
        timeout: float,
        hint: Callable[[], str] = lambda: "",
        whole: float | None = None,
    ) -> Any:
        """The reply, or AskTimeoutError after ``timeout`` seconds; ``hint()`` adds what is
        known of the cause (a broker that reported errors) to its message, which names the
        ``whole`` timeout of the call (when this wait is only what was left of it)."""
        try:
            return await asyncio.wait_for(future, max(0.0, timeout))
        except TimeoutError:
            entry = self._pending.pop(correlation_id, None)
            agent = entry[1] if entry else "?"
            metrics.record.ask_timeout(agent)
            raise AskTimeoutError(
                f"no reply from agent {agent!r} within {whole or timeout:g} s "
                f"(correlation id {correlation_id}); is a worker running it?{hint()}"
            ) from None

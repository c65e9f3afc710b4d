"""What happens when an agent raises.

- On a request (an ``ask``): the error goes back to the asker (a ``RemoteAgentError`` there),
  the event is acked and the agent goes on with the next event.
- Otherwise the agent's policy (``agent_error_policy``, or ``on_error=`` of the agent):
  ``crash`` stops the worker (exit 1) and leaves the event unacked, so the committed offset
  stops before it and it is processed again after the restart; ``continue`` logs it with its
  position, dead-letters it, acks it and goes on.
- Before its first event (its body raised at once): the worker stops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shoal import metrics
from shoal.model.events import Event
from shoal.rpc.replier import Replier
from shoal.rpc.request import Request
from shoal.runtime.dispatch import DeadLetters

log = logging.getLogger(__name__)


class ErrorPolicy:
    """Applies the error policy; see the module docstring."""

    def __init__(
        self,
        replier: Replier,
        dead_letters: DeadLetters,
        crash: Callable[[BaseException], None],
    ) -> None:
        self._replier = replier
        self._dead_letters = dead_letters
        self._crash = crash

    def handle(self, agent: str, policy: str, exc: Exception, event: Event | None) -> bool:
        """True when the agent's instance should start again on the next event."""
        if event is None:
            log.error("agent %s failed before its first event", agent, exc_info=exc)
            self._crash(exc)
            return False
        where = f"{event.topic}[{event.partition}]@{event.offset}"
        request = Request.of(event.message)
        if request is not None:
            log.warning("agent %s raised on request %s: %r", agent, where, exc)
            self._replier.reply(request, error=exc)
            event.ack()
            return True
        metrics.record.events_failed(agent, event.topic)
        if policy == "crash":
            log.error("agent %s raised on %s; stopping the worker", agent, where, exc_info=exc)
            self._crash(exc)
            return False
        log.error("agent %s raised on %s; continuing", agent, where, exc_info=exc)
        self._dead_letters.send(event.message, exc)
        event.ack()
        return True

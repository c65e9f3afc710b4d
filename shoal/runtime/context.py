"""The event being handled in the current task: what tables key their partition by.

A stream sets its cursor here when it is iterated (once, not per event), so code running in
an agent, or in a task that iterates a stream, finds the event it works on with
:func:`current_event`, as Faust's ``faust.streams.current_event`` does.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol


class CursorLike(Protocol):
    #: The event handed out last (None before the first).
    current_event: Any
    #: Instances of the agent that share its partitions (tables refuse writes above 1).
    concurrency: int
    #: Who reads: the agent's or stream's name, for error messages.
    owner: str


_cursor: ContextVar[CursorLike | None] = ContextVar("shoal_cursor", default=None)


def enter(cursor: CursorLike) -> None:
    """Make ``cursor`` the current one of this task (and the tasks it starts)."""
    _cursor.set(cursor)


def current_cursor() -> CursorLike | None:
    return _cursor.get()


def current_event() -> Any:
    """The Event the current agent or stream iteration works on, or None outside one."""
    cursor = _cursor.get()
    return None if cursor is None else cursor.current_event

"""What this process gains and loses in a rebalance, told to the app in order, off the
consumer's path: Faust's ``on_partitions_revoked``, ``on_partitions_assigned`` and
``on_rebalance_complete`` signals, ``app.rebalancing``, and who the leader is.

The consumer thread of a group member waits while its rebalance callbacks run; a program's
signal receivers must not hold it up (a slow one would hold up the whole group's
rebalance), so the conductor only notes each change here and one task hands them to the
app's listener, in the order they happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from enum import StrEnum

from shoal.types import TP


class Change(StrEnum):
    ASSIGNED = "assigned"
    REVOKED = "revoked"


Listener = Callable[[Change, list[TP]], Awaitable[None]]


class Rebalances:
    """See the module docstring."""

    def __init__(self) -> None:
        self._changes: asyncio.Queue[tuple[Change, list[TP]]] = asyncio.Queue()
        #: Told of each change (the app's signals); set before the app fetches.
        self.listener: Listener | None = None
        #: True from partitions taken from this process until its next assignment.
        self.rebalancing = False

    def assigned(self, tps: list[TP]) -> None:
        """This process got ``tps`` (maybe none: the rebalance ended with nothing new)."""
        self.rebalancing = False
        self._changes.put_nowait((Change.ASSIGNED, tps))

    def revoked(self, tps: list[TP]) -> None:
        """``tps`` were taken from this process (handed over or lost)."""
        self.rebalancing = True
        self._changes.put_nowait((Change.REVOKED, tps))

    async def run(self) -> None:
        """Hand the changes to the listener, one at a time (a background task)."""
        while True:
            change, tps = await self._changes.get()
            if self.listener is not None:
                await self.listener(change, tps)

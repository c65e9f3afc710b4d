"""What the conductor and the committer ask of a process's local state (its tables).

Implemented by :class:`shoal.tables.manager.TableManager`; a process without tables has none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from shoal.types import TP


class PartitionState(Protocol):
    async def hold(self, owned: Iterable[TP]) -> None:
        """Partitions are owned now: bring their state up to date before they are fetched."""

    async def let_go(self, owned: Iterable[TP], *, seal: bool = True) -> None:
        """Only ``owned`` is owned now: put the state of the others away (``seal``: nobody
        else writes their changelogs yet, so their end may be recorded)."""

    async def standby(self, partitions: Iterable[int]) -> None:
        """Keep the state of these partition numbers warm for another host (and only these)."""

    def has_partitioned_state(self) -> bool:
        """True when there is state per partition that a standby could keep warm."""

    def prepare(self) -> Any:
        """Before the producer barrier of a commit: close the writes made so far."""

    def flush(self, token: Any) -> None:
        """After the barrier: the closed writes are in the changelog; make them durable."""

    def records_left(self) -> int:
        """Changelog records the running recoveries have still to replay (0: none runs)."""

    def dead(self) -> list[str]:
        """The threads the state needs that are not running (a worker with any is dead)."""

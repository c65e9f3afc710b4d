"""Standby replicas in a worker: stores of another host's partitions, kept warm by following
their changelogs, handed to recovery when the partition moves here.

Which partitions a host keeps warm is the supervisor's choice
(:mod:`shoal.supervisor.standbys`); each worker follows those that would be its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from shoal.tables.follower import Follower
from shoal.tables.recovery import Job
from shoal.tables.stores import PartitionStore
from shoal.tables.table import Collection

log = logging.getLogger(__name__)


class Standbys:
    """The standby stores of one process and the follower that keeps them warm."""

    def __init__(
        self,
        open_store: Callable[[Collection, int], PartitionStore],
        make_job: Callable[[Collection, int, PartitionStore], Job],
        config: Callable[[], dict[str, Any]],
    ) -> None:
        self._open = open_store
        self._job = make_job
        self._config = config
        self._follower: Follower | None = None
        #: The partition numbers followed now.
        self.partitions: set[int] = set()

    async def follow(self, wanted: set[int], tables: list[Collection]) -> None:
        """Follow exactly ``wanted``: open stores for new partitions, close dropped ones."""
        if wanted == self.partitions:
            return
        follower = self._follower
        jobs = follower.following if follower is not None else []
        dropped = [j for j in jobs if j.partition not in wanted]
        kept = [j for j in jobs if j.partition in wanted]
        new = sorted(wanted - self.partitions)

        def open_new() -> list[Job]:
            return [
                self._job(table, p, self._open(table, p))
                for p in new
                for table in tables
                if p < (table.partitions or 0)
            ]

        added = await asyncio.to_thread(open_new)
        if follower is None:
            follower = self._follower = Follower(self._config(), [])
            follower.start()
        follower.update(kept + added)  # dropped ones get no batch applied from now on
        for job in dropped:
            await asyncio.to_thread(job.store.close)
        self.partitions = set(wanted)
        log.info(
            "following the changelogs of partitions %s as a standby",
            ", ".join(map(str, sorted(wanted))) or "none",
        )

    def take(self, partitions: Iterable[int]) -> dict[tuple[str, int], PartitionStore]:
        """The warm stores of ``partitions``, now owned here: no longer followed."""
        wanted = set(partitions)
        follower = self._follower
        self.partitions -= wanted
        if follower is None:
            return {}
        jobs = follower.following
        taken = {(j.table, j.partition): j.store for j in jobs if j.partition in wanted}
        if taken:
            follower.update([j for j in jobs if j.partition not in wanted])
            log.info(
                "partitions %s were standbys here: starting from their warm stores",
                ", ".join(sorted({str(p) for _, p in taken})),
            )
        return taken

    def dead(self) -> list[str]:
        if self._follower is not None and not self._follower.alive:
            return ["the standby replicas' changelog follower"]
        return []

    async def stop(self) -> None:
        if self._follower is not None:
            await self._follower.stop()
            for job in self._follower.following:  # its stores are its own
                job.store.close()

"""The tables of one process: their changelog topics, which partitions it holds, recovery,
checkpoints, the cleanup of expired windows, and global tables.

The conductor calls four hooks (:class:`shoal.runtime.conductor.PartitionState`):

- :meth:`TableManager.hold` before it fetches newly owned source partitions: every table's
  partition N is opened and recovered first, so no event of partition N is processed, and no
  offset of it committed, before its tables are up to date;
- :meth:`TableManager.let_go` once partitions moved on: their stores are closed;
- :meth:`TableManager.prepare` / :meth:`TableManager.flush` around the producer barrier of
  every commit (see :mod:`shoal.tables.stores`).

Table partition N belongs with source partition N of every topic (the supervisor hands all
topics' partition N to one worker), except the leader topic's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, ValuesView
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal import metrics
from shoal.kafka.admin import TopicSpec, partition_counts
from shoal.kafka.clients import consumer_config
from shoal.tables.errors import TableError
from shoal.tables.expiry import Expiry, is_windowed
from shoal.tables.follower import Follower
from shoal.tables.recovery import Job, Recovery, changelog_ends
from shoal.tables.standby import Standbys
from shoal.tables.stores import MISSING, MemoryStore, PartitionStore, RocksStore, store_kind
from shoal.tables.table import Collection
from shoal.types import TP

if TYPE_CHECKING:
    from shoal.config import Settings
    from shoal.runtime.runtime import Runtime

log = logging.getLogger(__name__)


class TableManager:
    """See the module docstring."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.tables: dict[str, Collection] = {}
        self.started = False
        #: Table partitions this process holds (recovered, processed).
        self.held: set[int] = set()
        self._expiries: dict[str, Expiry] = {}
        self._recover_callbacks: list[tuple[Collection, Callable[..., Any]]] = []
        self._lock = asyncio.Lock()
        self._recoveries: dict[int, Recovery] = {}
        self._follower: Follower | None = None
        #: Standby replicas: partitions of other hosts followed here.
        self._standbys = Standbys(self._open, self._job, lambda: self._config("standby"))
        self._cleanup: asyncio.Task[None] | None = None
        #: Records recovered so far, and left, per running recovery (for metrics and logs).
        self.recovering: dict[str, tuple[int, int, float]] = {}
        #: Changelog records replayed into stores since this process started.
        self.replayed = 0

    @property
    def app_id(self) -> str:
        return self._runtime.app_id

    @property
    def conf(self) -> Settings:
        return self._runtime.conf

    # Faust's app.tables is a mapping of the tables by name.
    def __getitem__(self, name: str) -> Collection:
        return self.tables[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    def values(self) -> ValuesView[Collection]:
        return self.tables.values()

    # -- declaring ---------------------------------------------------------------------------

    def add(self, table: Collection) -> None:
        if self.started:
            raise TableError(
                f"table {table.name!r} was declared after the app started: declare tables at "
                "import time, next to the agents that use them"
            )
        if table.name in self.tables:
            raise TableError(f"there is a table named {table.name!r} already")
        self.tables[table.name] = table

    def expiry(self, table: Collection) -> Expiry:
        expiry = self._expiries.get(table.name)
        if expiry is None:
            expiry = self._expiries[table.name] = Expiry()
        return expiry

    def on_recover(self, table: Collection, fun: Callable[..., Any]) -> None:
        self._recover_callbacks.append((table, fun))

    def send_changelog(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int,
        on_delivery: Callable[[Any, Any], None] | None,
    ) -> None:
        self._runtime.producers.main().send_soon(
            topic, key, value, partition=partition, on_delivery=on_delivery
        )

    def specs(self) -> list[TopicSpec]:
        """The changelog topics to declare: compacted, as many partitions as the sources."""
        default = self._runtime.conf.topic_partitions
        out = []
        for table in self.tables.values():
            table.partitions = table.partitions or default
            table.topic_name = table.changelog_topic_name
            out.append(
                TopicSpec(
                    table.changelog_topic_name, table.partitions, {"cleanup.policy": "compact"}
                )
            )
        return out

    # -- stores ------------------------------------------------------------------------------

    def _tabledir(self) -> Path:
        conf = self._runtime.conf
        datadir = Path(conf.datadir or f"{self.app_id}-data")
        tabledir = Path(conf.tabledir)
        if not tabledir.is_absolute():
            tabledir = datadir / f"v{conf.version}" / tabledir
        return tabledir

    def _open(self, table: Collection, partition: int) -> PartitionStore:
        kind = store_kind(table.store_url or self._runtime.conf.store)
        if kind == "memory":
            return MemoryStore(partition, table._decode_key, table._decode_value)
        path = self._tabledir() / f"{table.name}-{partition}.db"
        return RocksStore(path, partition, table._decode_key, table._decode_value)

    def _job(self, table: Collection, partition: int, store: PartitionStore) -> Job:
        reset = self._reset(table, store)
        return Job(table.name, table.changelog_topic_name, partition, store, reset=reset)

    def _reset(self, table: Collection, store: PartitionStore) -> Callable[[], PartitionStore]:
        def reset() -> PartitionStore:
            if isinstance(store, RocksStore):
                store.destroy()
            return self._open(table, store.partition)

        return reset

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the changelogs, recover and follow the global tables, start the cleanup.
        The changelog topics are declared already (:meth:`specs`)."""
        conf = self._runtime.conf
        for table in self.tables.values():
            store_kind(table.store_url or conf.store)  # a bad URL fails here, named
        names = [t.changelog_topic_name for t in self.tables.values()]
        counts = await partition_counts(conf.bootstrap_servers, names) if names else {}
        for table in self.tables.values():
            found = counts.get(table.changelog_topic_name)
            if found is not None and found != table.partitions:
                raise TableError(
                    f"table {table.name!r}: its changelog topic {table.changelog_topic_name} "
                    f"has {found} partitions, but the table has {table.partitions} (its source "
                    f"topics'): set partitions={found} on the table and its topics, or delete "
                    "the changelog topic (its data is lost) so that it is made again"
                )
        globals_ = [t for t in self.tables.values() if t.is_global]
        if globals_:
            await self._start_globals(globals_)
        if any(t.window is not None and t.window.expires for t in self.tables.values()):
            self._cleanup = asyncio.get_running_loop().create_task(
                self._cleanup_loop(), name="table cleanup"
            )
        self.started = True

    async def _start_globals(self, tables: list[Collection]) -> None:
        def open_all() -> list[Job]:
            jobs = []
            for table in tables:
                for p in range(table.partitions or 1):
                    store = table.stores.get(p)
                    if store is None:
                        store = self._open(table, p)
                    table.stores[p] = store
                    jobs.append(self._job(table, p, store))
            return jobs

        jobs = await asyncio.to_thread(open_all)
        await self._recover(jobs, "global tables")
        for job in jobs:  # a store made again replaces the old one
            self.tables[job.table].stores[job.partition] = job.store
        self._follower = Follower(self._config("follower"), jobs)
        self._follower.start()

    def _config(self, role: str) -> dict[str, Any]:
        conf = self._runtime.conf
        # It only assigns partitions and never commits: the group id joins nothing.
        return consumer_config(conf, f"{self._runtime.client_id}-{role}", f"{self.app_id}-tables")

    def has_partitioned_state(self) -> bool:
        return any(not t.is_global for t in self.tables.values())

    async def standby(self, partitions: Iterable[int]) -> None:
        """Keep the tables of ``partitions`` (another host's) warm here."""
        tables = [t for t in self.tables.values() if not t.is_global]
        async with self._lock:
            await self._standbys.follow(set(partitions) - self.held, tables)

    def records_left(self) -> int:
        return sum(left for _, left, _ in self.recovering.values())

    def dead(self) -> list[str]:
        dead = []
        if self._follower is not None and not self._follower.alive:
            dead.append("the global tables' changelog follower")
        return dead + self._standbys.dead()

    async def stop(self) -> None:
        if self._cleanup is not None:
            self._cleanup.cancel()
            await asyncio.gather(self._cleanup, return_exceptions=True)
        if self._follower is not None:
            await self._follower.stop()
        await self._standbys.stop()
        for recovery in self._recoveries.values():
            recovery.cancel()
        for table in self.tables.values():
            for store in table.stores.values():
                store.close()
            table.stores.clear()

    # -- partitions (the conductor's hooks) ---------------------------------------------------

    def _partitions(self, owned: Iterable[TP]) -> set[int]:
        leader = self._runtime.leader_topic
        return {p for t, p in owned if t != leader}

    async def hold(self, owned: Iterable[TP]) -> None:
        """Open and recover every table's partitions of ``owned`` that are new here."""
        tables = [t for t in self.tables.values() if not t.is_global]
        if not tables:
            return
        async with self._lock:
            new = sorted(self._partitions(owned) - self.held)
            if not new:
                return
            # A standby copy kept here: its recovery replays only the changelog tail.
            warm = self._standbys.take(new)

            def open_all() -> list[Job]:
                jobs = []
                for p in new:
                    for table in tables:
                        if p >= (table.partitions or 0):
                            continue
                        store = warm.get((table.name, p))
                        if store is None:  # not `or`: an empty store is a store too
                            store = self._open(table, p)
                        jobs.append(self._job(table, p, store))
                return jobs

            jobs = await asyncio.to_thread(open_all)
            label = f"partitions {', '.join(map(str, new))} of {', '.join(t.name for t in tables)}"
            try:
                await self._recover(jobs, label)
            except BaseException:
                for job in jobs:
                    job.store.close()
                raise
            for job in jobs:
                table = self.tables[job.table]
                table.stores[job.partition] = job.store
                self._index_windows(table, job.partition, job.store)
            self.held.update(new)
        for table, fun in self._recover_callbacks:
            if table in tables:
                result = fun()
                if asyncio.iscoroutine(result):
                    await result

    async def _recover(self, jobs: list[Job], label: str) -> None:
        recovery = Recovery(self._config("recovery"), jobs, label)
        key = id(recovery)
        self._recoveries[key] = recovery
        started = time.monotonic()
        reported: dict[int, int] = {}

        def report(running: bool) -> None:
            done: dict[str, int] = {}
            for job in jobs:
                done[job.table] = done.get(job.table, 0) + job.done - reported.get(id(job), 0)
                reported[id(job)] = job.done
            p = recovery.progress
            metrics.record.recovery(done, p.left if running else 0, p.rate if running else 0.0)
            if running:
                self.recovering[label] = (p.done, p.left, p.rate)

        try:
            task = asyncio.ensure_future(asyncio.to_thread(recovery.run))
            while not task.done():
                await asyncio.wait({task}, timeout=1.0)
                report(running=True)
            progress = task.result()
            self.replayed += progress.done
        except asyncio.CancelledError:
            recovery.cancel()
            raise
        finally:
            report(running=False)
            self._recoveries.pop(key, None)
            self.recovering.pop(label, None)
        seconds = time.monotonic() - started
        log.info(
            "recovered %s: %d changelog records in %.1f s (%.0f/s)%s",
            label,
            progress.done,
            seconds,
            progress.done / max(seconds, 1e-6),
            "" if progress.done else "; the local stores were up to date",
        )

    def _index_windows(self, table: Collection, partition: int, store: PartitionStore) -> None:
        """Windows kept in a recovered store close as if this process had written them."""
        if table.window is None or not table.window.expires:
            return
        expiry = self.expiry(table)
        for key, _ in store.items():
            if is_windowed(key):
                expiry.add(partition, key)

    async def let_go(self, owned: Iterable[TP], *, seal: bool = True) -> None:
        """Close the stores of partitions no longer in ``owned`` (``seal``: a clean handover,
        see :meth:`_seal_and_close`; partitions the group *lost* may have a new owner writing
        their changelogs already, so their stores keep the offset of the last round)."""
        async with self._lock:
            gone = self.held - self._partitions(owned)
            if not gone:
                return
            leaving: list[tuple[str, PartitionStore]] = []
            for table in self.tables.values():
                if table.is_global:
                    continue
                for p in gone:
                    store = table.stores.pop(p, None)
                    if store is not None:
                        leaving.append((table.changelog_topic_name, store))
                    if table.name in self._expiries:
                        self._expiries[table.name].drop(p)
            self.held -= gone
            await asyncio.to_thread(self._seal_and_close, leaving if seal else [], leaving)

    def _seal_and_close(
        self, sealing: list[tuple[str, PartitionStore]], leaving: list[tuple[str, PartitionStore]]
    ) -> None:
        """Close stores of partitions that leave this process. The commit rounds record a
        lower bound of the changelog offset a store reflects; at a handover, with every
        change flushed (the conductor's last round ran) and nobody else writing, the
        changelog's end is exact: the next owner on this host then replays nothing."""
        sealable = [(topic, store) for topic, store in sealing if store.sealable]
        ends: dict[tuple[str, int], int] = {}
        if sealable:
            try:
                ends = changelog_ends(self._config("seal"), [(t, s.partition) for t, s in sealable])
            except Exception as exc:  # the lower bound stays: more is replayed, nothing lost
                log.warning("not sealing the table stores of a handover: %s", exc)
        for topic, store in leaving:
            end = ends.get((topic, store.partition))
            if end:
                store.seal(end - 1)
            store.close()

    def prepare(self) -> list[tuple[Collection, int, Any, int | None]]:
        """Before the barrier: close every store's layer of writes, and note which changelog
        offsets the broker has acknowledged (all of them written before this)."""
        token = []
        for table in self.tables.values():
            table.mark()
            for p, store in table.stores.items():
                token.append((table, p, store.prepare(), table.delivered.get(p)))
        return token

    def flush(self, token: list[tuple[Collection, int, Any, int | None]]) -> None:
        """After the barrier: the closed layers are in the changelog; write them to disk."""
        for table, p, layer, offset in token:
            store = table.stores.get(p)
            if store is not None:
                store.flush(layer, offset)

    # -- windows -----------------------------------------------------------------------------

    async def _cleanup_loop(self) -> None:
        interval = self._runtime.conf.table_cleanup_interval
        while True:
            await asyncio.sleep(interval)  # the cleanup's period
            with contextlib.suppress(TableError):
                await self.close_windows(time.time())

    async def close_windows(self, now: float) -> int:
        """Close every window that expired at ``now``: ``on_window_close(key, value)``, then
        the key is deleted (a crash in between calls it again after the restart)."""
        closed = 0
        for table in list(self.tables.values()):
            window = table.window
            if window is None or not window.expires or table.name not in self._expiries:
                continue
            expiry = self._expiries[table.name]
            for p in sorted(table.stores):
                for wkey in expiry.stale(p, window, now):
                    store = table.stores.get(p)
                    if store is None:
                        break
                    encoded = table.encode_key(wkey)
                    value = store.get(wkey, encoded)
                    if value is MISSING:
                        continue
                    try:
                        await table.on_window_close(wkey, value)  # type: ignore[attr-defined]
                    except Exception:
                        log.exception("on_window_close of table %s failed for %r", table.name, wkey)
                    store.delete(wkey, encoded)
                    table._send(p, encoded, None)
                    closed += 1
        return closed

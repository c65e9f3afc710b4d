"""Where a table partition's data lives: in memory, or in RocksDB on the worker's disk.

One store per table partition. A store knows the changelog offset it reflects
(:attr:`PartitionStore.offset`), so recovery replays only the changelog after it.

Writes made while handling events are kept in memory first, in *layers*, and reach RocksDB
only at a checkpoint: the committer closes the newest layer (:meth:`prepare`), waits until the
broker has stored every changelog record written so far (the producer barrier), writes the
closed layers to RocksDB in one atomic batch together with the changelog offset they reach
(:meth:`flush`), and only then commits the source offsets. So the store on disk never holds a
write that its changelog lacks, and its offset never claims a record that it does not hold:
a worker killed at any instant restarts from its store and replays the changelog tail.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

from shoal.exceptions import ConfigError, ShoalError

#: What ``get`` returns for a key that is not there.
MISSING: Any = object()
#: A deleted key, in a layer.
_TOMBSTONE: Any = object()
#: The column family that holds a RocksDB store's changelog offset.
_META = "__shoal"
_OFFSET_KEY = b"changelog-offset"

Decode = Callable[[bytes], Any]
Changes = list[tuple[bytes, bytes | None]]


class StoreLocked(ShoalError):
    """A RocksDB store is open in another process (its previous owner still closes it)."""


def store_kind(url: str) -> str:
    """``memory`` or ``rocksdb`` from a store URL; a clear error for anything else."""
    scheme = urlparse(str(url)).scheme or str(url).rstrip(":/")
    if scheme in ("memory", "rocksdb"):
        return scheme
    raise ConfigError(
        f"store {url!r} is not one shoal has: use 'memory://' (rebuilt from the changelog on "
        "every start) or 'rocksdb://' (kept on disk under datadir/tabledir)"
    )


class PartitionStore:
    """One table partition's data: Python keys and values, plus the encoded changelog form
    of what is not on disk yet."""

    def __init__(self, partition: int, decode_key: Decode, decode_value: Decode) -> None:
        self.partition = partition
        self._decode_key = decode_key
        self._decode_value = decode_value
        #: The changelog offset of the last record this store reflects (None: nothing).
        self.offset: int | None = None

    def get(self, key: Any, encoded: bytes) -> Any:
        raise NotImplementedError

    def set(self, key: Any, encoded: bytes, value: Any, value_bytes: bytes | None) -> None:
        raise NotImplementedError

    def delete(self, key: Any, encoded: bytes) -> None:
        raise NotImplementedError

    def items(self) -> Iterator[tuple[Any, Any]]:
        raise NotImplementedError

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    def __bool__(self) -> bool:
        # An empty store is still a store (and truth must not count every item).
        return True

    def apply(self, changes: Changes, last_offset: int) -> None:
        """Changelog records (encoded key, encoded value or None for a delete), in order,
        the last at ``last_offset``. Called from the recovery thread while the partition is
        not processed, or from the loop for a global table."""
        raise NotImplementedError

    def prepare(self) -> Any:
        """Close the current layer of writes; return what :meth:`flush` makes durable."""
        return None

    def flush(self, token: Any, offset: int | None) -> None:
        """Make the writes of ``token`` durable with the changelog ``offset`` they reach."""
        if offset is not None and (self.offset is None or offset > self.offset):
            self.offset = offset

    @property
    def sealable(self) -> bool:
        """True when every change is on disk, so the changelog's end can be recorded."""
        return False

    def seal(self, offset: int) -> None:
        """Record that the store reflects the changelog up to ``offset`` (see ``sealable``)."""

    def close(self) -> None:
        """Let the partition go (its writes not flushed are in the changelog or repeated)."""


class MemoryStore(PartitionStore):
    """A dict: empty at every start, so recovery replays the whole changelog partition."""

    def __init__(self, partition: int, decode_key: Decode, decode_value: Decode) -> None:
        super().__init__(partition, decode_key, decode_value)
        self.data: dict[Any, Any] = {}

    def get(self, key: Any, encoded: bytes) -> Any:
        return self.data.get(key, MISSING)

    def set(self, key: Any, encoded: bytes, value: Any, value_bytes: bytes | None) -> None:
        self.data[key] = value

    def delete(self, key: Any, encoded: bytes) -> None:
        self.data.pop(key, None)

    def items(self) -> Iterator[tuple[Any, Any]]:
        return iter(list(self.data.items()))

    def __len__(self) -> int:
        return len(self.data)

    def apply(self, changes: Changes, last_offset: int) -> None:
        data, decode_key, decode_value = self.data, self._decode_key, self._decode_value
        for kb, vb in changes:
            key = decode_key(kb)
            if vb is None:
                data.pop(key, None)
            else:
                data[key] = decode_value(vb)
        self.offset = last_offset


class RocksStore(PartitionStore):
    """A RocksDB database per table partition (``{tabledir}/{table}-{partition}.db``),
    through rocksdict; see the module docstring for how writes reach it."""

    def __init__(
        self,
        path: Path,
        partition: int,
        decode_key: Decode,
        decode_value: Decode,
        *,
        open_timeout: float = 30.0,
    ) -> None:
        super().__init__(partition, decode_key, decode_value)
        from rocksdict import Options, Rdict

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.create_missing_column_families(True)
        deadline = time.monotonic() + open_timeout
        while True:
            try:
                self._db = Rdict(str(path), options, column_families={_META: options})
                break
            except Exception as exc:
                # The partition's previous owner on this host may still be closing it.
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    if "lock" in str(exc).lower():
                        raise StoreLocked(
                            f"table store {path} is still open in another process after "
                            f"{open_timeout:.0f} s: {exc}"
                        ) from exc
                    raise ShoalError(f"cannot open table store {path}: {exc}") from exc
                time.sleep(0.05)  # a lock held by a process that is closing: poll it
        self._meta = self._db.get_column_family(_META)
        self._meta_handle = self._db.get_column_family_handle(_META)
        stored = self._meta.get(_OFFSET_KEY)
        self.offset = int(stored) if stored is not None else None
        #: Writes not on disk yet, newest last: (key -> (encoded key, value, encoded value)).
        self._layers: list[dict[Any, tuple[bytes, Any, bytes | None]]] = [{}]

    def get(self, key: Any, encoded: bytes) -> Any:
        for layer in reversed(self._layers):
            hit = layer.get(key)
            if hit is not None:
                return MISSING if hit[1] is _TOMBSTONE else hit[1]
        data = self._db.get(encoded)
        if data is None:
            return MISSING
        return self._decode_value(cast(bytes, data))

    def set(self, key: Any, encoded: bytes, value: Any, value_bytes: bytes | None) -> None:
        self._layers[-1][key] = (encoded, value, value_bytes)

    def delete(self, key: Any, encoded: bytes) -> None:
        self._layers[-1][key] = (encoded, _TOMBSTONE, None)

    def items(self) -> Iterator[tuple[Any, Any]]:
        pending: dict[Any, Any] = {}
        for layer in self._layers:
            pending.update((k, v[1]) for k, v in layer.items())
        decode_key, decode_value = self._decode_key, self._decode_value
        for kb, vb in self._db.items():
            key = decode_key(cast(bytes, kb))
            if key in pending:
                continue
            yield key, decode_value(cast(bytes, vb))
        for key, value in pending.items():
            if value is not _TOMBSTONE:
                yield key, value

    def apply(self, changes: Changes, last_offset: int) -> None:
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for kb, vb in changes:
            if vb is None:
                batch.delete(kb)
            else:
                batch.put(kb, vb)
        batch.put(_OFFSET_KEY, str(last_offset).encode(), self._meta_handle)
        self._db.write(batch)
        self.offset = last_offset
        if self._layers != [{}]:
            # A global table follows its changelog while it writes: the changelog wins.
            for layer in self._layers:
                for kb, _vb in changes:
                    layer.pop(self._decode_key(kb), None)

    def prepare(self) -> Any:
        closed = self._layers[-1]
        self._layers.append({})
        return closed

    def flush(self, token: Any, offset: int | None) -> None:
        from rocksdict import WriteBatch

        index = next((i for i, layer in enumerate(self._layers) if layer is token), None)
        if index is None:
            return
        # With the layers before it: a round whose barrier failed left them unflushed.
        done, self._layers = self._layers[: index + 1], self._layers[index + 1 :]
        batch = WriteBatch(raw_mode=True)
        merged: dict[Any, tuple[bytes, Any, bytes | None]] = {}
        for layer in done:
            merged.update(layer)
        for encoded, value, value_bytes in merged.values():
            if value is _TOMBSTONE:
                batch.delete(encoded)
            else:
                batch.put(encoded, value_bytes)
        if offset is not None and (self.offset is None or offset > self.offset):
            self.offset = offset
        if self.offset is not None:
            batch.put(_OFFSET_KEY, str(self.offset).encode(), self._meta_handle)
        self._db.write(batch)

    @property
    def sealable(self) -> bool:
        return all(not layer for layer in self._layers)

    def seal(self, offset: int) -> None:
        from rocksdict import WriteBatch

        if self.offset is not None and offset <= self.offset:
            return
        batch = WriteBatch(raw_mode=True)
        batch.put(_OFFSET_KEY, str(offset).encode(), self._meta_handle)
        self._db.write(batch)
        self.offset = offset

    def close(self) -> None:
        del self._meta, self._meta_handle
        self._db.close()

    def destroy(self) -> None:
        """Close and remove the files (a store that must be rebuilt)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)

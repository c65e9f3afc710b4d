"""Tables: dicts whose every change goes to a compacted changelog topic, partitioned as the
events that change them.

A key lives in the partition of the event being handled when it is written, so the worker
that owns partition N of the source topics owns partition N of every table (that is why Faust
programs ``group_by`` before they count). Reads inside an agent look in the event's partition;
reads elsewhere (a timer, a web view) look in every partition this process holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from shoal.kafka.metadata import TableInfo
from shoal.kafka.partitioner import KeySpace, key_type_name
from shoal.model import codecs
from shoal.runtime import context
from shoal.tables.ansitable import draw
from shoal.tables.errors import TableError
from shoal.tables.expiry import Expiry
from shoal.tables.stores import MISSING, PartitionStore
from shoal.tables.windows import HoppingWindow, SlidingWindow, TumblingWindow, Window
from shoal.tables.wrappers import WindowWrapper

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_MEMO_TYPES = frozenset({str, bytes, int})
_NO_KEY = object()
#: Every so many changelog records of a partition, one reports its offset when delivered: a
#: store's recorded offset is then at most about this many records behind its changes.
TRACK_EVERY = 128


class TableHost(Protocol):
    """What a table needs of its manager (:class:`shoal.tables.manager.TableManager`)."""

    @property
    def app_id(self) -> str: ...

    @property
    def conf(self) -> Any: ...

    started: bool

    def add(self, table: Collection) -> None: ...

    def expiry(self, table: Collection) -> Expiry: ...

    def on_recover(self, table: Collection, fun: Callable[..., Any]) -> None: ...

    def send_changelog(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int,
        on_delivery: Callable[[Any, Any], None] | None,
    ) -> None: ...


def _changelog_name(changelog_topic: Any) -> str | None:
    if changelog_topic is None:
        return None
    if isinstance(changelog_topic, str):
        return changelog_topic
    return str(changelog_topic.get_topic_name())


class Collection:
    """What every table kind shares: the changelog, the stores, the partition of a key."""

    #: Every worker holds every partition (GlobalTable).
    is_global = False

    def __init__(
        self,
        manager: TableHost,
        name: str,
        *,
        default: Callable[[], Any] | None = None,
        key_type: Any = None,
        value_type: Any = None,
        partitions: int | None = None,
        changelog_topic: Any = None,
        help: str | None = None,
        store: str | None = None,
        key_serializer: Any = None,
        value_serializer: Any = None,
        window: Window | None = None,
        on_window_close: Callable[..., Any] | None = None,
        **options: Any,
    ) -> None:
        if not name or not _NAME.match(name):
            raise TableError(
                f"table name {name!r}: use letters, digits, '.', '_' and '-' (it names the "
                "changelog topic)"
            )
        if default is not None and not callable(default):
            raise TableError(
                f"table {name!r}: default must be callable, like int or list (it makes the "
                f"value of a missing key), not {default!r}"
            )
        self._manager = manager
        self.name = name
        self.default = default
        self.key_type = key_type
        self.value_type = value_type
        self.help = help or ""
        self.partitions = partitions
        self._changelog = _changelog_name(changelog_topic)
        self.store_url = store
        self.window = window
        self._on_window_close = on_window_close
        #: Faust options shoal accepts and has no use for (use_partitioner, extra_topic_configs...).
        self.options = options
        #: How the keys of the table's events are encoded: what finds a key's partition.
        self._events_key_serializer = key_serializer
        self.key_serializer = key_serializer or ("raw" if key_type is bytes else "json")
        self.value_serializer = value_serializer or ("raw" if value_type is bytes else "json")
        self._encode_key = codecs.make_encoder(self.key_serializer, key_type)
        self._encode_value = codecs.make_encoder(self.value_serializer, value_type)
        self._decode_key_raw = codecs.make_decoder(self.key_serializer, key_type)
        self._decode_value = codecs.make_decoder(self.value_serializer, value_type)
        #: The stores of the partitions this process holds.
        self.stores: dict[int, PartitionStore] = {}
        #: The offset of the last changelog record of each partition the broker acknowledged
        #: (written by the producer's delivery thread).
        self.delivered: dict[int, int] = {}
        self._on_delivery: dict[int, Callable[[Any, Any], None]] = {}
        #: Partitions whose next changelog record reports its offset when delivered: the
        #: first after each commit round (see :meth:`mark`) and every TRACK_EVERY-th, not a
        #: callback per record.
        self._track: set[int] = set()
        self._sent: dict[int, int] = {}
        self._last_key: Any = _NO_KEY
        self._last_encoded = b""
        #: Fixed once the app starts (the manager declares it).
        self.topic_name: str | None = None
        manager.add(self)

    # -- naming ------------------------------------------------------------------------------

    @property
    def changelog_topic_name(self) -> str:
        """``{app id}-{table}-changelog``, as Faust names it, unless given."""
        return self._changelog or f"{self._manager.app_id}-{self.name}-changelog"

    @property
    def changelog_topic(self) -> str:
        return self.changelog_topic_name

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.name}>"

    def __hash__(self) -> int:
        return id(self)

    # -- where a key lives (web views, shoal.web.routes) --------------------------------------

    def keyspace(self) -> KeySpace:
        """How a key maps to its partition: as the events that write it are partitioned, by
        their key encoded with the table's ``key_serializer`` if given, else the app's."""
        conf = self._manager.conf
        return KeySpace(
            f"table {self.name!r}",
            self.partitions or conf.topic_partitions,
            self._events_key_serializer or conf.key_serializer,
            key_type_name(self.key_type),
        )

    def info(self) -> TableInfo:
        """The table as routers and clients see it (published on the metadata topic)."""
        space = self.keyspace()
        return TableInfo(
            self.name,
            space.partitions,
            str(space.key_serializer),
            space.key_type,
            is_global=self.is_global,
            windowed=self.window is not None,
            help=self.help,
        )

    # -- codecs ------------------------------------------------------------------------------

    def _decode_key(self, data: bytes) -> Any:
        key = self._decode_key_raw(data)
        if isinstance(key, list):  # JSON keeps no tuples: windowed keys are (key, (start, end))
            return tuple(tuple(v) if isinstance(v, list) else v for v in key)
        return key

    def encode_key(self, key: Any) -> bytes:
        # ``table[k] += 1`` encodes the same key twice in a row: remember the last one (of
        # an immutable type only, whose encoding cannot change under the same object).
        if key is self._last_key:
            return self._last_encoded
        data = self._encode_key(list(key) if isinstance(key, tuple) else key)
        if data is None:
            raise TableError(f"table {self.name!r}: a key cannot be None")
        if type(key) in _MEMO_TYPES:
            self._last_key, self._last_encoded = key, data
        return data

    # -- partitions --------------------------------------------------------------------------

    def _writing_partition(self, what: str) -> int:
        cursor = context.current_cursor()
        event = None if cursor is None else cursor.current_event
        if event is None:
            raise TableError(
                f"table {self.name!r}: cannot {what} outside an agent or a stream iteration: "
                "a key belongs to the partition of the event being handled"
            )
        if cursor is not None and cursor.concurrency > 1:
            raise TableError(
                f"table {self.name!r}: agent {cursor.owner} runs with concurrency="
                f"{cursor.concurrency} and cannot {what}: its instances would race on the same "
                "keys. Write tables from an agent with concurrency=1 (reading is fine)"
            )
        partition: int = event.message.partition
        if partition not in self.stores and partition < (self.partitions or 0):
            raise TableError(
                f"table {self.name!r}: partition {partition} is not held by this process (the "
                f"event from {event.message.topic}[{partition}] came while it was recovering "
                "or after it moved)"
            )
        if partition not in self.stores:
            raise TableError(
                f"table {self.name!r}: the event from {event.message.topic}[{partition}] "
                f"has no table partition {partition} here (the changelog "
                f"{self.changelog_topic_name} has {self.partitions} partitions): give the "
                "table as many partitions as its source topics have"
            )
        return partition

    def _reading_stores(self) -> list[PartitionStore]:
        event = context.current_event()
        if event is not None and not self.is_global:
            store = self.stores.get(event.message.partition)
            if store is not None:
                return [store]
        return list(self.stores.values())

    # -- the dict ----------------------------------------------------------------------------

    def _get(self, key: Any) -> Any:
        encoded = self.encode_key(key)
        event = context.current_event()
        if event is not None and not self.is_global:  # the common case: one store
            store = self.stores.get(event.message.partition)
            if store is not None:
                return store.get(key, encoded)
        for store in self._reading_stores():
            value = store.get(key, encoded)
            if value is not MISSING:
                return value
        return MISSING

    def _set(self, key: Any, value: Any) -> int:
        partition = self._writing_partition("set a key")
        encoded = self.encode_key(key)
        value_bytes = self._encode_value(value)
        self.stores[partition].set(key, encoded, value, value_bytes)
        self._send(partition, encoded, value_bytes)
        return partition

    def _del(self, key: Any) -> int:
        partition = self._writing_partition("delete a key")
        encoded = self.encode_key(key)
        self.stores[partition].delete(key, encoded)
        self._send(partition, encoded, None)
        return partition

    def mark(self) -> None:
        """A commit round closed the writes so far: the next record of each partition
        reports its offset. Any offset reported before the next round's barrier is then a
        record written before it, whose change that round makes durable: a lower bound of
        what the store reflects, which is all recovery needs (it replays from there)."""
        self._track = set(self.stores)

    def _send(self, partition: int, key: bytes, value: bytes | None) -> None:
        callback = None
        sent = self._sent[partition] = self._sent.get(partition, 0) + 1
        if partition in self._track or not sent % TRACK_EVERY:
            self._track.discard(partition)
            callback = self._on_delivery.get(partition)
            if callback is None:
                delivered = self.delivered

                def callback(err: Any, msg: Any, partition: int = partition) -> None:
                    if err is None:
                        delivered[partition] = msg.offset()

                self._on_delivery[partition] = callback
        self._manager.send_changelog(
            self.topic_name or self.changelog_topic_name,
            key,
            value,
            partition=partition,
            on_delivery=callback,
        )

    def __getitem__(self, key: Any) -> Any:
        value = self._get(key)
        if value is MISSING:
            return self.__missing__(key)
        return value

    def __missing__(self, key: Any) -> Any:
        if self.default is not None:
            return self.default()
        raise KeyError(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._set(key, value)

    def __delitem__(self, key: Any) -> None:
        if self._get(key) is MISSING:
            raise KeyError(key)
        self._del(key)

    def __contains__(self, key: Any) -> bool:
        return self._get(key) is not MISSING

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._get(key)
        return default if value is MISSING else value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        value = self._get(key)
        if value is MISSING:
            self._set(key, default)
            return default
        return value

    def pop(self, key: Any, *default: Any) -> Any:
        value = self._get(key)
        if value is MISSING:
            if default:
                return default[0]
            raise KeyError(key)
        self._del(key)
        return value

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self._set(key, value)

    def clear(self) -> None:
        """Delete every key of the event's partition (Faust deletes them one by one too)."""
        partition = self._writing_partition("clear")
        for key, _ in list(self.stores[partition].items()):
            self._del(key)

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Keys and values of the partitions this process holds (of the event's partition,
        inside an agent)."""
        for store in self._reading_stores():
            yield from store.items()

    def keys(self) -> Iterator[Any]:
        return (key for key, _ in self.items())

    def values(self) -> Iterator[Any]:
        return (value for _, value in self.items())

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def __len__(self) -> int:
        return sum(len(store) for store in self._reading_stores())

    def as_ansitable(self, title: str = "{table.name}", **kwargs: Any) -> str:
        """The keys and values this process holds, drawn as a terminal table."""
        rows = sorted(((repr(k), repr(v)) for k, v in self.items()), key=lambda r: r[0])
        return draw(title.format(table=self), rows, **kwargs)

    def on_recover(self, fun: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: call ``fun`` once the table's partitions have been recovered."""
        self._manager.on_recover(self, fun)
        return fun


class Table(Collection):
    """Faust's ``app.Table``: a dict, changelogged, partitioned like its source events."""

    def using_window(self, window: Window, *, key_index: bool = False) -> WindowWrapper:
        if self._manager.started:
            raise TableError(f"table {self.name!r}: windows must be set before the app starts")
        self.window = window
        return WindowWrapper(self)

    def tumbling(self, size: Any, expires: Any = None, key_index: bool = False) -> WindowWrapper:
        """Windows of ``size`` seconds, one after the other."""
        return self.using_window(TumblingWindow(size, expires), key_index=key_index)

    def hopping(
        self, size: Any, step: Any, expires: Any = None, key_index: bool = False
    ) -> WindowWrapper:
        """Windows of ``size`` seconds that start every ``step`` seconds."""
        return self.using_window(HoppingWindow(size, step, expires), key_index=key_index)

    def sliding(
        self, before: Any, after: Any = 0.0, expires: Any = None, key_index: bool = False
    ) -> WindowWrapper:
        """A window around each event, from ``before`` seconds before it to ``after`` after."""
        return self.using_window(SlidingWindow(before, after, expires), key_index=key_index)

    async def on_window_close(self, key: Any, value: Any) -> None:
        if self._on_window_close is not None:
            result = self._on_window_close(key, value)
            if hasattr(result, "__await__"):
                await result


class GlobalTable(Table):
    """Every worker holds every partition, following the changelog as others write it."""

    is_global = True

"""Windowed tables, with Faust's API: ``table.tumbling(10)[key] += 1``, ``.current()``,
``.now()``, ``.value()``, ``.delta(d)``, ``relative_to_*``.

A windowed value is stored under ``(key, (start, end))``. Which window an operation means
comes from a timestamp: the event's (``relative_to_stream``, the default), the clock
(``relative_to_now``), a field of the event's value (``relative_to_field``) or a fixed one
(``relative_to``). Windows that expire are closed by the table manager's cleanup
(:class:`shoal.tables.expiry.Expiry`): ``on_window_close(key, value)`` is called, then the
key is deleted.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shoal.model.records import field_getter
from shoal.runtime import context
from shoal.tables.errors import TableError
from shoal.tables.expiry import is_windowed
from shoal.tables.stores import MISSING

if TYPE_CHECKING:
    from shoal.tables.windows import WindowRange

#: A windowed table (shoal.tables.table.Table, which imports this module).
Table = Any

Relative = Callable[[Any], float | datetime]


def _outside(what: str) -> TableError:
    return TableError(f"{what} needs the event being handled: call it inside an agent")


def _timestamp(value: float | datetime) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def event_time(event: Any) -> float:
    if event is None:
        raise _outside("a window relative to the stream")
    ts = event.message.timestamp
    return ts if ts is not None else time.time()


class WindowSet:
    """The windows of one key: ``table[key]`` of a windowed table."""

    def __init__(self, key: Any, table: Table, wrapper: WindowWrapper, event: Any = None):
        self.key = key
        self.table = table
        self.wrapper = wrapper
        self.event = event

    def apply(self, op: Callable[[Any, Any], Any], value: Any, event: Any = None) -> WindowSet:
        """Apply ``op(old, value)`` in every window the timestamp falls in."""
        ts = self.wrapper.get_timestamp(event or self.event)
        table = self.table
        for window_range in table.window.ranges(ts):
            wkey = (self.key, window_range)
            set_windowed(table, wkey, op(get_windowed(table, wkey), value))
        return self

    def value(self, event: Any = None) -> Any:
        """The value in the current window of the wrapper's timestamp."""
        ts = self.wrapper.get_timestamp(event or self.event)
        return self._at(self.table.window.current(ts))

    def current(self, event: Any = None) -> Any:
        """The value in the current window of the event's timestamp."""
        ts = event_time(event or self.event or context.current_event())
        return self._at(self.table.window.current(ts))

    def now(self) -> Any:
        """The value in the earliest window that holds the current time."""
        return self._at(self.table.window.earliest(relative_now(self.table)))

    def delta(self, d: Any, event: Any = None) -> Any:
        """The value in the window ``d`` seconds before the event's."""
        ts = event_time(event or self.event or context.current_event())
        return self._at(self.table.window.delta(ts, d))

    def _at(self, window_range: WindowRange) -> Any:
        return get_windowed(self.table, (self.key, window_range))

    def __getitem__(self, w: Any) -> Any:
        if hasattr(w, "message"):  # an event: the same key, relative to that event
            return WindowSet(self.key, self.table, self.wrapper, w)
        return get_windowed(self.table, (self.key, w))

    def __iadd__(self, other: Any) -> WindowSet:
        return self.apply(operator.add, other)

    def __isub__(self, other: Any) -> WindowSet:
        return self.apply(operator.sub, other)

    def __imul__(self, other: Any) -> WindowSet:
        return self.apply(operator.mul, other)

    def __itruediv__(self, other: Any) -> WindowSet:
        return self.apply(operator.truediv, other)

    def __ifloordiv__(self, other: Any) -> WindowSet:
        return self.apply(operator.floordiv, other)

    def __imod__(self, other: Any) -> WindowSet:
        return self.apply(operator.mod, other)

    def __ior__(self, other: Any) -> WindowSet:
        return self.apply(operator.or_, other)

    def __iand__(self, other: Any) -> WindowSet:
        return self.apply(operator.and_, other)

    def __repr__(self) -> str:
        return f"<WindowSet: {self.table.name}[{self.key!r}]>"


def get_windowed(table: Table, wkey: Any) -> Any:
    value = table._get(wkey)
    return table.__missing__(wkey) if value is MISSING else value


def set_windowed(table: Table, wkey: Any, value: Any) -> None:
    partition = table._set(wkey, value)
    if table.window is not None and table.window.expires is not None:
        table._manager.expiry(table).add(partition, wkey)


def relative_now(table: Table) -> float:
    """Faust's: inside an agent, the latest window end seen in the event's partition."""
    event = context.current_event()
    if event is None:
        return time.time()
    latest = table._manager.expiry(table).latest.get(event.message.partition)
    return latest or time.time()


class WindowWrapper:
    """A windowed table: ``wrapper[key]`` is a :class:`WindowSet`."""

    def __init__(self, table: Table, relative_to: Relative | None = None) -> None:
        self.table = table
        self._relative = relative_to

    @property
    def name(self) -> str:
        return str(self.table.name)

    def clone(self, relative_to: Relative | None) -> WindowWrapper:
        return WindowWrapper(self.table, relative_to)

    def relative_to(self, ts: float | datetime) -> WindowWrapper:
        """Windows at a fixed time."""
        at = _timestamp(ts)
        return self.clone(lambda event: at)

    def relative_to_now(self) -> WindowWrapper:
        """Windows at the current time."""
        return self.clone(lambda event: relative_now(self.table))

    def relative_to_stream(self) -> WindowWrapper:
        """Windows at the event's timestamp (the default)."""
        return self.clone(event_time)

    def relative_to_field(self, field: Any) -> WindowWrapper:
        """Windows at a field of the event's value (a Record field: ``Model.time``)."""
        get = field_getter(field)

        def at(event: Any) -> float | datetime:
            if event is None:
                raise _outside("a window relative to a field")
            return get(event.value)  # type: ignore[no-any-return]

        return self.clone(at)

    def get_timestamp(self, event: Any = None) -> float:
        event = event or context.current_event()
        if self._relative is None:
            return event_time(event)
        return _timestamp(self._relative(event))

    def __getitem__(self, key: Any) -> WindowSet:
        return WindowSet(key, self.table, self, context.current_event())

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, WindowSet):  # the end of ``wrapper[key] += n``: done already
            return
        ts = self.get_timestamp()
        for window_range in self.table.window.ranges(ts):
            set_windowed(self.table, (key, window_range), value)

    def __delitem__(self, key: Any) -> None:
        ts = self.get_timestamp()
        for window_range in self.table.window.ranges(ts):
            wkey = (key, window_range)
            if wkey in self.table:
                del self.table[wkey]

    def __contains__(self, key: Any) -> bool:
        window = self.table.window
        return (key, window.current(self.get_timestamp())) in self.table

    def items(self) -> Iterator[tuple[Any, Any]]:
        """(key, value) of the current window of the wrapper's timestamp."""
        wanted = self.table.window.current(self.get_timestamp())
        for wkey, value in self.table.items():
            if is_windowed(wkey) and wkey[1] == wanted:
                yield wkey[0], value

    def keys(self) -> Iterator[Any]:
        return (key for key, _ in self.items())

    def values(self) -> Iterator[Any]:
        return (value for _, value in self.items())

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def as_ansitable(self, title: str = "{table.name}", **kwargs: Any) -> str:
        return str(self.table.as_ansitable(title, **kwargs))

    def on_recover(self, fun: Callable[..., Any]) -> Callable[..., Any]:
        self.table.on_recover(fun)
        return fun

    def __repr__(self) -> str:
        return f"<WindowWrapper: {self.table.name} {self.table.window!r}>"

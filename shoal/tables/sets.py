"""Faust's SetTable and SetGlobalTable: tables whose values are sets.

``table[key]`` is a set bound to its key: ``add``, ``discard``, ``remove``, ``update``,
``difference_update``, ``intersection_update``, ``symmetric_difference_update`` and
``clear`` change it in place and write the whole new set to the changelog, so replaying the
changelog twice gives the same set.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSet
from typing import Any

from shoal.tables.stores import MISSING
from shoal.tables.table import Table


class ChangeloggedSet(MutableSet[Any]):
    """The set of one key; each change is written back to its table."""

    def __init__(self, table: Table, key: Any, data: Iterable[Any] = ()) -> None:
        self._table = table
        self._key = key
        self._data = set(data)

    def _save(self) -> None:
        self._table._set(self._key, self._data)

    def __contains__(self, value: object) -> bool:
        return value in self._data

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def add(self, value: Any) -> None:
        if value not in self._data:
            self._data.add(value)
            self._save()

    def discard(self, value: Any) -> None:
        if value in self._data:
            self._data.discard(value)
            self._save()

    def update(self, *others: Iterable[Any]) -> None:
        before = len(self._data)
        for other in others:
            self._data.update(other)
        if len(self._data) != before:
            self._save()

    def difference_update(self, *others: Iterable[Any]) -> None:
        before = len(self._data)
        self._data.difference_update(*others)
        if len(self._data) != before:
            self._save()

    def intersection_update(self, *others: Iterable[Any]) -> None:
        before = set(self._data)
        self._data.intersection_update(*others)
        if self._data != before:
            self._save()

    def symmetric_difference_update(self, other: Iterable[Any]) -> None:
        before = set(self._data)
        self._data.symmetric_difference_update(other)
        if self._data != before:
            self._save()

    def clear(self) -> None:
        if self._data:
            self._data.clear()
            self._save()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ChangeloggedSet):
            return self._data == other._data
        return self._data == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ChangeloggedSet({self._data!r})"


class SetTable(Table):
    """A table of sets: ``table[key].add(value)``."""

    def __init__(self, manager: Any, name: str, **kwargs: Any) -> None:
        kwargs.pop("start_manager", None)  # Faust's: its set manager; shoal has none
        kwargs.pop("default", None)  # always a set
        super().__init__(manager, name, **kwargs)
        decode = self._decode_value
        self._decode_value = lambda data: set(decode(data))
        encode = self._encode_value
        self._encode_value = lambda value: encode(list(value))

    def __getitem__(self, key: Any) -> ChangeloggedSet:
        value = self._get(key)
        return ChangeloggedSet(self, key, () if value is MISSING else value)

    def __setitem__(self, key: Any, value: Iterable[Any]) -> None:
        self._set(key, set(value))

    def __missing__(self, key: Any) -> Any:
        return ChangeloggedSet(self, key)


class SetGlobalTable(SetTable):
    """A set table that every worker holds whole."""

    is_global = True

"""The parts of tables that need no broker: window ranges (Faust's arithmetic), stores and
their checkpoints, window expiry, set tables, the terminal table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shoal.exceptions import ConfigError
from shoal.tables.ansitable import draw
from shoal.tables.expiry import Expiry
from shoal.tables.stores import MISSING, MemoryStore, RocksStore, StoreLocked, store_kind
from shoal.tables.windows import HoppingWindow, SlidingWindow, TumblingWindow


def dec(data: bytes) -> Any:
    return json.loads(data)


def enc(value: Any) -> bytes:
    return json.dumps(value).encode()


# -- windows ----------------------------------------------------------------------------------


def test_tumbling_windows_do_not_overlap() -> None:
    window = TumblingWindow(10)
    assert window.ranges(25.0) == [(20.0, 29.9)]
    assert window.current(25.0) == window.earliest(25.0) == (20.0, 29.9)
    assert window.delta(25.0, 10) == (10.0, 19.9)


def test_hopping_windows_hold_a_timestamp_size_over_step_times() -> None:
    window = HoppingWindow(10, 5)
    assert window.ranges(12.0) == [(5.0, 14.9), (10.0, 19.9)]
    assert window.current(12.0) == (10.0, 19.9)  # the latest
    assert window.earliest(12.0) == (5.0, 14.9)
    # Every timestamp of a range lands in it (faust-streaming #195: none missing).
    for ts in (10.0, 12.5, 14.9):
        assert (5.0, 14.9) in window.ranges(ts)


def test_windows_expire_by_faust_rule() -> None:
    window = TumblingWindow(10, expires=20)
    assert not window.stale(29.9, now=45.0)
    assert window.stale(19.9, now=45.0)
    assert not TumblingWindow(10).stale(0.0, now=1e12)  # no expires: never


def test_sliding_windows_and_bad_windows() -> None:
    assert SlidingWindow(5, 1).ranges(100.0) == [(95.0, 101.0)]
    with pytest.raises(ValueError, match="size must be more than 0"):
        TumblingWindow(0)
    with pytest.raises(ValueError, match="must not be longer than its size"):
        HoppingWindow(5, 10)


# -- stores -----------------------------------------------------------------------------------


def test_store_urls() -> None:
    assert store_kind("memory://") == "memory"
    assert store_kind("rocksdb://") == "rocksdb"
    with pytest.raises(ConfigError, match="'aerospike://x' is not one shoal has"):
        store_kind("aerospike://x")


def test_a_memory_store_applies_the_changelog() -> None:
    store = MemoryStore(0, dec, dec)
    store.apply([(b'"a"', b"1"), (b'"b"', b"2"), (b'"a"', None)], last_offset=7)
    assert store.get("a", b'"a"') is MISSING
    assert store.get("b", b'"b"') == 2
    assert store.offset == 7 and len(store) == 1


def test_rocks_writes_reach_disk_only_at_a_flush_with_their_offset(tmp_path: Path) -> None:
    path = tmp_path / "t-0.db"
    store = RocksStore(path, 0, dec, dec)
    store.set("a", b'"a"', 1, b"1")
    first = store.prepare()  # the committer closes a layer, then waits for the barrier
    store.set("b", b'"b"', 2, b"2")  # written after it: not covered by that barrier
    assert store.get("a", b'"a"') == 1 and store.get("b", b'"b"') == 2
    store.flush(first, offset=0)
    store.close()

    again = RocksStore(path, 0, dec, dec)
    assert again.offset == 0
    assert again.get("a", b'"a"') == 1
    assert again.get("b", b'"b"') is MISSING  # never claimed by a flush: the changelog has it
    again.close()


def test_a_flush_takes_the_layers_an_earlier_failed_round_left(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "t-1.db", 1, dec, dec)
    store.set("a", b'"a"', 1, b"1")
    store.prepare()  # its barrier timed out: never flushed
    store.delete("a", b'"a"')
    store.set("c", b'"c"', 3, b"3")
    second = store.prepare()
    store.flush(second, offset=5)
    store.close()
    again = RocksStore(tmp_path / "t-1.db", 1, dec, dec)
    assert dict(again.items()) == {"c": 3} and again.offset == 5
    again.close()


def test_a_store_is_sealed_at_the_changelog_end_only_with_nothing_pending(
    tmp_path: Path,
) -> None:
    store = RocksStore(tmp_path / "t-3.db", 3, dec, dec)
    store.set("a", b'"a"', 1, b"1")
    assert not store.sealable  # a change not on disk: the end would claim it
    store.flush(store.prepare(), offset=0)  # the round's lower bound
    assert store.sealable
    store.seal(41)
    store.seal(7)  # never backwards
    store.close()
    again = RocksStore(tmp_path / "t-3.db", 3, dec, dec)
    assert again.offset == 41 and again.get("a", b'"a"') == 1
    again.close()


def test_a_locked_store_says_who_holds_it(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "t-2.db", 2, dec, dec)
    try:
        with pytest.raises(StoreLocked, match="still open in another process"):
            RocksStore(tmp_path / "t-2.db", 2, dec, dec, open_timeout=0.2)
    finally:
        store.close()


# -- windows that close, sets, drawing --------------------------------------------------------


def test_expiry_closes_each_window_once_oldest_first() -> None:
    window = TumblingWindow(10, expires=10)
    expiry = Expiry()
    for key in (("b", (0.0, 9.9)), ("a", (0.0, 9.9)), ("a", (10.0, 19.9))):
        expiry.add(3, key)
    expiry.add(3, ("a", (0.0, 9.9)))  # the same key again: still once
    assert expiry.stale(3, window, now=15.0) == []
    assert expiry.stale(3, window, now=25.0) == [("a", (0.0, 9.9)), ("b", (0.0, 9.9))]
    assert expiry.stale(3, window, now=25.0) == []
    assert expiry.stale(3, window, now=40.0) == [("a", (10.0, 19.9))]
    assert expiry.latest[3] == 19.9


def test_an_ansi_table_lists_every_row() -> None:
    text = draw("Counts", [("'a'", "1"), ("'bb'", "22")])
    assert "Counts" in text and "'bb'" in text and len(text.splitlines()) == 8


# -- standby replicas -------------------------------------------------------------------------


def test_standbys_go_to_the_next_members_never_to_the_owner() -> None:
    from shoal.supervisor.standbys import standby_partitions

    two = {"a": {0, 1}, "b": {2, 3}}
    assert standby_partitions(two, "a", 1) == {2, 3}
    assert standby_partitions(two, "b", 1) == {0, 1}
    assert standby_partitions(two, "b", 0) == set()
    assert standby_partitions({"a": {0, 1, 2, 3}}, "a", 1) == set()  # nobody else
    three = {"a": {0}, "b": {1}, "c": {2}}
    assert [standby_partitions(three, m, 1) for m in "abc"] == [{2}, {0}, {1}]
    assert [standby_partitions(three, m, 5) for m in "abc"] == [{1, 2}, {0, 2}, {0, 1}]

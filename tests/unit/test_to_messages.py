"""Fetched records to Messages, in the consumer thread."""

from __future__ import annotations

from typing import Any

from shoal.kafka.consumer import to_messages
from shoal.model.events import Message


class Record:
    """What confluent-kafka hands out: everything behind a method."""

    def __init__(self, offset: int, ts: int, error: Any = None) -> None:
        self._offset, self._ts, self._error = offset, ts, error

    def error(self) -> Any:
        return self._error

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 3

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ts)

    def key(self) -> bytes | None:
        return b"k"

    def value(self) -> bytes | None:
        return f"v{self._offset}".encode()

    def headers(self) -> list[tuple[str, bytes]] | None:
        return [("h", b"1")]


def test_records_become_messages_with_seconds_and_errors_are_left_out() -> None:
    batch = to_messages([Record(7, 1_500), Record(8, -1, error="broken"), Record(9, 0)])
    assert batch == [
        Message("t", 3, 7, 1.5, b"k", b"v7", [("h", b"1")]),
        Message("t", 3, 9, None, b"k", b"v9", [("h", b"1")]),  # no timestamp: None
    ]
    assert batch[0].tp.partition == 3 and batch[0].header("h") == b"1"

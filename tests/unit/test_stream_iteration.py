"""A stream reading its inbox directly: what it skips, and that a busy one lets others run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shoal.model.events import Event, Message
from shoal.processing import streams
from shoal.processing.streams import Stream
from shoal.runtime.inbox import Inbox
from shoal.runtime.offsets import PartitionOffsets


def event(offset: int, tracker: PartitionOffsets) -> Event:
    return Event(None, offset, Message("t", 0, offset, None, None, b"x"), tracker)


def stream_of(inbox: Inbox) -> Stream[Any]:
    return Stream.from_inbox(None, inbox)  # type: ignore[arg-type]  # no runtime needed here


async def test_events_of_a_revoked_partition_are_skipped_and_acks_go_to_their_offsets() -> None:
    kept, gone = PartitionOffsets("t", 0), PartitionOffsets("t", 1)
    inbox = Inbox()
    for offset in range(3):
        kept.delivered(offset, 1)
    inbox.push_run([event(0, kept), event(1, gone), event(1, kept), event(2, kept)], 0)
    gone.revoked = True
    stream = stream_of(inbox).__aiter__()
    assert [await stream.__anext__() for _ in range(3)] == [0, 1, 2]
    assert kept.committable() == 2  # moving on acked 0 and 1; 2 is being handled
    stream._ack_previous()
    assert kept.committable() == 3


async def test_a_stream_with_events_waiting_still_gives_the_loop_turns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streams, "YIELD_EVERY", 0.0)  # every look at the clock yields
    tracker = PartitionOffsets("t", 0)
    inbox = Inbox(maxsize=10_000)
    tracker.delivered_each(range(1000))
    inbox.push_run([event(offset, tracker) for offset in range(1000)], 0)
    other_ran_after: list[int] = []
    handed_out = 0

    async def other() -> None:
        other_ran_after.append(handed_out)

    task = asyncio.get_running_loop().create_task(other())
    stream = stream_of(inbox).__aiter__()
    for _ in range(1000):
        await stream.__anext__()
        handed_out += 1
    await task
    # Never awaiting anything but the stream, the loop still ran the other task early on.
    assert other_ran_after == [0]  # before the first event was handed out

"""The inbox: lanes by partition, back-pressure when full, revoked events dropped."""

from __future__ import annotations

import asyncio

from shoal.model.events import Event, Message
from shoal.runtime.inbox import Inbox, PartitionInbox
from shoal.runtime.offsets import PartitionOffsets
from tests.helpers import wait_until


def event(partition: int, offset: int, tracker: PartitionOffsets | None = None) -> Event:
    return Event(None, offset, Message("t", partition, offset, None, None, b"x"), tracker)


async def test_each_lane_gets_the_partitions_of_its_instance_in_order() -> None:
    inbox = Inbox(lanes=2)
    for offset, partition in enumerate([0, 1, 2, 3, 0]):
        inbox.push(event(partition, offset))
    lane0 = [inbox.get_nowait(0) for _ in range(3)]
    lane1 = [inbox.get_nowait(1) for _ in range(2)]
    assert [(e.partition, e.offset) for e in lane0 if e] == [(0, 0), (2, 2), (0, 4)]
    assert [(e.partition, e.offset) for e in lane1 if e] == [(1, 1), (3, 3)]
    assert inbox.get_nowait(0) is None and inbox.size == 0


async def test_a_waiting_reader_gets_the_next_event() -> None:
    inbox = Inbox()
    reader = asyncio.ensure_future(inbox.get())
    await wait_until(lambda: any(inbox._getters), 5, "the reader to wait")
    inbox.push(event(0, 7))
    assert (await asyncio.wait_for(reader, 1)).offset == 7


async def test_a_full_inbox_holds_the_writer_until_a_reader_takes_one() -> None:
    inbox = Inbox(maxsize=2)
    inbox.push(event(0, 0))
    inbox.push(event(0, 1))
    assert inbox.full
    space = asyncio.ensure_future(inbox.wait_for_space())
    await wait_until(lambda: inbox._space is not None, 5, "the writer to wait")
    assert not space.done()
    assert inbox.get_nowait() is not None
    await asyncio.wait_for(space, 1)
    assert not inbox.full


async def test_events_of_revoked_partitions_are_dropped() -> None:
    kept, gone = PartitionOffsets("t", 0), PartitionOffsets("t", 1)
    inbox = Inbox(maxsize=2)
    inbox.push(event(0, 0, kept))
    inbox.push(event(1, 1, gone))
    space = asyncio.ensure_future(inbox.wait_for_space())
    gone.revoked = True
    assert inbox.drop_revoked() == 1
    await asyncio.wait_for(space, 1)  # dropping made room
    assert inbox.size == 1 and inbox.get_nowait() is not None


async def test_a_partition_inbox_gives_each_partition_a_lane_of_its_own() -> None:
    inbox = PartitionInbox(maxsize=100)
    for offset, partition in enumerate([9, 5, 9, 130, 5]):
        inbox.push(event(partition, offset))
    lanes = {p: inbox.lane_for(p) for p in (9, 5, 130)}
    assert len(set(lanes.values())) == 3  # however large the partition numbers
    nine = [inbox.get_nowait(lanes[9]), inbox.get_nowait(lanes[9])]
    assert [e.message.offset for e in nine if e] == [0, 2]
    assert inbox.get_nowait(lanes[9]) is None
    waiting = asyncio.ensure_future(inbox.get(inbox.lane_for(7)))  # a partition with no lane yet
    inbox.push(event(7, 10))
    assert (await asyncio.wait_for(waiting, 5)).message.partition == 7
    assert inbox.size == 3


async def test_a_run_of_events_wakes_as_many_waiting_readers() -> None:
    inbox = Inbox()
    readers = [asyncio.ensure_future(inbox.get()) for _ in range(3)]
    await wait_until(lambda: len(inbox._getters[0]) == 3, 5, "the readers to wait")
    inbox.push_run([event(0, 1), event(0, 2)], 0)
    await wait_until(lambda: sum(r.done() for r in readers) == 2, 5, "two readers to wake")
    assert sorted(r.result().offset for r in readers if r.done()) == [1, 2]
    assert inbox.size == 0
    for reader in readers:
        reader.cancel()

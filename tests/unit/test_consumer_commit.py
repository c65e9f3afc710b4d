"""The consumer thread: commits that race revocations, callbacks that fail, calls that race
the thread's end. A FakeKafka stands in for the client; the thread's own code runs."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka import TopicPartition

from shoal.exceptions import BrokerError
from shoal.kafka.member import GroupMember
from shoal.types import TP
from tests.helpers import wait_until


class FakeKafka:
    """Answers commits at once, through the consumer's ``on_commit`` (librdkafka serves it
    from a later poll)."""

    def __init__(self, on_commit: Any = None) -> None:
        self.on_commit = on_commit
        self.commits: list[dict[TP, int]] = []
        self.commit_error: confluent_kafka.KafkaError | None = None
        self.poll_error: BaseException | None = None
        self.closing = threading.Event()
        self.may_close = threading.Event()
        self.may_close.set()

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        if self.commit_error is not None:
            if asynchronous:
                self.on_commit(self.commit_error, offsets)
                return
            raise confluent_kafka.KafkaException(self.commit_error)
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})
        if asynchronous:
            self.on_commit(None, offsets)

    def poll(self, timeout: float) -> Any:
        if self.poll_error is not None:
            raise self.poll_error
        return None

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        pass

    def close(self) -> None:
        self.closing.set()
        self.may_close.wait(10)


def make_thread(
    revoke: Any = None, lost: Any = None, on_error: Any = None
) -> tuple[GroupMember, FakeKafka]:
    async def no_offsets(tps: list[TP]) -> dict[TP, int]:
        return {}

    async def nothing(_: Any) -> None:
        return None

    thread = GroupMember(
        {},
        [],
        on_batch=nothing,
        on_assign=nothing,
        on_revoke=revoke or no_offsets,
        on_lost=lost or nothing,
        on_error=on_error or (lambda _: None),
    )
    kafka = thread._kafka = FakeKafka(thread._config["on_commit"])
    thread._loop = asyncio.get_running_loop()
    return thread, kafka


async def test_a_commit_asked_for_before_a_revocation_leaves_the_revoked_partitions_out() -> None:
    thread, kafka = make_thread()

    # Asked for while the thread is busy (in a fetch, or in a group callback)...
    pending = asyncio.ensure_future(thread.commit({("t", 0): 5, ("t", 1): 7}))
    await wait_until(lambda: not thread._calls.empty(), 5, "the commit to be queued")
    # ...which revokes t[0] and commits its final offset itself; then the thread gets to it.
    await thread._revoking([("t", 0)])
    thread._serve_calls()
    await pending
    assert kafka.commits == [{("t", 1): 7}]  # t[0] is not moved back to what it was

    # Asked for after the revocation: nothing left out.
    pending = asyncio.ensure_future(thread.commit({("t", 0): 9}))
    await wait_until(lambda: not thread._calls.empty(), 5, "the commit to be queued")
    thread._serve_calls()
    await pending
    assert kafka.commits[-1] == {("t", 0): 9}


async def test_a_commit_asked_for_before_the_partitions_were_lost_is_not_made() -> None:
    lost: list[list[TP]] = []

    async def on_lost(tps: list[TP]) -> None:
        lost.append(tps)

    thread, kafka = make_thread(lost=on_lost)
    pending = asyncio.ensure_future(thread.commit({("t", 0): 5}))
    await wait_until(lambda: not thread._calls.empty(), 5, "the commit to be queued")
    await thread._losing([("t", 0)])
    thread._serve_calls()
    await pending
    assert lost == [[("t", 0)]]
    assert kafka.commits == []


async def test_a_final_commit_that_fails_in_the_revoke_callback_does_not_escape_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A member whose session expired during a broker outage gets UNKNOWN_MEMBER_ID for its
    final commit: that used to be raised out of the callback, which ended the thread."""

    async def revoke(tps: list[TP]) -> dict[TP, int]:
        return {tp: 42 for tp in tps}

    thread, kafka = make_thread(revoke=revoke)
    kafka.commit_error = confluent_kafka.KafkaError(confluent_kafka.KafkaError.UNKNOWN_MEMBER_ID)
    caplog.set_level(logging.WARNING, "shoal.kafka.consumer")

    def callback() -> None:  # librdkafka runs it on the consumer thread, inside poll()
        thread._revoked(kafka, [TopicPartition("t", 0)])

    await asyncio.to_thread(callback)  # raised BrokerError before
    assert "commit of t[0] failed" in caplog.text
    assert "next owner processes the events after the last commit again" in caplog.text


async def test_a_lost_assignment_is_handed_to_on_lost_and_nothing_is_committed() -> None:
    lost: list[list[TP]] = []

    async def on_lost(tps: list[TP]) -> None:
        lost.append(tps)

    thread, kafka = make_thread(lost=on_lost)
    await asyncio.to_thread(thread._lost, kafka, [TopicPartition("t", 0), TopicPartition("t", 1)])
    assert lost == [[("t", 0), ("t", 1)]]
    assert kafka.commits == []
    assert thread._revocations[("t", 0)] == 1


async def test_a_call_queued_while_the_thread_ends_is_failed_not_left_hanging() -> None:
    errors: list[str] = []
    thread, kafka = make_thread(on_error=errors.append)
    kafka.poll_error = RuntimeError("librdkafka went away")
    kafka.may_close.clear()  # the thread stops inside close(), after its last serve
    thread._topics = ["t"]
    runner = threading.Thread(target=thread._run, daemon=True)
    runner.start()
    await asyncio.to_thread(kafka.closing.wait, 10)
    call = asyncio.ensure_future(thread.call(lambda k: "served"))
    await wait_until(lambda: not thread._calls.empty(), 5, "the call to be queued")
    kafka.may_close.set()
    with pytest.raises(BrokerError, match="the consumer is closed"):
        await asyncio.wait_for(call, 5)  # hung forever before
    runner.join(5)
    assert not thread.alive
    await wait_until(lambda: errors, 5, "the owner to hear of it")
    assert "librdkafka went away" in errors[0]
    with pytest.raises(BrokerError):
        await thread.call(lambda k: "too late")


async def test_a_commit_the_broker_refuses_fails_with_its_reason() -> None:
    thread, kafka = make_thread()
    kafka.commit_error = confluent_kafka.KafkaError(confluent_kafka.KafkaError.UNKNOWN_MEMBER_ID)
    pending = asyncio.ensure_future(thread.commit({("t", 0): 5}))
    await wait_until(lambda: not thread._calls.empty(), 5, "the commit to be queued")
    thread._serve_calls()
    with pytest.raises(BrokerError, match=r"commit of t\[0\] failed: .*UNKNOWN_MEMBER_ID"):
        await pending
    assert thread._commit_waiters == {}


async def test_an_unanswered_commit_does_not_hold_the_thread() -> None:
    """A commit to a broker that is away: the thread goes on serving (polls, the group's
    callbacks) while the answer is outstanding; it used to sit in a blocking commit."""
    thread, kafka = make_thread()
    kafka.on_commit = lambda err, offsets: None  # no answer yet
    pending = asyncio.ensure_future(thread.commit({("t", 0): 5}))
    await wait_until(lambda: not thread._calls.empty(), 5, "the commit to be queued")
    thread._serve_calls()  # returns at once
    served = asyncio.ensure_future(thread.call(lambda k: "served"))
    await wait_until(lambda: not thread._calls.empty(), 5, "the next call to be queued")
    thread._serve_calls()
    assert await served == "served"
    assert not pending.done()
    thread._committed(None, [TopicPartition("t", 0, 5)])  # the answer, in a later poll
    await asyncio.wait_for(pending, 5)

"""The conductor of a supervisor's worker, with no Kafka and no thread: the consumer's calls
run inline against a stand-in client, and batches arrive as its thread would hand them over.

What it must do: fetch what it is assigned from the committed offsets, and hand partitions
back cleanly (the fetched events finish, the outputs before them are acknowledged, the final
offsets are returned), or at once and with nothing to commit when the group lost them."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import confluent_kafka
import pytest

from shoal.config import load_settings
from shoal.kafka.producer import DeliveryError
from shoal.model.events import Message
from shoal.runtime.conductor import Conductor
from shoal.runtime.dispatch import DeadLetters
from shoal.runtime.subscriptions import Subscriptions
from shoal.types import TP
from tests.helpers import wait_until
from tests.unit.test_dispatch import IntTopic, RecordingProducer


class FakeKafka:
    """What the consumer thread's calls are made on: it records them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, int, int]]]] = []
        #: The group's committed offsets; a partition not here has none.
        self.committed_offsets: dict[tuple[str, int], int] = {}
        self.down = False  # the broker does not answer

    def list_topics(self, topic: str, timeout: float) -> None:
        if self.down:
            raise confluent_kafka.KafkaException(confluent_kafka.KafkaError._TIMED_OUT)

    def committed(self, parts: list[Any], timeout: float) -> list[Any]:
        return [
            confluent_kafka.TopicPartition(
                p.topic,
                p.partition,
                self.committed_offsets.get((p.topic, p.partition), confluent_kafka.OFFSET_INVALID),
            )
            for p in parts
        ]

    def incremental_assign(self, parts: list[Any]) -> None:
        self.calls.append(("assign", [(p.topic, p.partition, p.offset) for p in parts]))

    def incremental_unassign(self, parts: list[Any]) -> None:
        self.calls.append(("unassign", [(p.topic, p.partition, p.offset) for p in parts]))


class Target:
    def __init__(self) -> None:
        self.commits: list[dict[TP, int]] = []

    async def commit(self, offsets: dict[TP, int]) -> bool:
        self.commits.append(offsets)
        return True


class Harness:
    def __init__(self, state: Any = None) -> None:
        conf = load_settings({"id": "conductor-test"}, env={}, config_file=False)
        self.kafka = FakeKafka()
        self.subscriptions = Subscriptions(maxsize=100)
        self.inbox = self.subscriptions.subscribe(IntTopic("n"), owner="agent")
        self.target = Target()
        self.barriers = 0
        self.barrier_error: BaseException | None = None
        self.crashes: list[BaseException] = []
        stats: Counter[str] = Counter()
        letters = DeadLetters("dead", lambda: RecordingProducer(), stats)  # type: ignore[arg-type, return-value]
        self.conductor = Conductor(
            conf,
            "test",
            self.subscriptions,
            letters,
            self._barrier,
            self.crashes.append,
            stats,
            self.target,
            state=lambda: state,
        )
        consumer = self.conductor._consumer

        async def inline(fn: Any) -> Any:  # the consumer thread's work, done here
            return fn(self.kafka)

        consumer.call = inline  # type: ignore[method-assign]
        self.fetched = consumer._on_batch  # what the thread hands each batch to

    async def _barrier(self, timeout: float) -> None:
        self.barriers += 1
        if self.barrier_error is not None:
            raise self.barrier_error


def batch(partition: int, offsets: range) -> list[Message]:
    return [Message("n", partition, o, None, None, str(o).encode(), None) for o in offsets]


async def test_assigned_partitions_are_fetched_from_the_committed_offsets() -> None:
    h = Harness()
    h.kafka.committed_offsets[("n", 0)] = 7
    await h.conductor.assign([("n", 0), ("n", 1)])
    await h.conductor.assign([("n", 1)])  # already fetched: no second call
    # Given explicitly: partition 1, with nothing committed, starts at the beginning
    # (consumer_auto_offset_reset) now, not after librdkafka's 500 ms offset-reset timer.
    begin = confluent_kafka.OFFSET_BEGINNING
    assert h.kafka.calls == [("assign", [("n", 0, 7), ("n", 1, begin)])]


async def test_without_an_answer_librdkafka_looks_the_committed_offsets_up() -> None:
    h = Harness()
    h.kafka.down = True
    await h.conductor.assign([("n", 0)])
    assert h.kafka.calls == [("assign", [("n", 0, confluent_kafka.OFFSET_STORED)])]


async def test_a_release_lets_fetched_events_finish_and_returns_their_final_offsets() -> None:
    h = Harness()
    await h.conductor.assign([("n", 0)])
    await h.fetched(batch(0, range(10, 13)))
    first = await h.inbox.get()
    first.ack()
    release = asyncio.ensure_future(h.conductor.release([("n", 0)], timeout=30.0))
    unassigned = ("unassign", [("n", 0, confluent_kafka.OFFSET_INVALID)])
    await wait_until(lambda: unassigned in h.kafka.calls, 5.0, "the unassign")
    assert not release.done()  # it waits for the two events left
    for _ in range(2):
        (await h.inbox.get()).ack()
    assert await asyncio.wait_for(release, 5.0) == {("n", 0): 13}
    assert h.barriers == 1  # the outputs before the final offset were waited for
    assert ("n", 0) not in h.conductor.offsets


async def test_a_release_that_times_out_returns_what_is_done_so_far() -> None:
    h = Harness()
    await h.conductor.assign([("n", 0)])
    await h.fetched(batch(0, range(5)))
    (await h.inbox.get()).ack()
    assert await h.conductor.release([("n", 0)], timeout=0.05) == {("n", 0): 1}


async def test_lost_partitions_are_dropped_at_once_with_nothing_to_commit() -> None:
    h = Harness()
    await h.conductor.assign([("n", 0)])
    await h.fetched(batch(0, range(3)))
    assert await h.conductor.release([("n", 0)], timeout=30.0, commit=False) == {}
    assert h.barriers == 0
    assert h.inbox.get_nowait() is None  # the fetched events of a lost partition are dropped


async def test_outputs_the_broker_refused_crash_the_worker_and_commit_nothing() -> None:
    h = Harness()
    await h.conductor.assign([("n", 0)])
    await h.fetched(batch(0, range(2)))
    for _ in range(2):
        (await h.inbox.get()).ack()
    h.barrier_error = DeliveryError("refused")
    assert await h.conductor.release([("n", 0)], timeout=30.0) == {}
    assert [type(exc) for exc in h.crashes] == [DeliveryError]


@pytest.mark.parametrize("held", [0, 1])
async def test_a_stop_hands_every_partition_back_to_the_target(held: int) -> None:
    h = Harness()
    await h.conductor.assign([("n", 0), ("n", 1)])
    await h.fetched(batch(0, range(4)) + batch(1, range(2)))
    for _ in range(6 - held):
        (await h.inbox.get()).ack()
    await h.conductor.stop(drain_timeout=0.05)
    # The held event is the last one fetched, n[1]@1: n[1] stops before it.
    assert h.target.commits == [{("n", 0): 4, ("n", 1): 2 - held}]


class State:
    """The tables' hooks, recorded (shoal.runtime.state.PartitionState)."""

    def __init__(self, kafka: FakeKafka | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.kafka = kafka

    async def hold(self, owned: Any) -> None:
        # Nothing of the partition may be fetched before its tables are recovered.
        fetched = list(self.kafka.calls) if self.kafka is not None else []
        self.calls.append(("hold", sorted(owned), fetched))

    async def let_go(self, owned: Any, *, seal: bool = True) -> None:
        self.calls.append(("let_go", sorted(owned), seal))

    def prepare(self) -> str:
        self.calls.append(("prepare",))
        return "token"

    def flush(self, token: Any) -> None:
        self.calls.append(("flush", token))


async def test_tables_are_recovered_before_a_fetch_and_sealed_only_at_clean_handovers() -> None:
    state = State()
    h = Harness(state)
    state.kafka = h.kafka
    await h.conductor.assign([("n", 0), ("n", 1)])
    assert state.calls[0] == ("hold", [("n", 0), ("n", 1)], [])  # before any assign call
    assert h.kafka.calls[0][0] == "assign"
    state.calls.clear()
    await h.conductor.release([("n", 0)], timeout=1.0)
    # A clean handover: the changes made durable around the barrier, then sealed.
    assert state.calls == [("prepare",), ("flush", "token"), ("let_go", [("n", 1)], True)]
    state.calls.clear()
    await h.conductor.release([("n", 1)], timeout=1.0, commit=False)
    # Lost: a new owner may write the changelog already; nothing flushed, nothing sealed.
    assert state.calls == [("let_go", [], False)]

"""Tables end to end on the real broker, in this process: word count, the changelog, local
stores across restarts, global tables, windows, and the errors that must be clear."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import shoal
from shoal.exceptions import ConfigError
from shoal.tables import TableError
from tests.helpers import changelog_values, wait_until

pytestmark = pytest.mark.kafka


def word_count(app: Any, **table_options: Any) -> tuple[Any, Any, Any]:
    words = app.topic(f"{app.id}-words", value_type=str)
    counts = app.Table("counts", default=int, **table_options)

    @app.agent(words)
    async def count(stream: Any) -> None:
        async for word in stream.group_by(lambda w: w, name="word"):
            counts[word] += 1

    return words, counts, count


async def send_words(topic: Any, n: int, distinct: int = 10) -> None:
    for i in range(n):
        await topic.send(value=f"w{i % distinct}")


async def test_word_count_lands_in_the_table_and_its_changelog(
    app_factory: Any, running: Any, kafka_bootstrap: str
) -> None:
    app = app_factory()
    words, counts, _ = word_count(app)
    await running(app)
    await wait_until(lambda: app.conductor.offsets, 60, "an assignment")
    await send_words(words, 200)
    await wait_until(lambda: sum(counts.values()) == 200, 60, "200 counted words")
    assert dict(counts.items()) == {f"w{i}": 20 for i in range(10)}
    assert counts["never-seen"] == 0  # the default; reading does not store it
    assert "never-seen" not in counts
    await app.conductor.commit()
    # Every key went to the changelog, in the partition of the (repartitioned) event.
    logged = changelog_values(kafka_bootstrap, counts.changelog_topic_name, 4)
    assert {k.decode(): int(v) for k, v in logged.items() if v} == {
        f'"w{i}"': 20 for i in range(10)
    }
    assert "w3" in counts.as_ansitable()


async def test_a_restart_reads_the_local_store_and_replays_only_the_tail(
    app_factory: Any, running: Any, tmp_path: Path
) -> None:
    first = app_factory(store="rocksdb://", datadir=str(tmp_path))
    words, counts, _ = word_count(first)
    await first.start()
    try:
        await wait_until(lambda: first.conductor.offsets, 60, "an assignment")
        await send_words(words, 100)
        await wait_until(lambda: sum(counts.values()) == 100, 60, "100 counted words")
        assert first.tables.replayed == 0
    finally:
        await first.stop()
    assert list((tmp_path / "v1" / "tables").glob("counts-*.db"))

    again = shoal.App(
        first.id,
        broker=first.conf.broker,
        topic_partitions=4,
        store="rocksdb://",
        datadir=str(tmp_path),
        broker_commit_interval=0.5,
    )
    words2, counts2, _ = word_count(again)
    await running(again)
    await wait_until(lambda: again.tables.held == {0, 1, 2, 3}, 60, "every partition held")
    # The stores were closed after their last changes were made durable: nothing to replay.
    assert again.tables.replayed == 0
    assert sum(counts2.values()) == 100
    await send_words(words2, 50)
    await wait_until(lambda: sum(counts2.values()) == 150, 60, "150 counted words")
    assert dict(counts2.items()) == {f"w{i}": 15 for i in range(10)}


async def test_a_memory_store_is_rebuilt_from_the_changelog(app_factory: Any, running: Any) -> None:
    first = app_factory()
    words, counts, _ = word_count(first)
    await first.start()
    try:
        await wait_until(lambda: first.conductor.offsets, 60, "an assignment")
        await send_words(words, 60, distinct=6)
        await wait_until(lambda: sum(counts.values()) == 60, 60, "60 counted words")
    finally:
        await first.stop()
    again = shoal.App(
        first.id, broker=first.conf.broker, topic_partitions=4, broker_commit_interval=0.5
    )
    _, counts2, _ = word_count(again)
    await running(again)
    await wait_until(lambda: again.tables.held == {0, 1, 2, 3}, 60, "every partition held")
    assert again.tables.replayed == 60  # one changelog record per increment
    assert dict(counts2.items()) == {f"w{i}": 10 for i in range(6)}


async def test_a_write_from_an_agent_with_concurrency_is_refused(
    app_factory: Any, running: Any
) -> None:
    app = app_factory()
    topic = app.topic(f"{app.id}-in", value_type=str)
    seen = app.Table("seen", default=int)

    @app.agent(topic, concurrency=2)
    async def racing(stream: Any) -> None:
        async for word in stream:
            seen[word] += 1

    await running(app)
    await wait_until(lambda: app.conductor.offsets, 60, "an assignment")
    await topic.send(value="x")
    await wait_until(lambda: app.runtime.crashed is not None, 60, "the agent to fail")
    text = str(app.runtime.crashed)
    assert "concurrency=2" in text and "seen" in text and "racing" in text


async def test_a_write_outside_an_agent_is_refused(app_factory: Any) -> None:
    app = app_factory()
    table = app.Table("t", default=int)
    with pytest.raises(TableError, match="outside an agent"):
        table["k"] = 1


async def test_bad_tables_fail_at_start_naming_what_to_do(
    app_factory: Any, kafka_bootstrap: str
) -> None:
    app = app_factory(store="redis://localhost")
    app.Table("counts")
    with pytest.raises(ConfigError, match=r"redis://localhost.*rocksdb://"):
        await app.start()
    await app.stop()

    app = app_factory()
    table = app.Table("counts", partitions=4)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(table.changelog_topic_name, num_partitions=2)])[
        table.changelog_topic_name
    ].result(30)
    with pytest.raises(TableError, match="has 2 partitions, but the table has 4"):
        await app.start()
    await app.stop()

    app = app_factory()
    app.Table("early")
    await app.start()
    try:
        with pytest.raises(TableError, match="declared after the app started"):
            app.Table("late")
    finally:
        await app.stop()


async def test_a_global_table_is_held_whole_by_every_member(app_factory: Any, running: Any) -> None:
    one = app_factory()
    two = shoal.App(one.id, broker=one.conf.broker, topic_partitions=4, broker_commit_interval=0.5)
    tables = []
    for app in (one, two):
        topic = app.topic(f"{one.id}-settings", value_type=str)
        table = app.GlobalTable("settings")
        tables.append(table)

        @app.agent(topic)
        async def remember(stream: Any, table: Any = table) -> None:
            async for event in stream.events():
                table[event.key.decode()] = event.value

    await running(one)
    await running(two)
    await wait_until(
        lambda: one.conductor.offsets and two.conductor.offsets, 90, "both members assigned"
    )
    topic = one.topic(f"{one.id}-settings", value_type=str, key_serializer="raw")
    for i in range(20):
        await topic.send(key=f"k{i}".encode(), value=f"v{i}")
    expected = {f"k{i}": f"v{i}" for i in range(20)}
    for table in tables:
        await wait_until(lambda table=table: dict(table.items()) == expected, 60, "every key")


async def test_tumbling_and_hopping_windows_close_once_each(app_factory: Any, running: Any) -> None:
    app = app_factory(table_cleanup_interval=0.2)
    topic = app.topic(f"{app.id}-clicks", value_type=str)
    closed: list[tuple[Any, int]] = []
    tumbling = app.Table(
        "tumbling", default=int, on_window_close=lambda key, value: closed.append((key, value))
    ).tumbling(1.0, expires=0.5)
    hopping = app.Table("hopping", default=int).hopping(2.0, 1.0, expires=60)

    @app.agent(topic)
    async def clicks(stream: Any) -> None:
        async for page in stream.group_by(lambda p: p, name="page"):
            tumbling[page] += 1
            hopping[page] += 1
            assert tumbling[page].current() >= 1
            assert hopping[page].value() >= 1

    await running(app)
    await wait_until(lambda: app.conductor.offsets, 60, "an assignment")
    for i in range(30):
        await topic.send(value=f"p{i % 3}")
    await wait_until(lambda: sum(v for _, v in closed) == 30, 60, "every window to close")
    keys = [key for key, _ in closed]
    assert len(keys) == len(set(keys))  # once per window
    assert {key[0] for key in keys} == {"p0", "p1", "p2"}
    # A hopping window of size 2 and step 1 counts each event in two windows.
    hopping_total = sum(v for k, v in hopping.table.items())
    assert hopping_total == 60


async def test_a_window_closes_after_a_restart_between_its_events_and_its_close(
    app_factory: Any, running: Any, tmp_path: Path
) -> None:
    """faust-streaming #185: windows whose events came before a restart close after it,
    once each, with what was counted before the restart."""
    settings = dict(store="rocksdb://", datadir=str(tmp_path), table_cleanup_interval=0.2)
    first = app_factory(**settings)

    def declare(app: Any, closed: list[tuple[Any, int]]) -> Any:
        topic = app.topic(f"{first.id}-clicks", value_type=str)
        views = app.Table(
            "views", default=int, on_window_close=lambda k, v: closed.append((k, v))
        ).tumbling(1.0, expires=6.0)

        @app.agent(topic)
        async def count(stream: Any) -> None:
            async for page in stream.group_by(lambda p: p, name="page"):
                views[page] += 1

        return topic

    closed_before: list[tuple[Any, int]] = []
    topic = declare(first, closed_before)
    await first.start()
    try:
        await wait_until(lambda: first.tables.held == {0, 1, 2, 3}, 60, "every partition")
        for i in range(12):
            await topic.send(value=f"p{i % 3}")
        table = first.tables["views"]
        await wait_until(lambda: sum(v for _, v in table.items()) == 12, 60, "12 counted")
    finally:
        await first.stop()
    # Stopped well before the windows expire: none closed yet.
    assert closed_before == []

    closed: list[tuple[Any, int]] = []
    again = shoal.App(first.id, broker=first.conf.broker, topic_partitions=4, **settings)
    declare(again, closed)
    await running(again)
    await wait_until(lambda: sum(v for _, v in closed) == 12, 60, "the windows to close")
    keys = [key for key, _ in closed]
    assert len(keys) == len(set(keys))  # once each
    assert {key[0] for key in keys} == {"p0", "p1", "p2"}
    assert sum(again.tables["views"].values()) == 0  # closed windows are deleted


async def test_an_empty_standby_store_is_the_one_taken_when_its_partition_comes(
    app_factory: Any, tmp_path: Path
) -> None:
    # The warm store of a standby partition with nothing in it yet was taken for false: the
    # partition's store was opened a second time next to it, RocksDB's lock (held by this
    # very process) was waited for 30 s, and the worker stopped with StoreLocked.
    app = app_factory(store="rocksdb://", datadir=str(tmp_path))
    word_count(app)
    await app.runtime.declare(app.tables.specs())
    await app.tables.standby([1])
    try:
        async with asyncio.timeout(20):
            await app.tables.hold([(f"{app.id}-words", 1)])
        assert app.tables.held == {1}
        assert app.tables._standbys.partitions == set()
    finally:
        await app.tables.stop()

"""ask/join between worker processes and hosts: replies find the asking process."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from shoal.cluster.client import SyncClient
from tests.processes import Clusterctl, numbers_env

pytestmark = pytest.mark.kafka


def host_reply_messages(admin: AdminClient, bootstrap: str, app_id: str) -> dict[str, int]:
    """Messages in each host reply topic of the app (high watermark of its one partition)."""
    from confluent_kafka import Consumer

    topics = [
        t for t in admin.list_topics(timeout=10).topics if t.startswith(f"{app_id}-reply-host-")
    ]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{app_id}-probe"})
    try:
        return {
            t: consumer.get_watermark_offsets(TopicPartition(t, 0), timeout=10)[1] for t in topics
        }
    finally:
        consumer.close()


def check_fanout(answer: Any, n: int) -> set[int]:
    assert [square for square, _pid in answer["replies"]] == [i * i for i in range(n)]
    return {pid for _square, pid in answer["replies"]}


def test_replies_between_workers_of_one_host_skip_kafka(
    kafka_bootstrap: str, unique: str, admin: AdminClient
) -> None:
    env = numbers_env(kafka_bootstrap, unique)
    supervisor = Clusterctl("tests.apps.rpc_app", "up", "--workers", "2", env=env)
    try:
        supervisor.wait_for("this host owns 8 partitions over 2 workers")
        with SyncClient(unique, broker=kafka_bootstrap) as client:
            answer = client.ask("fanout", 16, timeout=60)
        squarers = check_fanout(answer, 16)
        assert len(squarers) == 2 and answer["asker"] in squarers  # both workers answered
        # Every reply to the asking worker came over the channel: the host topic is empty.
        assert list(host_reply_messages(admin, kafka_bootstrap, unique).values()) == [0]
    finally:
        code = supervisor.stop()
    assert code == 0, supervisor.log()


def test_replies_cross_hosts_through_the_askers_host_topic(
    kafka_bootstrap: str, unique: str, admin: AdminClient
) -> None:
    env = numbers_env(kafka_bootstrap, unique)
    first = Clusterctl("tests.apps.rpc_app", "up", "--workers", "1", env=env)
    second = Clusterctl("tests.apps.rpc_app", "up", "--workers", "1", env=env)
    try:
        first.wait_for("this host owns")
        second.wait_for("this host owns")
        # Both supervisors own some partitions once the group settled.
        first.wait_for("over 1 workers", count=1)
        with SyncClient(unique, broker=kafka_bootstrap) as client:
            answers = [client.ask("fanout", 16, timeout=60) for _ in range(4)]
        squarers = set().union(*(check_fanout(a, 16) for a in answers))
        askers = {a["asker"] for a in answers}
        assert len(squarers) == 2  # both hosts computed squares
        assert squarers - askers or len(askers) == 2  # some replies crossed hosts
        counts = host_reply_messages(admin, kafka_bootstrap, unique)
        assert len(counts) == 2 and sum(counts.values()) > 0
    finally:
        codes = (first.stop(), second.stop())
    assert codes == (0, 0), first.log() + second.log()


def test_an_ask_survives_the_death_of_the_worker_handling_it(
    kafka_bootstrap: str, unique: str, tmp_path: Any
) -> None:
    env = numbers_env(kafka_bootstrap, unique)
    env.update(
        NUMBERS_STALL_ON="4242",
        NUMBERS_STALL_MARKER=str(tmp_path / "stalled"),
        SHOAL_WORKER_STALL_TIMEOUT="3",
    )
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "1", env=env)
    try:
        supervisor.wait_for("this host owns 4 partitions over 1 workers")
        with SyncClient(unique, broker=kafka_bootstrap) as client:
            # The worker blocks on 4242 for good; the supervisor kills it, its replacement
            # processes the request again from the committed offset and answers.
            answer = client.ask("numbers", 4242, timeout=60)
        assert answer.split()[0] == "4242"
        assert "sent no heartbeat" in supervisor.log(200)
        assert int(answer.split()[2]) != int((tmp_path / "stalled").read_text())
    finally:
        code = supervisor.stop()
    assert code == 0, supervisor.log()

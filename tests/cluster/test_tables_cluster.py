"""Tables on a cluster (tests/programs/wordcount.py, a Faust word count): a worker SIGKILLed
mid-stream resumes from its local store and replays only the changelog tail, and a second
supervisor joining takes partitions with their state, and a dead host's partitions move to a
standby. Counts never fall short of the events produced; they exceed them only by events
processed twice (at-least-once): see check_counts."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.cluster.test_faust_programs import program_env
from tests.helpers import changelog_values, wait_until_sync
from tests.processes import Clusterctl

pytestmark = pytest.mark.kafka

RECOVERED = re.compile(r"recovered partitions ([\d, ]+) of word_counts: (\d+) changelog records")


class Outputs:
    """Counts the ``word n`` lines of the program's output topic, per word."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.per_word: Counter[str] = Counter()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{topic}-r",
                "auto.offset.reset": "earliest",
            }
        )
        self._consumer.subscribe([topic])

    def poll(self) -> int:
        for msg in self._consumer.consume(1000, 0.2):
            if msg.error() is None:
                self.per_word[msg.value().decode().strip('"').split()[0]] += 1
        return sum(self.per_word.values())

    def close(self) -> None:
        self._consumer.close()


def produce_words(bootstrap: str, topic: str, start: int, stop: int) -> Counter[str]:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    sent: Counter[str] = Counter()
    for i in range(start, stop):
        word = f"w{i % 97}"
        producer.produce(topic, value=f'"{word}"'.encode())
        sent[word] += 1
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    return sent


def changelog_end(bootstrap: str, topic: str, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "t-ends"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1])
    finally:
        consumer.close()


def final_counts(bootstrap: str, app_id: str) -> dict[str, int]:
    logged = changelog_values(bootstrap, f"{app_id}-word_counts-changelog", 4)
    return {k.decode().strip('"'): int(v) for k, v in logged.items() if v is not None}


def check_counts(
    bootstrap: str, app_id: str, sent: Counter[str], outputs: Outputs, in_flight: int = 0
) -> dict[str, int]:
    """Wait until every produced word is counted: no count falls short of its events. A count
    exceeds them only by events processed twice: those the output topic shows twice, and at
    most ``in_flight`` more whose first output died with a killed process (the changelog
    record of their count was delivered, their output not yet)."""
    counts: dict[str, int] = {}

    def caught_up() -> bool:
        nonlocal counts
        outputs.poll()
        counts = final_counts(bootstrap, app_id)
        return all(counts.get(w, 0) >= n for w, n in sent.items())

    wait_until_sync(caught_up, 120, "every word counted")
    total = sum(counts.values())
    wait_until_sync(lambda: outputs.poll() + in_flight >= total, 60, "every output")
    for word, n in sent.items():
        assert n <= counts[word], (word, n, counts[word])
    assert total <= sum(outputs.per_word.values()) + in_flight
    return counts


def committed(bootstrap: str, group: str, topics: list[str]) -> int:
    """The group's committed offsets over the topics' 4 partitions, summed."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = [TopicPartition(t, p) for t in topics for p in range(4)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


def test_a_killed_worker_resumes_from_its_local_store(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    env = program_env(kafka_bootstrap, WORDCOUNT_APP_ID=unique, APP_DATADIR=str(tmp_path))
    cluster = Clusterctl("tests.programs.wordcount", "up", "--workers", "2", env=env)
    outputs = Outputs(kafka_bootstrap, f"{unique}-counted")
    try:
        cluster.wait_for("this host owns 8 partitions over 2 workers", 90)  # words, repartition
        sent = produce_words(kafka_bootstrap, f"{unique}-words", 0, 8000)
        wait_until_sync(lambda: outputs.poll() >= 8000, 60, "the first 8000 words")
        # Committed (so their table changes are on disk): each word went through the words
        # topic and the repartition topic.
        sources = [
            f"{unique}-words",
            f"{unique}-tests.programs.wordcount.count_words-word-repartition",
        ]
        wait_until_sync(
            lambda: committed(kafka_bootstrap, unique, sources) >= 16000, 60, "the commit"
        )
        sent.update(produce_words(kafka_bootstrap, f"{unique}-words", 8000, 10000))
        wait_until_sync(lambda: outputs.poll() >= 8200, 60, "words after the first 8000")
        victim = cluster.worker_pids()[0]
        killed_at = time.time()
        os.kill(victim, signal.SIGKILL)
        # What a full replay of its partitions (0 and 2: worker 0's) would read.
        whole = sum(
            changelog_end(kafka_bootstrap, f"{unique}-word_counts-changelog", p) for p in (0, 2)
        )
        counts = check_counts(kafka_bootstrap, unique, sent, outputs, in_flight=1000)
        assert sum(counts.values()) >= 10000
        # The replacement read its store from disk and replayed only the changelog tail.
        recovered = [m for line in cluster.lines if (m := RECOVERED.search(line))]
        assert recovered, cluster.log(80)
        tail = sum(int(m[2]) for m in recovered)
        assert tail < whole / 2, (tail, whole, cluster.log(80))  # about 2000 of 5000
        assert time.time() - killed_at < 120
    finally:
        outputs.close()
        assert cluster.stop() == 0, cluster.log(80)


def test_a_second_supervisor_takes_partitions_with_their_state(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    first_env = program_env(
        kafka_bootstrap, WORDCOUNT_APP_ID=unique, APP_DATADIR=str(tmp_path / "one")
    )
    second_env = program_env(
        kafka_bootstrap, WORDCOUNT_APP_ID=unique, APP_DATADIR=str(tmp_path / "two")
    )
    first = Clusterctl("tests.programs.wordcount", "up", "--workers", "2", env=first_env)
    second: Clusterctl | None = None
    outputs = Outputs(kafka_bootstrap, f"{unique}-counted")
    try:
        first.wait_for("this host owns 8 partitions over 2 workers", 90)  # words, repartition
        sent = produce_words(kafka_bootstrap, f"{unique}-words", 0, 3000)
        wait_until_sync(lambda: outputs.poll() >= 3000, 60, "the first 3000 words")
        second = Clusterctl("tests.programs.wordcount", "up", "--workers", "2", env=second_env)
        second.wait_for("this host owns 4 partitions over 2 workers", 90)
        # Partitions new to the second host: their whole changelog partitions replayed.
        second.wait_for("recovered partitions", 60)
        replayed = sum(int(m[2]) for line in second.lines if (m := RECOVERED.search(line)))
        assert replayed > 0
        sent.update(produce_words(kafka_bootstrap, f"{unique}-words", 3000, 6000))
        counts = check_counts(kafka_bootstrap, unique, sent, outputs)
        # A clean handover repeats nothing: the counts are exact.
        assert counts == dict(sent)
    finally:
        outputs.close()
        if second is not None:
            assert second.stop() == 0, second.log(80)
        assert first.stop() == 0, first.log(80)


@pytest.mark.parametrize("replicas", [1, 0])
def test_a_dead_host_hands_its_partitions_over_warm_with_standbys(
    kafka_bootstrap: str, unique: str, tmp_path: Path, replicas: int
) -> None:
    """With a standby replica the surviving host follows the other's changelogs, and takes
    its partitions over replaying only what it had not followed yet; without one it replays
    those changelog partitions whole."""
    env = program_env(
        kafka_bootstrap,
        WORDCOUNT_APP_ID=unique,
        TABLE_STANDBY_REPLICAS=str(replicas),
        SHOAL_BROKER_SESSION_TIMEOUT="6",  # how long the group waits for a dead host
    )
    first = Clusterctl(
        "tests.programs.wordcount",
        "up",
        "--workers",
        "2",
        env={**env, "APP_DATADIR": str(tmp_path / "one")},
    )
    second: Clusterctl | None = None
    outputs = Outputs(kafka_bootstrap, f"{unique}-counted")
    try:
        first.wait_for("this host owns 8 partitions over 2 workers", 90)
        second = Clusterctl(
            "tests.programs.wordcount",
            "up",
            "--workers",
            "2",
            env={**env, "APP_DATADIR": str(tmp_path / "two")},
        )
        second.wait_for("this host owns 4 partitions over 2 workers", 90)
        first.wait_for("this host owns 4 partitions over 2 workers", 90)
        if replicas:
            second.wait_for("keeping the tables of partitions", 30)
        sent = produce_words(kafka_bootstrap, f"{unique}-words", 0, 4000)
        wait_until_sync(lambda: outputs.poll() >= 4000, 60, "the first 4000 words")
        logged = changelog_values(kafka_bootstrap, f"{unique}-word_counts-changelog", 4)
        assert logged
        seen_before = len(second.lines)
        first.kill()  # the whole host: its workers stop without their supervisor
        second.wait_for("this host owns 8 partitions over 2 workers", 60)
        wait_until_sync(
            lambda: sum(bool(RECOVERED.search(x)) for x in second.lines[seen_before:]) >= 2,
            60,
            "both workers to recover the partitions that moved",
        )
        after = second.lines[seen_before:]
        replayed = sum(int(m[2]) for line in after if (m := RECOVERED.search(line)))
        if replicas:
            assert any("were standbys here" in line for line in after), "".join(after)
            assert replayed < 500, "".join(after)
        else:
            assert replayed >= 1000, "".join(after)  # about half of the 4000 records
        sent.update(produce_words(kafka_bootstrap, f"{unique}-words", 4000, 5000))
        check_counts(kafka_bootstrap, unique, sent, outputs, in_flight=1000)
    finally:
        outputs.close()
        first.kill()
        if second is not None:
            assert second.stop() == 0, second.log(80)

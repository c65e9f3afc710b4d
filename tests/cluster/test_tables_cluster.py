"""Tables on a cluster (tests/programs/wordcount.py, a Faust word count): a worker SIGKILLed
mid-stream resumes from its local store and replays only the changelog tail, and a second
supervisor joining takes partitions with their state. Counts never fall short of the events
produced; they exceed them only by events processed twice (at-least-once), which the output
topic shows as repeats."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

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


def produce_words(
    bootstrap: str, topic: str, start: int, stop: int, per_second: int = 0
) -> Counter[str]:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    sent: Counter[str] = Counter()
    began = time.monotonic()
    for i in range(start, stop):
        word = f"w{i % 97}"
        producer.produce(topic, value=f'"{word}"'.encode())
        sent[word] += 1
        if per_second and i % 100 == 0:
            producer.poll(0)
            ahead = (i - start) / per_second - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)  # the producer's pace, not a wait for a condition
    assert producer.flush(30) == 0
    return sent


def final_counts(bootstrap: str, app_id: str) -> dict[str, int]:
    logged = changelog_values(bootstrap, f"{app_id}-word_counts-changelog", 4)
    return {k.decode().strip('"'): int(v) for k, v in logged.items() if v is not None}


def check_counts(
    bootstrap: str, app_id: str, sent: Counter[str], outputs: Outputs
) -> dict[str, int]:
    """Wait until every produced word is counted; then counts lie between the events produced
    and the events processed (repeats included)."""
    counts: dict[str, int] = {}

    def caught_up() -> bool:
        nonlocal counts
        outputs.poll()
        counts = final_counts(bootstrap, app_id)
        return all(counts.get(w, 0) >= n for w, n in sent.items())

    wait_until_sync(caught_up, 120, "every word counted")
    wait_until_sync(lambda: outputs.poll() >= sum(counts.values()), 60, "every output")
    for word, n in sent.items():
        assert n <= counts[word] <= outputs.per_word[word], (word, n, counts[word])
    return counts


def test_a_killed_worker_resumes_from_its_local_store(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    env = program_env(kafka_bootstrap, WORDCOUNT_APP_ID=unique, APP_DATADIR=str(tmp_path))
    cluster = Clusterctl("tests.programs.wordcount", "up", "--workers", "2", env=env)
    outputs = Outputs(kafka_bootstrap, f"{unique}-counted")
    try:
        cluster.wait_for("this host owns 8 partitions over 2 workers", 90)  # words, repartition
        sent = produce_words(kafka_bootstrap, f"{unique}-words", 0, 4000)
        wait_until_sync(lambda: outputs.poll() >= 4000, 60, "the first 4000 words")
        later: Counter[str] = Counter()
        producing = threading.Thread(
            target=lambda: later.update(
                produce_words(kafka_bootstrap, f"{unique}-words", 4000, 10000, per_second=2000)
            )
        )
        producing.start()
        wait_until_sync(lambda: outputs.poll() >= 5000, 60, "words after the first 4000")
        victim = cluster.worker_pids()[0]
        killed_at = time.time()
        os.kill(victim, signal.SIGKILL)
        producing.join(60)
        sent.update(later)
        counts = check_counts(kafka_bootstrap, unique, sent, outputs)
        assert sum(counts.values()) >= 10000
        # The replacement read its store from disk and replayed only the changelog tail.
        recovered = [m for line in cluster.lines if (m := RECOVERED.search(line))]
        assert recovered, cluster.log(80)
        tail = sum(int(m[2]) for m in recovered)
        assert tail < 2000, (tail, cluster.log(80))
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
        check_counts(kafka_bootstrap, unique, sent, outputs)
    finally:
        outputs.close()
        first.kill()
        if second is not None:
            assert second.stop() == 0, second.log(80)

"""The examples of the agents guide (examples/), run against the real broker.

Workers and scripts run as the guide runs them: ``clusterctl -A examples.agent worker``,
``python -m examples.send_to_agent``, ... in subprocesses from the repository root, with the
broker in ``SHOAL_BROKER``. The other examples' agent functions are registered on fresh apps
with unique topics, in this process. The examples hard-code their app ids and topic names
(the guide's), and topics outlive a run: each example is used by one test only, and the
tests look for values made up for this run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

import examples.cast_ask_send
import examples.concurrency
import examples.groupby
import examples.map_join
import shoal
from examples.groupby import BankTransfer
from tests.helpers import wait_until, wait_until_sync

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLUSTERCTL = str(BIN / "clusterctl")


# -- subprocesses ----------------------------------------------------------------------------


class Proc:
    """A subprocess whose stdout and stderr lines are collected by threads as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe: Any, lines: list[str]) -> None:
        for line in pipe:
            lines.append(line.rstrip("\n"))

    @property
    def stdout(self) -> str:
        return "\n".join(self.out)

    @property
    def stderr(self) -> str:
        return "\n".join(self.err)

    def wait_for_stderr(self, pattern: str, timeout: float = 30.0) -> str:
        """Wait for a stderr line matching ``pattern``; fail at once if the process exits."""

        def found() -> str | bool:
            for line in list(self.err):
                if re.search(pattern, line):
                    return line
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"{self.args} exited with {self.popen.returncode} before logging "
                    f"{pattern!r}:\n{self.stderr}"
                )
            return False

        return str(wait_until_sync(found, timeout, f"{pattern!r} on the stderr of {self.args}"))

    def wait_for_stdout(
        self, lines: set[str], timeout: float = 30.0, fail_on: str | None = None
    ) -> None:
        """Wait until every line of ``lines`` was printed; stop early if the process exits
        or logs something matching ``fail_on``."""

        def done() -> bool:
            failed = fail_on is not None and re.search(fail_on, self.stderr)
            return lines <= set(self.out) or self.popen.poll() is not None or bool(failed)

        wait_until_sync(done, timeout, f"{sorted(lines)} on the stdout of {self.args}")
        missing = lines - set(self.out)
        assert not missing, f"not printed: {sorted(missing)}\nstdout:\n{self.stdout}\n{self.stderr}"

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (a process still running after ``timeout`` is killed)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
            raise AssertionError(f"{self.args} did not stop within {timeout:g} s") from None
        for reader in self._readers:
            reader.join(10)
        return code


@pytest.fixture
def example_env(kafka_bootstrap: str) -> dict[str, str]:
    """The environment of an example's process: the test broker, unbuffered prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env["SHOAL_BROKER"] = f"kafka://{kafka_bootstrap}"
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes to kill at the end of the test, whatever happened."""
    started: list[Proc] = []
    yield started
    for proc in started:
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait(10)


def run(
    args: list[str], env: dict[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


# -- kafka -----------------------------------------------------------------------------------


def produce_json(bootstrap: str, topic: str, values: list[Any]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, json.dumps(value).encode())
    assert producer.flush(30) == 0, f"undelivered messages to {topic}"


def read_topic(bootstrap: str, topic: str, until: Any, timeout: float = 30.0) -> list[Any]:
    """Messages of ``topic`` from its beginning, until ``until(messages)`` is true."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-examples-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        assert meta.error is None, f"topic {topic}: {meta.error}"
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
        )
        messages: list[Any] = []

        def read() -> bool:
            for msg in consumer.consume(500, 0.1):
                if msg.error() is None:
                    messages.append(msg)
            return bool(until(messages))

        wait_until_sync(read, timeout, f"the messages looked for in {topic}")
        return messages
    finally:
        consumer.close()


def partition_count(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-examples-meta"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        assert meta.error is None, f"topic {topic}: {meta.error}"
        return len(meta.partitions)
    finally:
        consumer.close()


async def assigned(app: shoal.App) -> None:
    await wait_until(lambda: app.conductor is not None and app.conductor.offsets, 30, "assignment")


# -- examples/agent.py and examples/send_to_agent.py -----------------------------------------


def test_agent_worker_answers_send_to_agent_and_clusterctl_send(
    example_env: dict[str, str], procs: list[Proc], kafka_bootstrap: str
) -> None:
    worker = Proc([CLUSTERCTL, "-A", "examples.agent", "worker", "-l", "info"], example_env)
    procs.append(worker)
    worker.wait_for_stderr(r"worker for app agent-example started")
    worker.wait_for_stderr(r"assigned .*adding\[")

    # The guide's client: asks the worker's agent, prints its reply.
    asked = run([sys.executable, "-m", "examples.send_to_agent"], example_env)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip() == "8"

    # clusterctl send: validates against Add, produces, says where the value went.
    a, b = random.randrange(10**9), random.randrange(10**9)
    sent = run(
        [CLUSTERCTL, "-A", "examples.agent", "send", "adding", json.dumps({"a": a, "b": b})],
        example_env,
    )
    assert sent.returncode == 0, sent.stderr
    where = re.fullmatch(r"sent to adding\[(\d+)\]@(\d+)", sent.stdout.strip())
    assert where, sent.stdout
    partition, offset = int(where[1]), int(where[2])
    stored = read_topic(
        kafka_bootstrap,
        "adding",
        lambda msgs: any(m.partition() == partition and m.offset() == offset for m in msgs),
    )
    message = next(m for m in stored if m.partition() == partition and m.offset() == offset)
    assert json.loads(message.value()) == {"a": a, "b": b}

    assert worker.stop() == 0, worker.stderr
    assert "worker stopped" in worker.stderr


# -- examples/noagents.py --------------------------------------------------------------------


def test_noagents_prints_what_the_topic_receives(
    example_env: dict[str, str], procs: list[Proc], kafka_bootstrap: str
) -> None:
    script = Proc([sys.executable, "-m", "examples.noagents"], example_env)
    procs.append(script)
    # The script configures no logging, so it says nothing when it is ready; no need to
    # know: what is sent before it joins its group is read from the group's last commit.
    run_id = uuid.uuid4().hex
    values = [{"run": run_id, "n": n} for n in range(3)]
    produce_json(kafka_bootstrap, "noagents", values)
    script.wait_for_stdout(
        {f"Received: {value!r}" for value in values}, fail_on=r"consumer thread failed"
    )


# -- examples/sinks.py -----------------------------------------------------------------------


def test_every_sink_kind_gets_what_the_agents_yield(
    example_env: dict[str, str], procs: list[Proc], kafka_bootstrap: str
) -> None:
    worker = Proc([CLUSTERCTL, "-A", "examples.sinks", "worker", "-l", "info"], example_env)
    procs.append(worker)
    worker.wait_for_stderr(r"assigned .*examples\.sinks\.agent_a\[")
    run_id = uuid.uuid4().hex
    to_function, to_async, to_topic, to_agent = (f"{run_id}-{kind}" for kind in "FATG")
    # Agents without a topic read "{app id}-{module}.{function}", as in Faust.
    prefix = "sinks-example-examples.sinks"
    produce_json(kafka_bootstrap, f"{prefix}.myagent", [to_function])
    produce_json(kafka_bootstrap, f"{prefix}.my_async_agent", [to_async])
    produce_json(kafka_bootstrap, f"{prefix}.my_logged_agent", [to_topic])
    produce_json(kafka_bootstrap, f"{prefix}.agent_a", [to_agent])

    worker.wait_for_stdout(
        {
            f"AGENT YIELD: {to_function!r}",  # function sink
            f"AGENT YIELD: {to_async!r}",  # async function sink
            f"AGENT A RECEIVED: {to_agent!r}",
            f"AGENT B RECEIVED: {to_agent!r}",  # agent sink
        }
    )
    logged = read_topic(  # topic sink
        kafka_bootstrap,
        "agent_log",
        lambda msgs: any(m.value() == json.dumps(to_topic).encode() for m in msgs),
    )
    assert any(json.loads(m.value()) == to_topic for m in logged)
    assert worker.stop() == 0, worker.stderr


# -- examples/groupby.py ---------------------------------------------------------------------


async def test_groupby_example_rekeys_transfers_by_account(
    app_factory: Any, running: Any, kafka_bootstrap: str
) -> None:
    app = app_factory()
    source = app.topic(f"{app.id}-transfers", value_type=BankTransfer)
    app.agent(source)(examples.groupby.stream.fun)
    await running(app)
    await assigned(app)

    accounts = [f"account-{uuid.uuid4().hex[:8]}" for _ in range(6)]
    transfers = [
        BankTransfer(account_id=random.choice(accounts), amount=float(i)) for i in range(30)
    ]
    for transfer in transfers:
        await source.send(value=transfer)

    [repartition] = [t for t in app.topics if t.internal]
    name = repartition.get_topic_name()
    assert name.endswith("-account_id-repartition")
    messages = await asyncio.to_thread(  # in a thread: the app runs on this loop
        read_topic, kafka_bootstrap, name, lambda msgs: len(msgs) >= len(transfers)
    )
    assert sorted(m.value() for m in messages) == sorted(t.dumps() for t in transfers)
    partitions: dict[str, set[int]] = {}
    for message in messages:
        transfer = BankTransfer.loads(message.value())
        assert message.key() == transfer.account_id.encode()
        partitions.setdefault(transfer.account_id, set()).add(message.partition())
    assert all(len(p) == 1 for p in partitions.values()), partitions
    # Declared like the app's topics, not auto-created by the broker with one partition.
    assert await asyncio.to_thread(partition_count, kafka_bootstrap, name) == (
        app.conf.topic_partitions
    )
    # The agent consumed them all, so their offsets are committed.
    await wait_until(
        lambda: (
            sum(
                t.committed or 0 for (topic, _), t in app.conductor.offsets.items() if topic == name
            )
            == len(transfers)
        ),
        30,
        "the commit of the repartitioned transfers",
    )


async def test_group_by_sends_each_account_to_one_agent_instance(
    app_factory: Any, running: Any
) -> None:
    """An app like examples/groupby.py with concurrency > 1, recording who saw what."""
    app = app_factory(topic_partitions=4)
    topic = app.topic(f"{app.id}-groupby", value_type=BankTransfer)
    instances = iter(range(100))
    seen: list[tuple[str, int, int]] = []  # (account, instance, partition)

    @app.agent(topic, concurrency=3)
    async def stream(s: Any) -> Any:
        instance = next(instances)
        async for transfer in s.group_by(BankTransfer.account_id):
            seen.append((transfer.account_id, instance, s.current_event.partition))

    await running(app)
    await assigned(app)
    accounts = [f"account-{uuid.uuid4().hex[:8]}" for _ in range(20)]
    transfers = [BankTransfer(account_id=accounts[i % 20], amount=float(i)) for i in range(60)]
    for transfer in transfers:
        await topic.send(value=transfer)
    expected = Counter(t.account_id for t in transfers)
    await wait_until(
        lambda: (
            Counter(account for account, _, _ in seen) >= expected
            or app.conductor.stats["consumer_errors"]
            or app.crashed
        ),
        30,
        "every transfer in an instance",
    )
    assert not app.crashed and not app.conductor.stats["consumer_errors"]
    # At least once: a rebalance (the repartition topic showing up in the consumer's
    # metadata a moment late) may hand a transfer over twice; none may be missing.
    assert {account for account, _, _ in seen} == {t.account_id for t in transfers}
    by_account: dict[str, set[tuple[int, int]]] = {}
    for account, instance, partition in seen:
        by_account.setdefault(account, set()).add((instance, partition))
    assert all(len(where) == 1 for where in by_account.values()), by_account
    assert len({instance for _, instance, _ in seen}) > 1, "all accounts went to one instance"


# -- examples/concurrency.py -----------------------------------------------------------------


async def test_concurrency_example_runs_its_instances_at_once(
    app_factory: Any, running: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = examples.concurrency
    concurrency = example.imports_news.concurrency
    assert concurrency > 1
    app = app_factory()
    news = app.topic(f"{app.id}-news", value_type=example.Article)
    app.agent(news, concurrency=concurrency)(example.imports_news.fun)

    # Every fetch waits until `concurrency` fetches are in flight: this only gets through
    # if that many instances are inside the agent at once.
    barrier = asyncio.Barrier(concurrency)
    fetch = example.fetch_article

    async def fetch_together(url: str) -> str:
        await barrier.wait()
        return await fetch(url)

    monkeypatch.setattr(example, "fetch_article", fetch_together)
    await running(app)
    await assigned(app)
    urls = [f"https://example.com/{uuid.uuid4().hex}" for _ in range(2 * concurrency)]
    for url in urls:
        await news.send(value=example.Article(url=url))
    await wait_until(lambda: set(urls) <= set(example.ARTICLES_DB), 30, "the stored articles")
    assert all(example.ARTICLES_DB[url] == f"<html>article at {url}</html>" for url in urls)


# -- examples/cast_ask_send.py ---------------------------------------------------------------


async def test_cast_ask_and_send_to_another_agent(
    app_factory: Any, running: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    example = examples.cast_ask_send
    Add = example.Add
    app = app_factory()
    added: list[int] = []
    adder = app.agent(app.topic(f"{app.id}-adder", value_type=Add), sink=[added.append])(
        example.adder.fun
    )
    another_agent = app.agent(app.topic(f"{app.id}-another", value_type=int))(
        example.another_agent.fun
    )
    await running(app)
    await assigned(app)
    printed: list[str] = []

    def printed_lines() -> list[str]:
        printed.extend(capsys.readouterr().out.splitlines())
        return printed

    a, b = random.randrange(10**6), random.randrange(10**6)
    # cast: the agent gets the value, nobody waits for a reply.
    await adder.cast(Add(a=a, b=b))
    await wait_until(lambda: a + b in added, 30, "the cast value in the agent")

    # ask: the reply comes back here.
    c, d = random.randrange(10**6), random.randrange(10**6)
    assert await adder.ask(Add(a=c, b=d), timeout=30) == c + d

    # send(reply_to=another_agent): the reply goes to the other agent.
    e, f = random.randrange(10**6), random.randrange(10**6)
    await adder.send(value=Add(a=e, b=f), reply_to=another_agent)
    line = f"ANOTHER AGENT RECEIVED: {e + f!r}"
    await wait_until(lambda: line in printed_lines(), 30, "the reply in another_agent")

    # The example's own client code, talking to these agents.
    monkeypatch.setattr(example, "adder", adder)
    monkeypatch.setattr(example, "another_agent", another_agent)
    await example.main()
    await wait_until(lambda: "ANOTHER AGENT RECEIVED: 4" in printed_lines(), 30, "main()'s reply")
    assert "ASKED: 4" in printed
    # cast, ask and send each reached the agent once
    await wait_until(lambda: added.count(4) == 3, 30, "main()'s cast")
    assert sorted(added) == sorted([a + b, c + d, e + f, 4, 4, 4])


# -- examples/map_join.py --------------------------------------------------------------------


async def test_map_kvmap_join_kvjoin(
    app_factory: Any, running: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    example = examples.map_join
    app = app_factory()
    topic = app.topic(f"{app.id}-pow2", value_type=int)
    pow2 = app.agent(topic)(example.pow2.fun)
    keys_seen: list[bytes | None] = []

    @app.agent(topic, name="key-spy")  # a second subscriber of the same topic
    async def spy(stream: Any) -> None:
        async for event in stream.events():
            keys_seen.append(event.key)

    await running(app)
    await assigned(app)

    squares = [1, 4, 9, 16, 25, 36, 49, 64]
    assert await pow2.join([1, 2, 3, 4, 5, 6, 7, 8], timeout=30) == squares
    values = random.sample(range(10**6), 20)
    assert await pow2.join(values, timeout=30) == [v * v for v in values]

    mapped = [reply async for reply in pow2.map(values, timeout=30)]
    assert sorted(mapped) == sorted(v * v for v in values)

    keys = [f"key-{uuid.uuid4().hex}" for _ in values]
    kvmapped = [reply async for reply in pow2.kvmap(zip(keys, values, strict=True), timeout=30)]
    assert sorted(kvmapped) == sorted(v * v for v in values)
    assert await pow2.kvjoin(zip(keys, values, strict=True), timeout=30) == [v * v for v in values]
    encoded = {key.encode() for key in keys}
    await wait_until(
        lambda: sum(key in encoded for key in keys_seen) == 2 * len(keys),
        30,
        "the keys of kvmap and kvjoin as message keys",
    )

    # The example's own client code, talking to this agent.
    monkeypatch.setattr(example, "pow2", pow2)
    await example.main()
    out = capsys.readouterr().out.splitlines()
    assert sorted(line for line in out if line.startswith("RECEIVED REPLY: ")) == sorted(
        f"RECEIVED REPLY: {n * n}" for n in range(1, 9)
    )
    assert sorted(line for line in out if line.startswith("RECEIVED KV REPLY: ")) == [
        "RECEIVED KV REPLY: 1",
        "RECEIVED KV REPLY: 4",
        "RECEIVED KV REPLY: 9",
    ]
    assert "JOINED: [1, 4, 9, 16, 25, 36, 49, 64]" in out
    assert "KV JOINED: [1, 4, 9]" in out

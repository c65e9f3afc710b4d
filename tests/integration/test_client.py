"""The bundled client library against agents running in a worker."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

import shoal
from shoal.cluster.client import Client, SyncClient
from shoal.exceptions import AgentError, AskTimeoutError, RemoteAgentError
from tests.helpers import wait_until

pytestmark = pytest.mark.kafka


class Add(shoal.Record):
    a: int
    b: int


@pytest.fixture
async def adding_app(app_factory: Any, running: Any) -> Any:
    app = app_factory()

    @app.agent(app.topic(f"{app.id}-adding", value_type=Add), name="calc.adding")
    async def adding(stream: Any) -> Any:
        async for value in stream:
            if value.a < 0:
                raise ValueError("a must not be negative")
            yield value.a + value.b

    await running(app)
    await wait_until(lambda: app.conductor.offsets, 60, "assignment")
    return app


async def test_client_asks_by_name_with_only_app_id_and_broker(
    adding_app: Any, kafka_bootstrap: str, admin: AdminClient
) -> None:
    async with Client(adding_app.id, broker=kafka_bootstrap) as client:
        agents = await client.agents()
        assert agents["calc.adding"].topic == f"{adding_app.id}-adding"
        assert agents["calc.adding"].value_schema is not None
        assert await client.ask("adding", {"a": 4, "b": 4}, timeout=30) == 8
        assert await client.ask("calc.adding", Add(a=1, b=2), timeout=30) == 3
        assert await client.join("adding", [{"a": i, "b": 1} for i in range(5)]) == [
            1,
            2,
            3,
            4,
            5,
        ]
        assert sorted([r async for r in client.map("adding", [{"a": 2, "b": 2}] * 3)]) == [4] * 3
        with pytest.raises(RemoteAgentError, match="a must not be negative"):
            await client.ask("adding", {"a": -1, "b": 0}, timeout=30)
        with pytest.raises(AgentError, match="has no agent 'nope'"):
            await client.ask("nope", 1, timeout=1)
        reply_topic = (await client._asker.replies()).topic
        assert reply_topic in admin.list_topics(timeout=10).topics
    await wait_until(
        lambda: reply_topic not in admin.list_topics(timeout=10).topics, 30, "the topic removal"
    )


async def test_sync_client_blocks_until_the_reply(adding_app: Any, kafka_bootstrap: str) -> None:
    def use_sync_client() -> tuple[Any, Any]:
        with SyncClient(adding_app.id, broker=kafka_bootstrap) as client:
            return client.ask("adding", {"a": 20, "b": 22}, timeout=30), client.join(
                "adding", [{"a": 1, "b": 1}, {"a": 2, "b": 2}]
            )

    # The worker runs on this test's loop: the blocking client goes to a thread.
    answer, joined = await asyncio.to_thread(use_sync_client)
    assert answer == 42
    assert joined == [2, 4]


async def test_a_client_waits_within_its_timeout_for_an_agent_not_published_yet(
    app_factory: Any, running: Any, kafka_bootstrap: str
) -> None:
    """A client started while the cluster boots: it used to fail at once ("has no agent")."""
    app = app_factory()

    @app.agent(app.topic(f"{app.id}-doubling", value_type=int))
    async def doubling(stream: Any) -> Any:
        async for value in stream:
            yield value * 2

    async with Client(app.id, broker=kafka_bootstrap) as client:
        ask = asyncio.ensure_future(client.ask("doubling", 21, timeout=60))
        await wait_until(lambda: client._metadata is not None, 30, "the client's first look")
        assert not ask.done()
        await running(app)  # the worker starts, and publishes its agents
        assert await ask == 42


UNREACHABLE = "127.0.0.1:1"  # nothing listens there: connections are refused


async def test_a_first_ask_honours_its_timeout_and_names_an_unreachable_broker() -> None:
    client = Client("nobody-home", broker=UNREACHABLE)
    started = time.monotonic()
    try:
        with pytest.raises(
            AskTimeoutError, match=r"gave up on agent 'adding' after 2 s.*127\.0\.0\.1:1"
        ):
            await client.ask("adding", {"a": 1}, timeout=2)
        took = time.monotonic() - started
    finally:
        await client.close(timeout=0.5)
    assert took < 2.5, f"a 2 s ask took {took:.2f} s"


async def test_an_agent_ask_from_a_script_bounds_making_its_reply_topic() -> None:
    """The reply topic is made on the first ask; with no broker that used to take longer
    than the ask's timeout, which started only afterwards."""
    app = shoal.App("script-without-broker", broker=UNREACHABLE)

    @app.agent(app.topic("script-without-broker-calc", value_type=int))
    async def calc(stream: Any) -> Any:
        async for value in stream:
            yield value

    started = time.monotonic()
    try:
        with pytest.raises(AskTimeoutError, match=r"reply topic could not be made.*127\.0\.0\.1:1"):
            await calc.ask(1, timeout=2)
        took = time.monotonic() - started
    finally:
        await app.stop(flush_timeout=0.5)
    assert took < 2.5, f"a 2 s ask took {took:.2f} s"

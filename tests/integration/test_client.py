"""The bundled client library against agents running in a worker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

import shoal
from shoal.cluster.client import Client, SyncClient
from shoal.exceptions import AgentError, RemoteAgentError
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
            await client.ask("nope", 1)
        reply_topic = (await client._app.ensure_replies()).topic
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

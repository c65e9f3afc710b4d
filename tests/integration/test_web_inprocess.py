"""Web views in one process: keys land where the router looks for them, and an app run by an
ASGI server (shoal.contrib.asgi, as faust.contrib.asgi runs one) answers its own pages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka import Producer

import shoal
from shoal.config import load_settings
from shoal.contrib.asgi import app_running, views
from shoal.kafka.clients import producer_config
from shoal.kafka.partitioner import partition_for_key
from tests.helpers import wait_until
from tests.integration.test_tables import send_words, word_count

pytestmark = pytest.mark.kafka


def test_keys_land_where_the_router_looks_for_them(
    kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = topic_factory("keys", partitions=8)
    conf = load_settings(
        {"id": "keys", "broker": f"kafka://{kafka_bootstrap}"}, env={}, config_file=False
    )
    producer = Producer(producer_config(conf, "t", wait_out_outages=False))
    landed: dict[bytes, int] = {}
    for i in range(200):
        key = f"key-{i}".encode()
        producer.produce(
            topic,
            b"v",
            key,
            on_delivery=lambda err, msg: landed.__setitem__(msg.key(), msg.partition()),
        )
    assert producer.flush(30) == 0
    assert len(landed) == 200
    assert all(partition == partition_for_key(key, 8) for key, partition in landed.items())
    assert len(set(landed.values())) == 8


async def call(asgi: Any, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path, _, query = path.partition("?")
    scope = {"type": "http", "method": method, "path": path, "query_string": query.encode()}
    await asgi(scope, receive, send)
    start, reply = sent
    return start["status"], json.loads(reply["body"])


async def test_an_app_run_by_an_asgi_server_answers_its_pages(app_factory: Any) -> None:
    app = app_factory()
    words, counts, _ = word_count(app)

    @app.page("/count/{word}/")
    @app.table_route(table=counts, match_info="word")
    async def count(web: Any, request: Any, word: str) -> Any:
        return web.json({"word": word, "count": counts[word]})

    @app.page("/send/")
    class Send(shoal.web.View):
        async def post(self, request: Any) -> Any:
            await send_words(words, (await request.json())["n"])
            return self.json({"ok": True}, status=201)

    asgi = views(app)
    async with app_running(app):
        assert await call(asgi, "POST", "/send/", b'{"n": 30}') == (201, {"ok": True})

        async def counted() -> bool:
            answers = [await call(asgi, "GET", f"/count/w{i}/") for i in range(10)]
            return all(body.get("count") == 3 for _, body in answers)

        await wait_until(counted, 60, "30 words counted, read through the page")
        assert await call(asgi, "GET", "/nothing/") == (
            404,
            {"error": "no page at /nothing/", "pages": ["/count/{word}/", "/send/"]},
        )
        status, body = await call(asgi, "PUT", "/send/")
        assert (status, body["error"]) == (405, "Method PUT not allowed.")
    await asgi.close()

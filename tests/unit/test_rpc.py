"""Asking and replying with no Kafka: the request's headers, the asker's futures and
timeouts, and the replier's routes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shoal.config import load_settings
from shoal.exceptions import AskTimeoutError, RemoteAgentError
from shoal.model.events import Message
from shoal.rpc.asker import Asker
from shoal.rpc.replier import Replier
from shoal.rpc.request import CORRELATION_ID, ERROR, ROUTE, Request

CONF = load_settings({"broker": "127.0.0.1:1"}, env={}, config_file=False)


async def no_producer() -> Any:
    raise AssertionError("a worker of a supervisor makes no reply topic of its own")


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, Any]] = []

    def send_soon(self, topic: str, key: Any, value: Any, *, headers: Any = None) -> None:
        self.sent.append((topic, key, value, headers))


def test_a_request_reads_back_from_its_message_as_it_was_written() -> None:
    request = Request("replies", "cid-1", "calc.adding", route="3")
    message = Message("calc", 0, 5, None, None, b"{}", [("trace", b"x"), *request.headers()])
    assert Request.of(message) == request
    assert Request.of(Message("calc", 0, 6, None, None, b"{}", [("trace", b"x")])) is None
    reply = dict(request.reply_headers(ValueError("no")))
    assert (
        reply[CORRELATION_ID] == b"cid-1" and reply[ROUTE] == b"3" and reply[ERROR] == b"ValueError"
    )


def asker_and_replier() -> tuple[Asker, Replier, RecordingProducer, list[tuple[Any, ...]]]:
    asker = Asker(CONF, "app", no_producer)
    asker.use_host("app-reply-host-1", route="0")
    producer = RecordingProducer()
    replier = Replier(asker, lambda: producer, lambda name: None)  # type: ignore[arg-type, return-value]
    neighbours: list[tuple[Any, ...]] = []
    replier.neighbour = lambda *reply: neighbours.append(reply)
    return asker, replier, producer, neighbours


async def test_an_ask_answered_in_this_process_resolves_at_once() -> None:
    asker, replier, producer, neighbours = asker_and_replier()
    sent: list[Request] = []

    async def send(request: Request) -> None:
        sent.append(request)
        replier.reply(request, value={"sum": 8})  # the agent runs here: no Kafka, no channel

    assert await asker.ask("calc.adding", send, timeout=5) == {"sum": 8}
    assert sent[0].reply_to == "app-reply-host-1" and sent[0].route == "0"
    assert producer.sent == [] and neighbours == []


async def test_a_remote_error_is_raised_where_the_asker_waits() -> None:
    asker, replier, _producer, _neighbours = asker_and_replier()

    async def send(request: Request) -> None:
        replier.reply(request, error=ValueError("a must not be negative"))

    with pytest.raises(RemoteAgentError, match="raised ValueError: a must not be negative"):
        await asker.ask("calc.adding", send, timeout=5)


async def test_replies_for_a_neighbour_worker_go_over_the_channel_and_others_to_kafka() -> None:
    _asker, replier, producer, neighbours = asker_and_replier()
    replier.reply(Request("app-reply-host-1", "cid-2", "calc", route="1"), value=3)
    assert neighbours == [("1", "cid-2", b"3", None)]
    replier.reply(Request("app-reply-elsewhere", "cid-3", "calc"), value=4)
    ((topic, key, value, headers),) = producer.sent
    assert (topic, key, value) == ("app-reply-elsewhere", b"cid-3", b"4")
    assert dict(headers)[CORRELATION_ID] == b"cid-3"


async def test_an_ask_nobody_answers_times_out_on_time_and_is_forgotten() -> None:
    asker, _replier, _producer, _neighbours = asker_and_replier()

    async def send(request: Request) -> None:
        pass

    started = asyncio.get_running_loop().time()
    with pytest.raises(AskTimeoutError, match=r"no reply from agent 'calc' within 0\.2 s "):
        await asker.ask("calc", send, timeout=0.2)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert asker.pending == 0


async def test_join_answers_in_input_order_whatever_order_the_replies_come_in() -> None:
    asker, replier, _producer, _neighbours = asker_and_replier()
    requests: list[tuple[Any, Request]] = []

    async def send(key: Any, value: Any, request: Request) -> None:
        requests.append((value, request))
        if len(requests) == 3:
            for value_, request_ in reversed(requests):
                replier.reply(request_, value=value_ * 10)

    items = [(None, 1), (None, 2), (None, 3)]
    assert await asker.kvjoin("calc", items, send, timeout=5) == [10, 20, 30]

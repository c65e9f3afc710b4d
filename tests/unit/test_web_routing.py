"""Where the supervisor sends an HTTP request, and what a worker that dies mid-request gives:
the hub and the router over a real socket pair, without processes or a broker."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from shoal.ipc.messages import WebRequest, WebResponse
from shoal.kafka.metadata import HostInfo
from shoal.runtime.tasks import Tasks
from shoal.supervisor.hub import Hub
from shoal.supervisor.webrouter import Forward, WebRouter
from tests.unit.test_ipc import links

REQUEST = WebRequest(0, "page", "GET", "/count/a/", "", [], b"", {"word": "a"})


def routed(partition: int) -> WebRequest:
    return msgspec.structs.replace(REQUEST, partition=partition)


def router(hub: Any, handle: Any, owner: HostInfo | None = None) -> WebRouter:
    pool = SimpleNamespace(handles=[handle], size=1)
    group = SimpleNamespace(owned={("words", 0), ("app-__assignor-__leader", 0)})
    hosts = SimpleNamespace(owner=lambda p: owner, id="me", url="http://me:1", hosts=list)
    return WebRouter("app", pool, group, hub, hosts)  # type: ignore[arg-type]


async def test_a_worker_answers_and_a_dead_one_gives_503_not_a_hang() -> None:
    hub = Hub(SimpleNamespace(handles=[]), SimpleNamespace(), Tasks(print))  # type: ignore[arg-type]
    supervisor_end, worker_end = await links()
    handle = SimpleNamespace(link=supervisor_end, index=0, partitions={("words", 0)})
    route = router(hub, handle)

    asked = asyncio.ensure_future(route.dispatch(routed(0), forwarded=False))
    got = await worker_end.recv()
    assert isinstance(got, WebRequest) and got.partition == 0 and got.path == "/count/a/"
    hub._on_message(handle, WebResponse(got.id, 200, b"3", "application/json", {}))  # type: ignore[arg-type]
    answer = await asked
    assert isinstance(answer, WebResponse) and (answer.status, answer.body) == (200, b"3")

    asked = asyncio.ensure_future(route.dispatch(routed(0), forwarded=False))
    await worker_end.recv()
    worker_end.close()  # the worker died before it answered: its link closes
    hub._web_lost(supervisor_end)
    answer = await asyncio.wait_for(asked, 5)
    assert isinstance(answer, WebResponse) and answer.status == 503
    assert answer.headers == {"Retry-After": "1"}
    assert (
        "worker 0, which owns partition 0, stopped before it answered"
        in json.loads(answer.body)["error"]
    )


async def test_other_partitions_go_to_their_host_once() -> None:
    handle = SimpleNamespace(link=None, index=0, partitions={("words", 0)})
    other = HostInfo("other", "http://other:2", [1], 0.0)
    answer = await router(None, handle, other).dispatch(routed(1), forwarded=False)
    assert answer == Forward("http://other:2", "other", 1)
    # Forwarded here already: refused, never forwarded again.
    answer = await router(None, handle, other).dispatch(routed(1), forwarded=True)
    assert isinstance(answer, WebResponse) and answer.status == 503
    assert "not owned by this host" in json.loads(answer.body)["error"]
    # Nobody owns it: 503. Owned here, but its worker restarts: 503.
    answer = await router(None, handle).dispatch(routed(1), forwarded=False)
    assert isinstance(answer, WebResponse) and answer.status == 503
    assert "no host owns partition 1" in json.loads(answer.body)["error"]
    answer = await router(None, handle).dispatch(routed(0), forwarded=False)
    assert isinstance(answer, WebResponse) and answer.status == 503
    assert json.loads(answer.body)["error"] == "worker 0, which owns partition 0, is restarting"


def test_a_stopping_supervisor_gives_503_not_a_500() -> None:
    import urllib.error
    import urllib.request

    from prometheus_client import CollectorRegistry

    import shoal
    from shoal.supervisor.web import HostWeb
    from shoal.supervisor.webviews import AppViews

    app = shoal.App("web-stopping")
    app.Table("counts", default=int)
    gone = asyncio.new_event_loop()
    gone.close()  # the supervisor's loop, after its shutdown
    views = AppViews(app, router(None, SimpleNamespace(link=None, index=0, partitions=set())), gone)
    server = HostWeb("127.0.0.1", 0, CollectorRegistry(), views.add_routes)
    server.start()
    try:
        for path in ("/router", "/table/counts/a"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(server.url + path, timeout=10)
            assert caught.value.code == 503, path
            assert "stopping" in json.loads(caught.value.read())["error"]
    finally:
        server.stop()

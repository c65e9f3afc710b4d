"""The client's table lookups against a real aiohttp server standing in for a host: a value,
a missing key, a 503 retried as Retry-After says, and a table the cluster does not have."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from shoal.cluster.tables import RemoteTable
from shoal.exceptions import TableLookupError
from shoal.kafka.metadata import HostInfo, Metadata, TableInfo


async def serve(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/table/{name}/{key}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def metadata_for(url: str) -> Metadata:
    return Metadata(
        tables={"counts": TableInfo("counts", 4, "raw", None)},
        hosts={"h": HostInfo("h", url, [0, 1, 2, 3], time.time())},
    )


async def test_values_missing_keys_and_retries() -> None:
    unavailable = 1  # answer the first request with a 503

    async def handler(request: web.Request) -> web.Response:
        nonlocal unavailable
        if unavailable:
            unavailable -= 1
            return web.json_response(
                {"error": "recovering"}, status=503, headers={"Retry-After": "0"}
            )
        if request.match_info["key"] == "nope":
            return web.json_response({"error": "key not found"}, status=404)
        return web.json_response({"count": 7, "key": request.match_info["key"]})

    runner, url = await serve(handler)
    reads: list[bool] = []

    async def metadata(refresh: bool) -> Metadata:
        reads.append(refresh)
        return metadata_for(url)

    async with aiohttp.ClientSession() as session:
        table = RemoteTable("counts", metadata, lambda: session, 5.0)
        assert await table["a b/c"] == {"count": 7, "key": "a b/c"}  # quoted in the URL
        assert reads == [False, True]  # the 503 was retried with the records read again
        with pytest.raises(KeyError):
            await table["nope"]
        assert await table.get("nope", 0) == 0
        missing = RemoteTable("other", metadata, lambda: session, 0.5)
        with pytest.raises(TableLookupError, match="the app has no table 'other'"):
            await missing["x"]
    await runner.cleanup()

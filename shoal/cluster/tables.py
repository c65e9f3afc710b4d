"""A table of a running cluster, read by key through the hosts' web endpoints.

``await client.table('word_counts')['hello']`` (or ``client.table(...)['hello']`` with the
SyncClient) finds the host that owns the key's partition from the records on the app's
metadata topic (shoal.kafka.metadata), asks its ``/table/{name}/{key}``, and gets the value
from the worker that holds it: the same routing as a browser's request, one hop shorter. A
503 (the partition is recovering or moving), a host that does not answer, or a record that
is out of date is retried, with the records read again, until the timeout.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import msgspec

from shoal.exceptions import TableLookupError
from shoal.kafka.metadata import Metadata, TableInfo

#: How long to wait before asking again after a 503 without Retry-After, or no host.
RETRY_EVERY = 0.2


class RemoteTable:
    """One table of a cluster: ``await table[key]``, ``await table.get(key, default)``."""

    def __init__(
        self,
        name: str,
        metadata: Callable[[bool], Awaitable[Metadata]],
        session: Callable[[], aiohttp.ClientSession],
        timeout: float,
    ) -> None:
        self.name = name
        self._metadata = metadata
        self._session = session
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<RemoteTable {self.name}>"

    def __getitem__(self, key: Any) -> Awaitable[Any]:
        """The value of ``key``; KeyError when the table has no such key (and no default)."""
        return self.lookup(key)

    async def get(self, key: Any, default: Any = None) -> Any:
        try:
            return await self.lookup(key)
        except KeyError:
            return default

    async def lookup(self, key: Any, timeout: float | None = None) -> Any:
        """The value of ``key``, within ``timeout`` seconds (the client's ``ask_timeout``)."""
        wait = timeout or self.timeout
        deadline = time.monotonic() + wait
        refresh = False
        while True:
            metadata = await self._metadata(refresh)
            refresh = True
            info = metadata.tables.get(self.name)
            if info is None:
                known = ", ".join(sorted(metadata.tables)) or "none published yet"
                problem = f"the app has no table {self.name!r} (tables: {known})"
                retry = RETRY_EVERY
            elif (url := self._url_for(metadata, info, key)) is None:
                problem = "no host of the app has published its web address"
                retry = RETRY_EVERY
            else:
                status, body, retry = await self._ask(url, deadline)
                if status == 200:
                    return msgspec.json.decode(body)
                if status == 404 and b"key not found" in body:
                    raise KeyError(key)
                if 400 <= status < 500:
                    raise TableLookupError(
                        f"table {self.name!r}, key {key!r}: {status} {body.decode()[:300]}"
                    )
                problem = f"{url} answered {status} {body.decode()[:300]}"
            if time.monotonic() + retry >= deadline:
                raise TableLookupError(
                    f"table {self.name!r}, key {key!r}: no answer within {wait:g} s: {problem}"
                )
            await asyncio.sleep(retry)  # as the host asked (Retry-After), within the deadline

    def _url_for(self, metadata: Metadata, info: TableInfo, key: Any) -> str | None:
        space = info.keyspace()
        hosts = metadata.live_hosts()
        if not hosts:
            return None
        owner = None if info.is_global else metadata.owner(space.partition(key))
        host = owner or hosts[0]
        quoted = urllib.parse.quote(str(key), safe="")
        return f"{host.url}/table/{urllib.parse.quote(info.name, safe='')}/{quoted}"

    async def _ask(self, url: str, deadline: float) -> tuple[int, bytes, float]:
        left = max(0.05, deadline - time.monotonic())
        try:
            async with self._session().get(url, timeout=aiohttp.ClientTimeout(total=left)) as reply:
                body = await reply.read()
                return reply.status, body, _seconds(reply.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 599, f"{type(exc).__name__}: {exc}".encode(), RETRY_EVERY


def _seconds(retry_after: str | None) -> float:
    try:
        return float(retry_after) if retry_after is not None else RETRY_EVERY
    except ValueError:  # an HTTP date: not what our hosts send
        return RETRY_EVERY

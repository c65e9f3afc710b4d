"""Where an HTTP request goes: a worker of this host, another host, or nowhere yet (503).

Runs on the supervisor's loop, where the group's assignment and the workers' connections
live; the web server's thread (shoal.supervisor.web) calls :meth:`WebRouter.dispatch` there.
A request routed by a key carries its partition: the worker of this host that owns the
partition answers it, else the host that claims it (:class:`~shoal.supervisor.hosts.
HostDirectory`) is asked, once: a request that was forwarded here already is answered here or
refused, never forwarded again. A page without a route goes to any running worker, in turn.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

from shoal.ipc.messages import WebRequest, WebResponse
from shoal.supervisor.group import Group
from shoal.supervisor.hosts import HostDirectory
from shoal.supervisor.hub import Hub
from shoal.supervisor.pool import Pool
from shoal.supervisor.standbys import partition_numbers
from shoal.supervisor.workers import WorkerHandle
from shoal.types import leader_topic
from shoal.web.exceptions import WebError
from shoal.web.views import Response, error_of, error_response

#: How long a worker may take to answer a request before the client gets a 504 (seconds).
WEB_TIMEOUT = 30.0


@dataclass(frozen=True)
class Forward:
    """Ask the host at ``url`` (it owns the partition)."""

    url: str
    host: str
    partition: int


def as_message(response: Response) -> WebResponse:
    return WebResponse(0, response.status, response.body, response.content_type, response.headers)


def error(status: int, message: str, **extra: Any) -> WebResponse:
    """A JSON error (:func:`shoal.web.views.error_response`) as the channel carries answers."""
    return as_message(error_response(status, message, **extra))


def web_error(exc: WebError) -> WebResponse:
    return as_message(error_of(exc))


class WebRouter:
    """See the module docstring."""

    def __init__(
        self, app_id: str, pool: Pool, group: Group, hub: Hub, hosts: HostDirectory
    ) -> None:
        self._leader = leader_topic(app_id)
        self._pool = pool
        self._group = group
        self._hub = hub
        self.hosts = hosts
        self._turn = itertools.count()

    def owned(self) -> set[int]:
        """The partition numbers this host owns."""
        return partition_numbers(self._group.owned, self._leader)

    def worker_of(self, partition: int) -> WorkerHandle | None:
        for handle in self._pool.handles[: self._pool.size]:
            if any(p == partition and t != self._leader for t, p in handle.partitions):
                return handle
        return None

    async def dispatch(self, request: WebRequest, forwarded: bool) -> WebResponse | Forward:
        """Where ``request`` goes, by the partition it carries (None: any worker)."""
        partition = request.partition
        if partition is None:
            return await self._any_worker(request)
        handle = self.worker_of(partition)
        if handle is not None:
            return await self._ask(handle, request)
        if partition in self.owned():  # the group gave it, no worker has it yet
            return error(503, f"partition {partition} is being handed to a worker of this host")
        if forwarded:
            return error(
                503,
                f"partition {partition} is not owned by this host (it moved; a rebalance may "
                "be under way)",
                partition=partition,
            )
        host = self.hosts.owner(partition)
        if host is None:
            return error(
                503,
                f"no host owns partition {partition} now (the app is starting, or a rebalance "
                "is under way)",
                partition=partition,
            )
        return Forward(host.url, host.id, partition)

    async def _any_worker(self, request: WebRequest) -> WebResponse | Forward:
        running = [h for h in self._pool.handles[: self._pool.size] if h.link is not None]
        if not running:
            return error(503, "no worker of this host is running")
        handle = running[next(self._turn) % len(running)]
        return await self._ask(handle, request)

    async def _ask(self, handle: WorkerHandle, request: WebRequest) -> WebResponse:
        partition = request.partition
        owns = "" if partition is None else f", which owns partition {partition},"
        if handle.link is None:
            return error(503, f"worker {handle.index}{owns} is restarting", partition=partition)
        try:
            response = await asyncio.wait_for(self._hub.web_request(handle, request), WEB_TIMEOUT)
        except TimeoutError:
            return error(504, f"worker {handle.index}{owns} did not answer in {WEB_TIMEOUT:g} s")
        if response is None:
            return error(
                503, f"worker {handle.index}{owns} stopped before it answered", partition=partition
            )
        return response

    def router(self) -> dict[str, Any]:
        """``/router``: which host and worker owns which partition."""
        workers = {
            str(h.index): sorted(partition_numbers(h.partitions, self._leader))
            for h in self._pool.handles[: self._pool.size]
        }
        hosts = [
            {
                "host": h.id,
                "url": h.url,
                "partitions": h.partitions,
                "workers": h.workers,
                "this": h.id == self.hosts.id,
                "at": h.at,
            }
            for h in sorted(self.hosts.hosts(), key=lambda h: h.id)
        ]
        return {
            "host": self.hosts.id,
            "url": self.hosts.url,
            "partitions": sorted(self.owned()),
            "workers": workers,
            "hosts": hosts,
        }

"""The supervisor's end of the channel: each worker's connection, and what its messages mean.

A worker connects once per process: :class:`~shoal.ipc.messages.Hello` (its slot and pid,
which must match a process this supervisor started), :class:`~shoal.ipc.messages.Welcome`
(the host's reply topic), :class:`~shoal.ipc.messages.Ready`. A replacement is handed its
slot's partitions at once. From then on its heartbeats go to its slot, its offsets to the
group (and the answer back), its final offsets to the revocation that waits for them, and its
replies for another worker of the host to that worker, its answers to HTTP requests to the
request that waits for them (a worker that dies answers them all: no answer). Handling a
message never waits: a slow commit must not hold up an answer to a revocation (the group's
callback waits for that answer, and commits wait for the callback). A stray connection gets
one warning line.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import msgspec

from shoal.ipc.link import BadFrame, ChannelClosed, Link
from shoal.ipc.messages import (
    Assign,
    Committed,
    Heartbeat,
    Hello,
    Message,
    Offsets,
    Ready,
    Reply,
    Revoked,
    Stop,
    WebRequest,
    WebResponse,
    Welcome,
    pack_tps,
    unpack_offsets,
)
from shoal.runtime.tasks import Tasks
from shoal.supervisor.group import Group
from shoal.supervisor.metrics_server import MetricsServer
from shoal.supervisor.pool import Pool
from shoal.supervisor.workers import WorkerHandle

log = logging.getLogger(__name__)


class Hub:
    """See the module docstring."""

    def __init__(self, pool: Pool, group: Group, tasks: Tasks) -> None:
        self._pool = pool
        self._group = group
        self._tasks = tasks
        self.metrics: MetricsServer | None = None
        #: The host's reply topic, told to each worker in its welcome.
        self.reply_topic = ""
        #: Replies for a worker that is gone (its ask died with it).
        self.late = 0
        #: HTTP requests handed to a worker, by id: the link they went over, and the answer.
        self._web: dict[int, tuple[Link, asyncio.Future[WebResponse | None]]] = {}
        self._web_ids = itertools.count(1)

    async def send(self, handle: WorkerHandle, message: Message) -> bool:
        """False when the worker is not connected (it is starting, or gone)."""
        if handle.link is None:
            return False
        try:
            await handle.link.send(message)
        except ChannelClosed:
            return False
        return True

    async def stop(self, handle: WorkerHandle) -> bool:
        return await self.send(handle, Stop())

    def forward_reply(self, route: str, cid: str, value: bytes | None, error: bytes | None) -> None:
        """A reply for one of this host's workers (from the host's reply topic, or from a
        neighbour worker over the channel): hand it to the worker that asked."""
        handles = self._pool.handles
        index = int(route) if route.isdigit() else -1
        if not 0 <= index < len(handles) or handles[index].link is None:
            self.late += 1
            return
        self._tasks.spawn(self.send(handles[index], Reply(cid, value, error)), name="reply")

    async def web_request(self, handle: WorkerHandle, request: WebRequest) -> WebResponse | None:
        """Hand an HTTP request to a worker and wait for its answer; None when the worker is
        not connected, or its connection closes first (it died: the caller answers 503)."""
        link = handle.link
        if link is None:
            return None
        request = msgspec.structs.replace(request, id=next(self._web_ids))
        future: asyncio.Future[WebResponse | None] = asyncio.get_running_loop().create_future()
        self._web[request.id] = (link, future)
        try:
            await link.send(request)
            return await future
        except ChannelClosed:
            return None
        finally:
            self._web.pop(request.id, None)

    def _web_answered(self, response: WebResponse) -> None:
        entry = self._web.get(response.id)
        if entry is not None and not entry[1].done():
            entry[1].set_result(response)

    def _web_lost(self, link: Link) -> None:
        """A worker's connection closed: what it was asked over it gets no answer."""
        for sent_over, future in list(self._web.values()):
            if sent_over is link and not future.done():
                future.set_result(None)

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = Link(reader, writer)
        handle: WorkerHandle | None = None
        try:
            handle = await self._handshake(link)
            while True:
                self._on_message(handle, await link.recv())
        except BadFrame as exc:
            log.warning("channel socket: closed a connection that sent %s", exc)
        except ChannelClosed:
            pass
        finally:
            link.close()
            self._web_lost(link)
            if handle is not None and handle.link is link:
                handle.link = None
            self._group.abandon(link)

    async def _handshake(self, link: Link) -> WorkerHandle:
        hello = await link.recv()
        handles = self._pool.handles
        if (
            not isinstance(hello, Hello)
            or not 0 <= hello.index < len(handles)
            or handles[hello.index].pid != hello.pid
        ):
            raise BadFrame(f"not the hello of a worker of this supervisor: {hello!r}"[:200])
        handle = handles[hello.index]
        handle.link = link
        handle.last_heartbeat = time.monotonic()
        await link.send(Welcome(self.reply_topic))
        ready = await link.recv()
        if not isinstance(ready, Ready):
            raise BadFrame(f"worker {hello.index} sent {ready!r} instead of ready"[:200])
        self._group.topics.update(ready.topics)
        self._group.wants_standbys |= ready.tables
        handle.last_heartbeat = time.monotonic()
        handle.ready.set()
        log.info("worker %d (pid %d) is ready", handle.index, hello.pid)
        if handle.partitions:
            # A replacement: the same partitions, from the last committed offsets.
            await self.send(handle, Assign(pack_tps(handle.partitions)))
        await self._group.send_standbys(handle)
        return handle

    def _on_message(self, handle: WorkerHandle, message: Message) -> None:
        match message:
            case Heartbeat(received=received, lag=lag, highs=highs, recovering=recovering):
                handle.heartbeat(received, lag, recovering)
                if self.metrics is not None and highs:
                    self.metrics.supervisor.high_watermarks(handle.index, unpack_offsets(highs))
            case Offsets(id=request, offsets=offsets):
                self._tasks.spawn(
                    self._commit_and_answer(handle, request, unpack_offsets(offsets)),
                    name="commit",
                )
            case Revoked(id=request, offsets=offsets):
                self._group.revoked(request, unpack_offsets(offsets))
            case Reply(cid=cid, value=value, error=error, route=route) if route is not None:
                self.forward_reply(route, cid, value, error)
            case WebResponse():
                self._web_answered(message)
            case _:
                log.warning("worker %d sent an unexpected %r", handle.index, message)

    async def _commit_and_answer(
        self, handle: WorkerHandle, request: int, offsets: dict[tuple[str, int], int]
    ) -> None:
        ok = await self._group.commit_for(handle, offsets)
        await self.send(handle, Committed(request, ok))

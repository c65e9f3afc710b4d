"""The supervisor's control socket: how ``clusterctl scale`` asks a running supervisor to change
its number of workers, without signalling a pid read from a file.

The socket lives in the app's private runtime directory (see :mod:`rundir`), so only its user
reaches it. One request per connection, typed like the channel's messages: a
:class:`~shoal.ipc.messages.Scale` (a ``delta`` or a number of ``workers``) is answered with
:class:`~shoal.ipc.messages.Scaling` (the supervisor's pid, the workers before and after) or
:class:`~shoal.ipc.messages.Refused`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoal.exceptions import ShoalError
from shoal.ipc.link import ChannelClosed, Link
from shoal.ipc.messages import Refused, Scale, Scaling

log = logging.getLogger(__name__)

#: (delta, or None, and workers, or None) -> (workers now, workers asked for); raises
#: ShoalError to refuse.
ScaleRequest = Callable[[int | None, int | None], tuple[int, int]]


class ControlError(ShoalError):
    """No supervisor answered on the control socket, or it refused the request."""


def socket_path(app_dir: Path) -> Path:
    return app_dir / "control.sock"


def handler(scale: ScaleRequest) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
    """A connection handler for :func:`asyncio.start_unix_server`."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = Link(reader, writer)
        try:
            request = await link.recv()
            if not isinstance(request, Scale) or (request.delta is None) == (
                request.workers is None
            ):
                await link.send(Refused(f"unknown request {request!r}"[:200]))
                return
            try:
                before, after = scale(request.delta, request.workers)
            except ShoalError as exc:
                await link.send(Refused(str(exc)))
                return
            await link.send(Scaling(os.getpid(), before, after))
        except ChannelClosed as exc:
            log.warning("control socket: rejected a connection: %s", exc)
        finally:
            link.close()

    return serve


async def request_scale(
    path: Path, *, delta: int | None = None, workers: int | None = None, timeout: float = 10.0
) -> Scaling:
    """Ask the supervisor listening on ``path`` to add (``delta`` > 0) or remove workers, or
    to run ``workers`` of them."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(str(path))
            link = Link(reader, writer)
            try:
                await link.send(Scale(delta=delta, workers=workers))
                answer = await link.recv()
            finally:
                link.close()
    except (OSError, ChannelClosed, TimeoutError) as exc:
        raise ControlError(
            f"no supervisor answered on {path} ({exc or type(exc).__name__}): is `clusterctl "
            "up` running for this app on this host, as this user?"
        ) from None
    if not isinstance(answer, Scaling):
        message = answer.message if isinstance(answer, Refused) else repr(answer)
        raise ControlError(f"the supervisor refused: {message}")
    return answer

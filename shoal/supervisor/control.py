"""The supervisor's control socket: how ``clusterctl scale`` asks a running supervisor to change
its number of workers, without signalling a pid read from a file.

The socket lives in the app's private runtime directory (see :mod:`rundir`), so only its user
reaches it. One request per connection, in the channel's framing: ``{"t": "scale", "delta": N}`` or
``{"t": "scale", "workers": N}`` is answered with ``{"t": "scaling", "pid": ..., "from": A,
"to": B}``, or ``{"t": "error", "message": ...}``.
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

log = logging.getLogger(__name__)

SCALE = "scale"
SCALING = "scaling"
ERROR = "error"

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
            delta, workers = request.get("delta"), request.get("workers")
            valid = isinstance(delta, int) != isinstance(workers, int)  # exactly one of them
            if request["t"] != SCALE or not valid:
                await link.send({"t": ERROR, "message": f"unknown request {request!r}"[:200]})
                return
            try:
                current, target = scale(delta, workers)
            except ShoalError as exc:
                await link.send({"t": ERROR, "message": str(exc)})
                return
            await link.send({"t": SCALING, "pid": os.getpid(), "from": current, "to": target})
        except ChannelClosed as exc:
            log.warning("control socket: rejected a connection: %s", exc)
        finally:
            link.close()

    return serve


async def request_scale(
    path: Path, *, delta: int | None = None, workers: int | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """Ask the supervisor listening on ``path`` to add (``delta`` > 0) or remove workers, or
    to run ``workers`` of them."""
    request: dict[str, Any] = {"t": SCALE}
    request.update({"delta": delta} if delta is not None else {"workers": workers})
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(str(path))
            link = Link(reader, writer)
            try:
                await link.send(request)
                answer = await link.recv()
            finally:
                link.close()
    except (OSError, ChannelClosed, TimeoutError) as exc:
        raise ControlError(
            f"no supervisor answered on {path} ({exc or type(exc).__name__}): is `clusterctl "
            "up` running for this app on this host, as this user?"
        ) from None
    if answer.get("t") != SCALING:
        raise ControlError(f"the supervisor refused: {answer.get('message', answer)}")
    return answer

"""What the development broker tool's parts share: its error, its quiet switch, file locks.

Standard library only, like the rest of :mod:`shoal.cluster.devbroker`.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

_QUIET = False


class BrokerOpsError(Exception):
    """An operation failed. The first line of str() names the cause and the fix."""


def say(msg: str) -> None:
    if not _QUIET:
        print(msg, flush=True)


@contextlib.contextmanager
def quieted(quiet: bool) -> Iterator[None]:
    global _QUIET
    before, _QUIET = _QUIET, quiet or _QUIET
    try:
        yield
    finally:
        _QUIET = before


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise concurrent `up`/`fetch` (e.g. pytest-xdist workers) on a file lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield

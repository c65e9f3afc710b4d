"""Where a supervisor keeps its runtime state: a directory only its user can write.

The status file and the control socket tell ``clusterctl`` which process to talk to, so
nobody else may be able to plant them. In a shared ``/tmp`` the first user to create a name
owns it; so the root is ``$XDG_RUNTIME_DIR/shoal`` (a per-user directory that systemd-logind
makes 0700) where there is one, else ``<temp dir>/shoal-<uid>``, and every directory on the
way is created 0700 and checked: owned by this user, writable by nobody else. Anything else
is refused with a message that says what to do, never used.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from shoal.exceptions import ShoalError


class RunDirError(ShoalError):
    """The runtime directory exists but could be written by someone else."""


def runtime_root() -> Path:
    """``$XDG_RUNTIME_DIR/shoal`` when that variable names a private directory of this
    user, else ``<temp dir>/shoal-<uid>``."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_absolute() and _private(Path(xdg)):
        return Path(xdg) / "shoal"
    return Path(tempfile.gettempdir()) / f"shoal-{os.getuid()}"


def app_dir(app_id: str, root: Path | None = None, *, create: bool = False) -> Path:
    """The runtime directory of ``app_id`` (created 0700 with ``create``), after checking
    that it and its parent belong to this user alone; raises :class:`RunDirError`."""
    if not app_id or app_id in {".", ".."} or "/" in app_id or os.sep in app_id:
        # The app id becomes a directory name; a separator would escape the root.
        raise ValueError(f"app id {app_id!r} cannot name a runtime directory")
    base = root if root is not None else runtime_root()
    path = base / app_id
    for directory in (base, path):
        if create:
            with contextlib.suppress(FileExistsError):
                directory.mkdir(mode=0o700)
        if directory.exists():
            check_private(directory)
    return path


def check_private(path: Path) -> None:
    """Raise :class:`RunDirError` unless ``path`` is a real directory of this user that no
    other user can write into."""
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise RunDirError(f"{path} should be a directory of shoal's, but is not one: remove it")
    if info.st_uid != os.getuid():
        raise RunDirError(
            f"{path} belongs to user id {info.st_uid}, not to this user ({os.getuid()}): "
            "another user may have planted it; remove it, or set XDG_RUNTIME_DIR to a "
            "private directory"
        )
    if info.st_mode & 0o022:
        raise RunDirError(
            f"{path} can be written by other users (mode {stat.S_IMODE(info.st_mode):o}): "
            f"run `chmod 700 {path}`, or remove it"
        )


def _private(path: Path) -> bool:
    try:
        check_private(path)
    except (OSError, RunDirError):
        return False
    return True

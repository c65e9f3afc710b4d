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
from collections.abc import Callable
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


#: Unix socket paths are limited to about 108 bytes.
MAX_SOCKET_PATH = 100


class RunFiles:
    """The files of one supervisor in its app's runtime directory: its channel socket and
    metrics directory (named by its pid), and the app's status file and control socket,
    which a second supervisor of the app on this host would take over."""

    def __init__(self, app_id: str, pid: int) -> None:
        self.dir = app_dir(app_id)
        self.pid = pid
        self.channel_socket = self.dir / f"channel-{pid}.sock"
        self.control_socket = self.dir / "control.sock"
        self.status_file = self.dir / "status.json"
        self.metrics_dir = self.dir / f"metrics-{pid}"
        self._control_inode = -1
        for path in (self.channel_socket, self.control_socket):
            if len(str(path)) > MAX_SOCKET_PATH:
                raise ShoalError(
                    f"the socket path {path} is too long for a Unix socket: set "
                    "XDG_RUNTIME_DIR or TMPDIR to a shorter directory, or use a shorter app id"
                )

    def create(self) -> None:
        """Make the directory (0700, checked), and clear a control socket left by a
        supervisor that was killed."""
        app_dir(self.dir.name, self.dir.parent, create=True)
        with contextlib.suppress(FileNotFoundError):
            self.control_socket.unlink()

    def claim_control(self) -> None:
        """The control socket is bound: remember it, to remove only our own at the end."""
        self._control_inode = self.control_socket.stat().st_ino

    def remove(self, status_pid: Callable[[Path], int | None]) -> None:
        """Remove what this supervisor made: the status file and control socket only while
        they are still its own."""
        with contextlib.suppress(OSError):
            self.channel_socket.unlink()
        with contextlib.suppress(OSError):
            if status_pid(self.status_file) == self.pid:
                self.status_file.unlink()
        with contextlib.suppress(OSError):
            if self.control_socket.stat().st_ino == self._control_inode:
                self.control_socket.unlink()
        with contextlib.suppress(OSError):
            self.dir.rmdir()  # when nothing of another supervisor of the app is left in it

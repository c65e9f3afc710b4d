"""The runtime directory: private to its user, and refused when someone else could write it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoal.supervisor import rundir
from shoal.supervisor.rundir import RunDirError, app_dir, runtime_root


def test_the_root_is_the_users_runtime_dir_when_it_is_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = tmp_path / "run-user"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert runtime_root() == xdg / "shoal"


def test_without_a_private_runtime_dir_the_root_is_per_user_in_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))  # world-writable: not used
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(rundir.tempfile, "tempdir", None)  # re-read TMPDIR
    assert runtime_root() == tmp_path / f"shoal-{os.getuid()}"


def test_app_dirs_are_created_private(tmp_path: Path) -> None:
    path = app_dir("orders", tmp_path / "root", create=True)
    assert path == tmp_path / "root" / "orders"
    for directory in (path, path.parent):
        assert directory.stat().st_mode & 0o777 == 0o700


def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    """A shared /tmp: whoever makes the directory first owns it. One that other users can
    write into might hold a planted status file or socket."""
    root = tmp_path / "root"
    root.mkdir()
    root.chmod(0o777)
    with pytest.raises(RunDirError, match=r"can be written by other users.*chmod 700"):
        app_dir("orders", root, create=True)


def test_a_directory_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    monkeypatch.setattr(rundir.os, "getuid", lambda: os.stat(root).st_uid + 1)
    with pytest.raises(RunDirError, match="belongs to user id"):
        app_dir("orders", root)


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "root").symlink_to(target)
    with pytest.raises(RunDirError, match="is not one"):
        app_dir("orders", tmp_path / "root")


@pytest.mark.parametrize("app_id", ["", "..", "a/b"])
def test_ids_that_escape_the_root_are_refused(app_id: str) -> None:
    with pytest.raises(ValueError, match="cannot name a runtime directory"):
        app_dir(app_id)

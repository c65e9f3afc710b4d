"""clusterctl's start-up errors: one clear line and exit code 3 (not worth a restart)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def clusterctl(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    return subprocess.run(
        [sys.executable, "-m", "shoal.cluster.cli", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_setting_names_the_setting_and_exits_3() -> None:
    result = clusterctl("-A", "examples.agent", "worker", SHOAL_TOPIC_PARTITIONS="zero")
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "Error: setting 'topic_partitions' has an invalid value 'zero' "
        "(from environment variable SHOAL_TOPIC_PARTITIONS): expected an integer >= 1"
    )


def test_app_that_cannot_be_imported_exits_3() -> None:
    result = clusterctl("-A", "examples.no_such_module", "worker")
    assert result.returncode == 3
    assert "cannot import app module 'examples.no_such_module'" in result.stderr


def test_help_explains_every_command() -> None:
    result = clusterctl("--help")
    assert result.returncode == 0
    for command in ("worker", "send", "kafka"):
        assert command in result.stdout
    worker_help = clusterctl("worker", "--help")
    assert "exits 0 after a graceful stop" in worker_help.stdout


def test_status_and_scale_refuse_a_runtime_dir_others_can_write(tmp_path: Path) -> None:
    """In a shared /tmp another user may have made shoal's directory first and planted a
    status file naming some pid: scale used to signal that pid."""
    planted = tmp_path / f"shoal-{os.getuid()}" / "agent-example"
    planted.mkdir(parents=True)
    planted.parent.chmod(0o777)
    (planted / "status.json").write_text('{"app_id": "agent-example", "pid": 1}')
    for command in (["status"], ["scale", "+2"]):
        result = clusterctl(
            "-A", "examples.agent", *command, TMPDIR=str(tmp_path), XDG_RUNTIME_DIR=""
        )
        assert result.returncode == 1, result
        assert "can be written by other users" in result.stderr
        assert f"chmod 700 {planted.parent}" in result.stderr


def test_scale_without_a_running_supervisor_says_so(tmp_path: Path) -> None:
    result = clusterctl("-A", "examples.agent", "scale", "+1", TMPDIR=str(tmp_path))
    assert result.returncode == 1
    assert "no supervisor answered on" in result.stderr
    assert "is `clusterctl up` running for this app on this host" in result.stderr

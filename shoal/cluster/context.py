"""What every ``clusterctl`` command shares: the app it is about, and logging."""

from __future__ import annotations

from typing import Any

import click

from shoal import logs
from shoal.exceptions import ShoalError
from shoal.worker.loader import load_app as _load_app


def setup_logging(
    level: str, fmt: str = "text", app_id: str = "-", role: str | None = None
) -> None:
    """Log lines of this process; ``role`` None is a supervisor, else what it is
    (``"worker"`` for ``clusterctl worker``, ``"command"``...)."""
    logs.setup_logging(level, fmt, app_id=app_id, worker=role)


def load_app(spec: str) -> Any:
    """The App named by ``spec``; a failure becomes a one-line click error."""
    try:
        return _load_app(spec)
    except ShoalError as exc:
        raise click.ClickException(str(exc)) from exc


class CliContext:
    def __init__(self, app_spec: str | None, preset: Any = None) -> None:
        self.app_spec = app_spec
        self.preset = preset
        self.log_level = "info"
        self.log_format: str | None = None

    def setup_logging_for(self, app: Any, level: str | None = None, role: str | None = None) -> str:
        """Log lines that name the app (and ``role``: see :func:`setup_logging`), in the
        format asked for or the app's setting."""
        fmt = self.log_format or app.conf.log_format
        setup_logging(level or self.log_level, fmt, app.id, role)
        return str(fmt)

    def app(self) -> Any:
        if self.preset is not None:
            return self.preset
        if not self.app_spec:
            raise click.UsageError("which app? pass -A/--app module[:attribute]")
        return load_app(self.app_spec)

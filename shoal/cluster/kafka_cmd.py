"""``clusterctl kafka``: run the development/CI Kafka broker of ops/kafka from the CLI.

The broker manager itself is ``ops/kafka/broker.py``, a standard-library-only script that must
work before shoal is installed; this module loads it by path and calls its functions.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Protocol, cast

import click

import shoal


class _BrokerInfo(Protocol):
    bootstrap: str
    port: int
    data_dir: Path
    pid: int


class _BrokerOps(Protocol):
    """The part of ops/kafka/broker.py used here."""

    BrokerOpsError: type[Exception]
    DEFAULT_PORT: int

    def up(
        self,
        port: int = ...,
        *,
        controller_port: int | None = ...,
        data_dir: Path | None = ...,
        timeout: float = ...,
        quiet: bool = ...,
        foreground: bool = ...,
    ) -> _BrokerInfo: ...

    def down(
        self,
        port: int = ...,
        *,
        data_dir: Path | None = ...,
        timeout: float = ...,
        quiet: bool = ...,
    ) -> bool: ...

    def describe(self, port: int = ..., *, data_dir: Path | None = ...) -> tuple[bool, str]: ...

    def show_logs(
        self, port: int = ..., *, data_dir: Path | None = ..., lines: int = ..., follow: bool = ...
    ) -> int: ...


_MODULE_NAME = "shoal_ops_kafka_broker"


class BrokerOpsFailed(click.ClickException):
    """Exit code 2, as ops/kafka/kafka exits on the same errors."""

    exit_code = 2


def ops_dir() -> Path:
    """$SHOAL_OPS_DIR, else the ops/ directory of the source checkout shoal was imported from."""
    env = os.environ.get("SHOAL_OPS_DIR")
    return Path(env).expanduser() if env else Path(shoal.__file__).resolve().parents[1] / "ops"


def load_broker_ops() -> _BrokerOps:
    cached = sys.modules.get(_MODULE_NAME)
    if cached is not None:
        return cast(_BrokerOps, cached)
    path = ops_dir() / "kafka" / "broker.py"
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
    if not path.is_file() or spec is None or spec.loader is None:
        raise BrokerOpsFailed(
            f"`clusterctl kafka` needs a source checkout of shoal ({path} not found): run it "
            "from a git clone, or set SHOAL_OPS_DIR to the checkout's ops/ directory"
        )
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module  # dataclasses look their module up while building
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_MODULE_NAME]
        raise
    return cast(_BrokerOps, module)


@contextlib.contextmanager
def _broker_ops() -> Iterator[_BrokerOps]:
    """The loaded module; its BrokerOpsError (one line: cause and fix) becomes a CLI error."""
    ops = load_broker_ops()
    try:
        yield ops
    except ops.BrokerOpsError as exc:
        raise BrokerOpsFailed(str(exc)) from exc


_port = click.option(
    "--port",
    type=int,
    default=9092,
    show_default=True,
    help="Client (PLAINTEXT) port of the broker on 127.0.0.1.",
)
_data_dir = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Broker data directory [default: $SHOAL_KAFKA_DATA_DIR, else <repo>/.cache/kafka/<port>].",
)


@click.group()
def kafka() -> None:
    """Run a single-node Kafka broker (KRaft) on 127.0.0.1 for development and tests.

    The broker jars are fetched once with Maven (ops/kafka/pom.xml; needs a JDK 17+ and
    Maven), each broker keeps its config, storage, pid file and logs in its data directory,
    and brokers on different ports run side by side.
    """


@kafka.command()
@_port
@click.option(
    "--controller-port", type=int, default=None, help="KRaft controller port [default: --port + 1]."
)
@_data_dir
@click.option(
    "--timeout",
    type=float,
    default=90.0,
    show_default=True,
    help="Seconds to wait for the broker to answer.",
)
@click.option(
    "--foreground", is_flag=True, help="Run the broker in this process instead of detaching it."
)
def up(
    port: int, controller_port: int | None, data_dir: Path | None, timeout: float, foreground: bool
) -> None:
    """Start a broker and wait until it answers (does nothing if it already runs)."""
    with _broker_ops() as ops:
        ops.up(
            port,
            controller_port=controller_port,
            data_dir=data_dir,
            timeout=timeout,
            foreground=foreground,
        )


@kafka.command()
@_port
@_data_dir
@click.option(
    "--timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait after SIGTERM before SIGKILL.",
)
def down(port: int, data_dir: Path | None, timeout: float) -> None:
    """Stop the broker started by `up` on that port or data dir (exit 0 if none runs)."""
    with _broker_ops() as ops:
        ops.down(port, data_dir=data_dir, timeout=timeout)


@kafka.command()
@_port
@_data_dir
def status(port: int, data_dir: Path | None) -> None:
    """Print one line about the broker; exit 0 if it runs and answers, else 1."""
    with _broker_ops() as ops:
        running, line = ops.describe(port, data_dir=data_dir)
    click.echo(line)
    click.get_current_context().exit(0 if running else 1)


@kafka.command()
@_port
@_data_dir
@click.option(
    "-n",
    "--lines",
    type=int,
    default=50,
    show_default=True,
    help="How many of the last lines to print.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
def logs(port: int, data_dir: Path | None, lines: int, follow: bool) -> None:
    """Print the end of the broker's log (server.log in its data dir)."""
    with _broker_ops() as ops:
        code = ops.show_logs(port, data_dir=data_dir, lines=lines, follow=follow)
    click.get_current_context().exit(code)

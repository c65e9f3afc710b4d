"""``clusterctl kafka``: run the development/CI Kafka broker from the CLI.

The broker manager is :mod:`shoal.cluster.devbroker.broker`, a standard-library-only module
that ships in the package (so ``clusterctl kafka`` works from an installed wheel) and that the
ops/ scripts also run as a script before shoal is installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

from shoal.cluster.devbroker import broker


class BrokerOpsFailed(click.ClickException):
    """Exit code 2, as ops/kafka/kafka exits on the same errors."""

    exit_code = 2


@contextlib.contextmanager
def _broker_ops() -> Iterator[None]:
    """The broker tool's BrokerOpsError (one line: cause and fix) becomes a CLI error."""
    try:
        yield
    except broker.BrokerOpsError as exc:
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
    help="Broker data directory [default: $SHOAL_KAFKA_DATA_DIR, else ~/.cache/shoal/kafka/PORT].",
)


@click.group()
def kafka() -> None:
    """Run a single-node Kafka broker (KRaft) on 127.0.0.1 for development and tests.

    The broker jars are fetched once with Maven (the pom.xml shipped with shoal; needs a JDK 17+ and
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
    with _broker_ops():
        broker.up(
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
    with _broker_ops():
        broker.down(port, data_dir=data_dir, timeout=timeout)


@kafka.command()
@_port
@_data_dir
def status(port: int, data_dir: Path | None) -> None:
    """Print one line about the broker; exit 0 if it runs and answers, else 1."""
    with _broker_ops():
        running, line = broker.describe(port, data_dir=data_dir)
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
    with _broker_ops():
        code = broker.show_logs(port, data_dir=data_dir, lines=lines, follow=follow)
    click.get_current_context().exit(code)

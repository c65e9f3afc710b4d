"""Faust's signals (receivers called as ``receiver(app, ..., signal=...)``) and commands
(``@app.command`` with options and arguments, run by click), without Kafka."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

import shoal
from shoal.cli import AppCommand, argument, option
from shoal.runtime.rebalances import Change
from shoal.types import TopicPartition


def app() -> shoal.App:
    return shoal.App("commands-test", broker="kafka://127.0.0.1:1")  # never reached


async def test_rebalance_signals_reach_plain_and_async_receivers_in_order() -> None:
    the_app = app()
    heard: list[Any] = []

    @the_app.on_partitions_revoked.connect
    def revoked(sender: Any, revoked: set[TopicPartition], **kwargs: Any) -> None:
        heard.append(("revoked", sender, revoked, kwargs["signal"].name))

    @the_app.on_partitions_assigned.connect()
    async def assigned(sender: Any, assigned: set[TopicPartition], **kwargs: Any) -> None:
        heard.append(("assigned", {tp.partition for tp in assigned}))

    @the_app.on_rebalance_complete.connect
    async def complete(sender: Any, **kwargs: Any) -> None:
        heard.append(("complete", the_app.rebalancing))

    rebalances = the_app.runtime.rebalances
    rebalances.revoked([("t", 0)])
    assert the_app.rebalancing
    rebalances.assigned([("t", 1), ("t", 2)])
    assert not the_app.rebalancing
    assert rebalances.listener is not None
    await rebalances.listener(Change.REVOKED, [("t", 0)])
    await rebalances.listener(Change.ASSIGNED, [("t", 1), ("t", 2)])
    assert heard == [
        ("revoked", the_app, {TopicPartition("t", 0)}, "on_partitions_revoked"),
        ("assigned", {1, 2}),
        ("complete", False),
    ]


def test_a_command_gets_its_options_and_arguments_by_name() -> None:
    the_app = app()
    ran: list[Any] = []

    @the_app.command(argument("name"), option("--times", type=int, default=1, help="How many."))
    async def say_hello(self: AppCommand, name: str, times: int) -> None:
        """Say hello."""
        ran.append((self.app, name, times))
        self.say(f"hello {name} x{times}")

    assert set(the_app.commands) == {"say-hello"}  # Faust's names: dashes for underscores
    command = the_app.commands["say-hello"].as_click_command(lambda: the_app)
    result = CliRunner().invoke(command, ["Ann", "--times", "3"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello Ann x3\n"
    assert ran == [(the_app, "Ann", 3)]
    helped = CliRunner().invoke(command, ["--help"])
    assert "Say hello." in helped.output and "[default: 1]" in helped.output


def test_a_command_that_raises_exits_1_and_one_without_parameters_runs_too() -> None:
    the_app = app()

    @the_app.command()
    async def fails() -> None:
        raise RuntimeError("nope")

    @the_app.command()
    async def quiet() -> None:
        click.echo("quiet ran")

    failed = CliRunner().invoke(the_app.commands["fails"].as_click_command(lambda: the_app))
    assert failed.exit_code == 1 and "Error: nope" in failed.output
    ran = CliRunner().invoke(the_app.commands["quiet"].as_click_command(lambda: the_app))
    assert ran.exit_code == 0 and ran.output == "quiet ran\n"


def test_a_command_must_be_an_async_function() -> None:
    with pytest.raises(TypeError, match="must be an async function"):
        app().command()(lambda: None)  # type: ignore[arg-type]

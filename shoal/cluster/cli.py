"""``clusterctl``: run workers and supervisors, see and scale them; the commands that talk to a
running cluster are in :mod:`shoal.cluster.talk`, the development broker's in
:mod:`shoal.cluster.kafka_cmd`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import Any

import click

from shoal.cluster.context import CliContext, setup_logging
from shoal.cluster.kafka_cmd import kafka
from shoal.cluster.talk import agents, ask, clean, send
from shoal.exceptions import ShoalError
from shoal.exitcodes import ExitCode


class AppGroup(click.Group):
    """clusterctl's commands, and those of the app (``@app.command``) when one is given."""

    def _app_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        # Before the group's callback ran (--help), only its parsed options are known.
        obj = ctx.find_object(CliContext) or CliContext(ctx.params.get("app_spec"))
        if obj.preset is None and not obj.app_spec:
            return {}
        commands = getattr(obj.app(), "commands", {})
        return {name: command.as_click_command(obj.app) for name, command in commands.items()}

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        # --help without a loadable app: the built-in commands only.
        with contextlib.suppress(click.ClickException):
            names |= set(self._app_commands(ctx))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._app_commands(ctx).get(cmd_name)


@click.group(cls=AppGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-A",
    "--app",
    "app_spec",
    envvar="SHOAL_APP",
    metavar="MODULE[:ATTR]",
    help="The app to run, as an importable module (its 'app' attribute) or module:attribute.",
)
@click.option(
    "-l",
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
    help="Log level.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as text or one JSON object each (default: the app's log_format).",
)
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None, loglevel: str, log_format: str | None) -> None:
    """Run and operate shoal apps: a cluster of workers, requests to its agents, its status,
    and a development Kafka broker.

    \b
    Examples:
      clusterctl kafka up                      # a local Kafka broker on 127.0.0.1:9092
      clusterctl -A examples.agent up -w 4     # a supervisor and 4 worker processes
      clusterctl -A examples.agent status      # what they are doing (top: live)
      clusterctl -A examples.agent worker      # run the app's agents in one process
      clusterctl -A examples.agent send adding '{"a": 4, "b": 4}'

    With -A, the app's own commands (@app.command) are commands here too.
    """
    # Until a command knows its app: lines say which command (the supervisor's, "up", say
    # "supervisor").
    command = ctx.invoked_subcommand
    setup_logging(loglevel, log_format or "text", role=None if command == "up" else command)
    if ctx.obj is None:
        ctx.obj = CliContext(app_spec)
    ctx.obj.log_level = loglevel
    ctx.obj.log_format = log_format


@cli.command()
@click.option("-l", "--loglevel", default=None, help="Log level (overrides the global -l).")
@click.pass_obj
def worker(obj: CliContext, loglevel: str | None) -> None:
    """Run the app's agents and tasks in one worker process until SIGINT/SIGTERM.

    The worker joins the app's consumer group and processes the partitions the group gives
    it. It exits 0 after a graceful stop, 1 if an agent crashed it, and 3 if the app cannot
    be imported or started, or no broker answered within broker_connect_timeout.
    """
    from shoal.worker import run_worker

    try:
        app = obj.app()
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(ExitCode.BOOT_ERROR)
    obj.setup_logging_for(app, loglevel, role="worker")
    try:
        code = run_worker(app)
    except ShoalError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(ExitCode.BOOT_ERROR)
    sys.exit(code)


@cli.command()
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes on this host (default: the app's 'workers' setting).",
)
@click.pass_obj
def up(obj: CliContext, workers: int | None) -> None:
    """Run a supervisor with N worker processes of the app on this host.

    The supervisor is this host's member of the app's consumer group; it hands partition N
    of every topic to worker N % workers, commits their offsets, replaces a worker that
    dies (same partitions, from the last committed offsets) or stalls, and stops
    everything gracefully on SIGTERM/SIGINT (a second SIGINT exits at once). A worker that
    keeps crashing is restarted with a growing delay (up to worker_restart_backoff_max);
    its siblings run on. A broker outage is waited out. Run it on more hosts (or twice on
    one machine, each with its own web_port) to split the partitions between
    supervisors. On http://web_bind:web_port (127.0.0.1:6066): /metrics, /status (JSON),
    /livez, /readyz (ready once every worker runs and none recovers its tables), /router,
    /table/NAME/KEY and the app's pages, each request answered by the worker that owns
    its key, on this host or another (docs/web.md).

    \b
    Exit codes:
      0  a graceful stop
      1  a stop that was not clean (a worker had to be killed), or a supervisor failure
      3  the app cannot boot: it cannot be imported, a setting is wrong, or no broker
         answered within broker_connect_timeout
    """
    from shoal.supervisor.arbiter import Supervisor
    from shoal.worker.runner import install_event_loop_policy

    spec = obj.app_spec
    if not spec:
        raise click.UsageError("which app? pass -A/--app module[:attribute]")
    try:
        app = obj.app()
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(ExitCode.BOOT_ERROR)
    count = workers or app.conf.workers
    fmt = obj.setup_logging_for(app)
    install_event_loop_policy()
    try:
        supervisor = Supervisor(app, spec, count, log_level=obj.log_level, log_format=fmt)
    except ShoalError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(ExitCode.BOOT_ERROR)
    sys.exit(asyncio.run(supervisor.run()))


@cli.command()
@click.pass_obj
def status(obj: CliContext) -> None:
    """Show this host's supervisor and its workers: pid, uptime, restarts, memory, CPU,
    events/s, lag and partitions (read from the file the supervisor rewrites every tick)."""
    from shoal.supervisor.status import read_status, render_table, status_path

    app = obj.app()
    try:
        click.echo(render_table(read_status(status_path(app.id))))
    except ShoalError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds.")
@click.option("--count", type=int, default=0, help="Stop after this many screens (0: Ctrl-C).")
@click.pass_obj
def top(obj: CliContext, interval: float, count: int) -> None:
    """A live view of `clusterctl status`, redrawn every --interval seconds."""
    import time

    from shoal.supervisor.status import read_status, render_table, status_path

    app = obj.app()
    path = status_path(app.id)
    shown = 0
    try:
        while not count or shown < count:
            try:
                screen = render_table(read_status(path))
            except ShoalError as exc:
                screen = f"{exc}"
            click.clear()
            click.echo(f"{screen}\n\n(every {interval:g} s; Ctrl-C quits)")
            shown += 1
            if not count or shown < count:
                time.sleep(interval)  # the refresh period of the view
    except KeyboardInterrupt:
        pass


@cli.command()
@click.argument("change", metavar="+N|-N|N")
@click.pass_obj
def scale(obj: CliContext, change: str) -> None:
    """Add or remove worker processes of this host's running supervisor.

    +N adds N workers, -N removes N, a plain N sets the count. Partitions move between the
    workers of this host only (drain, commit, hand over); the consumer group is not
    rebalanced. The request goes over the supervisor's control socket, in this user's
    private runtime directory. (Sending the supervisor SIGTTIN or SIGTTOU adds or removes
    one worker too.)
    """
    from shoal.supervisor import control
    from shoal.supervisor.rundir import app_dir

    app = obj.app()
    try:
        number = int(change)
    except ValueError:
        raise click.BadParameter("expected +N, -N or N", param_hint="CHANGE") from None
    relative = change[0] in "+-"
    try:
        path = control.socket_path(app_dir(app.id))
        answer = asyncio.run(
            control.request_scale(path, delta=number)
            if relative
            else control.request_scale(path, workers=number)
        )
    except ShoalError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"asked supervisor {answer.pid} to go from {answer.before} to {answer.after} workers"
    )


for command in (send, ask, agents, clean, kafka):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="clusterctl")


def main_for_app(app: Any) -> None:
    """The same commands, with the app given (``app.main()`` in a module)."""
    cli(prog_name=os.path.basename(sys.argv[0]), obj=CliContext(None, preset=app))


if __name__ == "__main__":
    main()

"""``clusterctl``: run workers, send values, manage the development Kafka broker."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import click
import msgspec

from shoal import logs
from shoal.cluster.kafka_cmd import kafka
from shoal.exceptions import ShoalError
from shoal.exitcodes import ExitCode
from shoal.worker.loader import load_app as _load_app


def setup_logging(level: str, fmt: str = "text", app_id: str = "-") -> None:
    logs.setup_logging(level, fmt, app_id=app_id, worker=None)


def load_app(spec: str) -> Any:
    """The App named by ``spec``; a failure becomes a one-line click error."""
    try:
        return _load_app(spec)
    except ShoalError as exc:
        raise click.ClickException(str(exc)) from exc


class _Context:
    def __init__(self, app_spec: str | None, preset: Any = None) -> None:
        self.app_spec = app_spec
        self.preset = preset
        self.log_level = "info"
        self.log_format: str | None = None

    def setup_logging_for(self, app: Any, level: str | None = None) -> str:
        """Log lines that name the app, in the format asked for or the app's setting."""
        fmt = self.log_format or app.conf.log_format
        setup_logging(level or self.log_level, fmt, app.id)
        return str(fmt)

    def app(self) -> Any:
        if self.preset is not None:
            return self.preset
        if not self.app_spec:
            raise click.UsageError("which app? pass -A/--app module[:attribute]")
        return load_app(self.app_spec)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    """
    setup_logging(loglevel, log_format or "text")
    if ctx.obj is None:
        ctx.obj = _Context(app_spec)
    ctx.obj.log_level = loglevel
    ctx.obj.log_format = log_format


@cli.command()
@click.option("-l", "--loglevel", default=None, help="Log level (overrides the global -l).")
@click.pass_obj
def worker(obj: _Context, loglevel: str | None) -> None:
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
    obj.setup_logging_for(app, loglevel)
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
def up(obj: _Context, workers: int | None) -> None:
    """Run a supervisor with N worker processes of the app on this host.

    The supervisor is this host's member of the app's consumer group; it hands partition N
    of every topic to worker N % workers, commits their offsets, replaces a worker that
    dies (same partitions, from the last committed offsets) or stalls, and stops
    everything gracefully on SIGTERM/SIGINT (a second SIGINT exits at once). A worker that
    keeps crashing is restarted with a growing delay (up to worker_restart_backoff_max);
    its siblings run on. A broker outage is waited out. Run it on more hosts (or twice on
    one machine, each with its own metrics_port) to split the partitions between
    supervisors. Metrics: http://metrics_host:metrics_port/metrics.

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
def status(obj: _Context) -> None:
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
def top(obj: _Context, interval: float, count: int) -> None:
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
def scale(obj: _Context, change: str) -> None:
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


@cli.command()
@click.argument("target")
@click.argument("value")
@click.option("--key", default=None, help="Message key (a string).")
@click.option("--partition", type=int, default=None, help="Send to this partition.")
@click.pass_obj
def send(obj: _Context, target: str, value: str, key: str | None, partition: int | None) -> None:
    """Send VALUE (JSON) to TARGET, an agent name or a topic name, and print where it went.

    An agent can be named by its full name (examples.agent.adding) or its function name
    (adding). A value for a Record-typed topic is validated against the Record first.
    """
    app = obj.app()
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="VALUE") from exc
    meta = asyncio.run(_send(app, target, data, key, partition))
    click.echo(f"sent to {meta.topic}[{meta.partition}]@{meta.offset}")


async def _send(app: Any, target: str, data: Any, key: str | None, partition: int | None) -> Any:
    from shoal.processing.agents import Agent

    agents = [a for n, a in app.agents.items() if target in (n, n.rsplit(".", 1)[-1])]
    channel: Any = agents[0] if len(agents) == 1 else app.topic(target)
    topic = channel.channel if isinstance(channel, Agent) else channel
    if topic.value_type is not None:
        try:
            data = msgspec.convert(data, topic.value_type, strict=False)
        except msgspec.ValidationError as exc:
            raise click.BadParameter(
                f"does not fit {topic.value_type.__name__}: {exc}", param_hint="VALUE"
            ) from exc
    try:
        future = await channel.send(key=key, value=data, partition=partition)
        return await asyncio.wait_for(future, 30)
    finally:
        await app.stop()


def _target(obj: _Context, app_id: str | None, broker: str | None) -> tuple[str, str]:
    """App id and broker: from --id/--broker, else from the -A app's settings."""
    if app_id:
        from shoal.config import load_settings

        conf = load_settings({"id": app_id, "broker": broker})
        return app_id, conf.bootstrap_servers
    app = obj.app()
    if broker:
        from shoal.config import parse_broker

        return app.id, ",".join(parse_broker(broker))
    return str(app.id), str(app.conf.bootstrap_servers)


_id_option = click.option("--id", "app_id", help="The app id (instead of importing -A APP).")
_broker_option = click.option("--broker", help="Broker URL(s), e.g. kafka://localhost:9092.")


@cli.command()
@click.argument("agent")
@click.argument("value")
@click.option("--key", default=None, help="Message key (a string).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait.")
@_id_option
@_broker_option
@click.pass_obj
def ask(
    obj: _Context,
    agent: str,
    value: str,
    key: str | None,
    timeout: float,
    app_id: str | None,
    broker: str | None,
) -> None:
    """Send VALUE (JSON) to AGENT and print its reply as JSON.

    Uses the bundled client: only the app id and broker are needed (--id/--broker, or
    -A APP); the agent's topic and serializers come from what the running workers publish.
    --timeout bounds the whole command: an agent not published yet (a cluster that is
    starting) is waited for within it, and a broker that does not answer is named.
    """
    from shoal.cluster.client import Client

    target_id, bootstrap = _target(obj, app_id, broker)
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="VALUE") from exc

    async def run() -> Any:
        client = Client(target_id, broker=bootstrap)
        try:
            return await client.ask(agent, data, key=key, timeout=timeout)
        finally:
            # --timeout bounds the command: cleaning up gets a moment more, not another wait.
            await client.close(timeout=1.0)

    try:
        reply = asyncio.run(run())
    except ShoalError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(reply, default=str))


@cli.command()
@_id_option
@_broker_option
@click.pass_obj
def agents(obj: _Context, app_id: str | None, broker: str | None) -> None:
    """List the app's agents (name, topic, concurrency) and, from this host's supervisor,
    which workers own their partitions."""
    from shoal.kafka.metadata import read_metadata
    from shoal.supervisor.status import read_status, status_path

    target_id, bootstrap = _target(obj, app_id, broker)
    found = read_metadata(bootstrap, target_id).agents
    if not found:
        raise click.ClickException(f"app {target_id!r} has published no agents: is it running?")
    try:
        workers = read_status(status_path(target_id)).workers
    except ShoalError:
        workers = []
    rows = [("AGENT", "TOPIC", "CONCURRENCY", "WORKERS (this host)")]
    for info in sorted(found.values(), key=lambda i: i.name):
        owners = [
            str(w.index)
            for w in workers
            if any(p.startswith(info.topic + "[") for p in w.partitions)
        ]
        rows.append((info.name, info.topic, str(info.concurrency), ",".join(owners) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


@cli.command()
@click.option(
    "--older-than",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds since a reply topic's owner last said it is alive.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@_id_option
@_broker_option
@click.pass_obj
def clean(
    obj: _Context, older_than: float, dry_run: bool, app_id: str | None, broker: str | None
) -> None:
    """Delete reply topics left by askers and clients that died without closing.

    A live process rewrites its reply topic's liveness record every minute; a topic whose
    record is older than --older-than (or missing) is deleted.
    """
    import time

    from shoal.kafka.admin import admin_client
    from shoal.kafka.metadata import read_metadata, reply_topic_prefix

    target_id, bootstrap = _target(obj, app_id, broker)
    admin = admin_client(bootstrap)
    prefix = reply_topic_prefix(target_id)
    topics = sorted(t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix))
    alive = read_metadata(bootstrap, target_id).reply_alive_at
    now = time.time()
    stale = [t for t in topics if now - alive.get(t, 0.0) > older_than]
    for topic in stale:
        click.echo(f"{'would delete' if dry_run else 'deleting'} {topic}")
    if stale and not dry_run:
        for topic, future in admin.delete_topics(stale, operation_timeout=30).items():
            try:
                future.result()
            except Exception as exc:
                click.echo(f"could not delete {topic}: {exc}", err=True)
    click.echo(f"{len(stale)} of {len(topics)} reply topics stale")


cli.add_command(kafka)


def main() -> None:
    cli(prog_name="clusterctl")


def main_for_app(app: Any) -> None:
    """The same commands, with the app given (``app.main()`` in a module)."""
    cli(prog_name=os.path.basename(sys.argv[0]), obj=_Context(None, preset=app))


if __name__ == "__main__":
    main()

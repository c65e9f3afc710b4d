"""``clusterctl`` commands that talk to a running cluster: send, ask, agents, clean."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click
import msgspec

from shoal.cluster.context import CliContext
from shoal.exceptions import ShoalError


@click.command()
@click.argument("target")
@click.argument("value")
@click.option("--key", default=None, help="Message key (a string).")
@click.option("--partition", type=int, default=None, help="Send to this partition.")
@click.pass_obj
def send(obj: CliContext, target: str, value: str, key: str | None, partition: int | None) -> None:
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


def _target(obj: CliContext, app_id: str | None, broker: str | None) -> tuple[str, str]:
    """App id and broker: from --id/--broker, else from the -A app's settings."""
    if app_id:
        from shoal.config import load_settings

        conf = load_settings({"id": app_id}, flags={"broker": broker})
        return app_id, conf.bootstrap_servers
    app = obj.app()
    if broker:
        from shoal.config import parse_broker

        return app.id, ",".join(parse_broker(broker))
    return str(app.id), str(app.conf.bootstrap_servers)


_id_option = click.option("--id", "app_id", help="The app id (instead of importing -A APP).")
_broker_option = click.option("--broker", help="Broker URL(s), e.g. kafka://localhost:9092.")


@click.command()
@click.argument("agent")
@click.argument("value")
@click.option("--key", default=None, help="Message key (a string).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait.")
@_id_option
@_broker_option
@click.pass_obj
def ask(
    obj: CliContext,
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


@click.command()
@_id_option
@_broker_option
@click.pass_obj
def agents(obj: CliContext, app_id: str | None, broker: str | None) -> None:
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


@click.command()
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
    obj: CliContext, older_than: float, dry_run: bool, app_id: str | None, broker: str | None
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

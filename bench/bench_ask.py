"""Request/reply through Kafka: ask latency at a fixed rate, and join throughput, with the
asker and the agent in different processes.

Run: ``.venv/bin/python bench/bench_ask.py --broker 127.0.0.1:29092``.

For each variant (``default``: shoal's settings; ``linger0``: ``producer_linger_ms=0`` for the
client and the workers; plus one per ``--extra``) the script starts ``python -m
shoal.cluster.cli -A bench.ask_app up --workers W`` as a subprocess in its own session, with its
own app id (settings for the workers go in ``SHOAL_*`` variables), waits for the supervisor's
"this host owns" and for the agents in the app's metadata, and then, from this process, with
``shoal.cluster.client.Client``:

1. times the first ``ask`` of a fresh client: from ``Client(...)`` to the reply, so it
   includes reading the app's metadata and creating the client's reply topic;
2. asks at a fixed rate (open loop: the sends are scheduled at fixed times, each ask is a task
   of its own, so a slow reply does not delay the next send) for ``--seconds``, after a warm-up
   second, and measures each round trip from the ``ask`` call to its reply. The agent asked
   (``stamped``) yields ``[value * 2, time.time()]``, so each round trip splits into a request
   leg (ask call -> agent has it) and a reply leg (agent -> asker has the reply), by wall clock
   on the same machine;
3. ``join``s ``--join`` values with the ``double`` agent: values/s (and checks the replies).

Then SIGTERM; the supervisor must exit 0. The app's topics are deleted at the end.

This is a plain script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from bench.common import ROOT, Cluster, delete_topics
from bench.pacing import Latencies, paced_asks, quantile
from shoal.cluster.client import Client
from shoal.kafka.metadata import read_metadata
from shoal.worker.runner import install_event_loop_policy

BROKER_ENV = "SHOAL_BENCH_BROKER"
APP = "bench.ask_app"
AGENTS = {"double", "stamped"}


@dataclass
class Result(Latencies):
    """One variant's figures; the paced asks' latencies are the fields of ``Latencies``."""

    variant: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    first_ask: float = 0.0  # s, Client(...) -> first reply
    second_ask: float = 0.0  # s, the next ask of the same client
    join_values: int = 0
    join_seconds: float = 0.0
    exit_code: int | None = None

    @property
    def join_rate(self) -> float:
        return self.join_values / self.join_seconds if self.join_seconds else 0.0


# -- the cluster ------------------------------------------------------------------------------


def cluster_env(broker: str, app_id: str, partitions: int, settings: dict[str, str]) -> dict:
    # The workers get the variant's settings only: pass no other SHOAL_* variable on.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(
        SHOAL_BROKER=f"kafka://{broker}",
        SHOAL_WEB_PORT="0",  # a free port: another cluster may hold the default one
        BENCH_APP_ID=app_id,
        BENCH_PARTITIONS=str(partitions),
        PYTHONPATH=str(ROOT),
    )
    for name, value in settings.items():
        env[f"SHOAL_{name.upper()}"] = value
    return env


def wait_for_agents(broker: str, app_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        published = {name.rsplit(".", 1)[-1] for name in read_metadata(broker, app_id).agents}
        if published >= AGENTS:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"agents {sorted(AGENTS)} not published after {timeout:g} s")
        time.sleep(0.1)  # a poll interval, bounded by the deadline above


# -- the client side --------------------------------------------------------------------------


async def client_side(args: argparse.Namespace, app_id: str, result: Result) -> None:
    settings: dict[str, Any] = dict(result.settings)
    # The cluster answers asks before the clock starts (a just-started worker's partitions
    # begin fetching up to half a second after they are assigned): what is timed is a fresh
    # client's first ask to a running cluster, as a script makes it.
    async with Client(app_id, broker=f"kafka://{args.broker}", **settings) as warm:
        assert await warm.ask("double", 0, timeout=args.ask_timeout) == 0
    started = time.perf_counter()
    client = Client(app_id, broker=f"kafka://{args.broker}", **settings)
    try:
        assert await client.ask("double", 21, timeout=args.ask_timeout) == 42
        result.first_ask = time.perf_counter() - started
        started = time.perf_counter()
        assert await client.ask("double", 1, timeout=args.ask_timeout) == 2
        result.second_ask = time.perf_counter() - started
        print(
            f"  first ask of a fresh client: {result.first_ask * 1000:.1f} ms "
            f"(the next one: {result.second_ask * 1000:.1f} ms)",
            flush=True,
        )

        def stamped(i: int) -> Awaitable[Any]:
            return client.ask("stamped", i, timeout=args.ask_timeout)

        # A warm-up second at the same rate (not recorded), then the measured run.
        await paced_asks(stamped, args.rate, max(1, int(args.rate)), None)
        await paced_asks(stamped, args.rate, int(args.rate * args.seconds), result)
        print(
            f"  {len(result.rtts)} asks at {args.rate:g}/s: p50 "
            f"{quantile(result.rtts, 0.5) * 1000:.2f} ms, p99 "
            f"{quantile(result.rtts, 0.99) * 1000:.2f} ms",
            flush=True,
        )
        if args.join < 1:
            return
        values = list(range(args.join))
        started = time.perf_counter()
        replies = await client.join("double", values, timeout=max(args.ask_timeout, 60.0))
        result.join_seconds = time.perf_counter() - started
        assert replies == [v * 2 for v in values], "join replies out of order or wrong"
        result.join_values = len(values)
        print(f"  join of {args.join:,} values: {result.join_rate:,.0f} values/s", flush=True)
    finally:
        await client.close()


def run_variant(args: argparse.Namespace, name: str, settings: dict[str, str]) -> Result:
    app_id = f"bench-ask-{uuid.uuid4().hex[:8]}-{name.replace('+', '-').replace('=', '')}"
    shown = ", ".join(f"{k}={v}" for k, v in settings.items()) or "shoal's defaults"
    print(f"\n{name}: {shown} (app {app_id})", flush=True)
    result = Result(variant=name, settings=settings)
    env = cluster_env(args.broker, app_id, args.partitions, settings)
    cluster = Cluster(APP, args.workers, env)
    try:
        cluster.wait_ready(120.0)
        wait_for_agents(args.broker, app_id, 60.0)
        asyncio.run(client_side(args, app_id, result))
    finally:
        result.exit_code = cluster.stop()
        for line in cluster.problems()[:10]:
            print(f"  cluster: {line}")
        delete_topics(args.broker, prefix=app_id)
    if result.exit_code != 0:
        print(f"  clusterctl exited with {result.exit_code}:\n{cluster.log()}")
    return result


# -- output -----------------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value * 1000:.2f}"


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\nask at {args.rate:g}/s for {args.seconds:g} s (open loop), join of {args.join:,} "
        f"values, {args.workers} worker(s), {args.partitions} partitions; times in ms\n"
    )
    header = (
        "| variant | first ask | p50 | p99 | p99.9 | max | count | timeouts "
        "| request leg p50 / p99 | reply leg p50 / p99 | join values/s |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for r in results:
        print(
            f"| {r.variant} | {ms(r.first_ask)} | {ms(quantile(r.rtts, 0.5))} "
            f"| {ms(quantile(r.rtts, 0.99))} | {ms(quantile(r.rtts, 0.999))} "
            f"| {ms(max(r.rtts, default=float('nan')))} | {len(r.rtts)} | {r.timeouts} "
            f"| {ms(quantile(r.request_legs, 0.5))} / {ms(quantile(r.request_legs, 0.99))} "
            f"| {ms(quantile(r.reply_legs, 0.5))} / {ms(quantile(r.reply_legs, 0.99))} "
            f"| {r.join_rate:,.0f} |"
        )
    print()
    for r in results:
        notes = [f"latest send {ms(r.late)} ms after its scheduled time"]
        if r.errors:
            notes.append(f"{r.errors} asks failed")
        notes.append(f"clusterctl exit code {r.exit_code}")
        print(f"{r.variant}: " + "; ".join(notes))
    print(
        "\nfirst ask: Client(...) to the first reply (metadata read, reply topic created). "
        "p50...max: round trip from the ask call to its reply. Legs: wall clock of this "
        "process and the agent's worker (same machine)."
    )


# -- main -------------------------------------------------------------------------------------


def parse_setting(text: str) -> dict[str, str]:
    settings = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--extra wants SETTING=VALUE[,SETTING=VALUE], not {text!r}")
        settings[name.strip()] = value.strip()
    return settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--broker",
        default=os.environ.get(BROKER_ENV, "127.0.0.1:9092"),
        help=f"bootstrap servers (${BROKER_ENV}, else 127.0.0.1:9092)",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="asks per second (200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of asks (10)")
    parser.add_argument(
        "--join", type=int, default=10000, help="values to join, 0 for none (10000)"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per agent (4)")
    parser.add_argument("--ask-timeout", type=float, default=10.0, help="per ask, seconds (10)")
    parser.add_argument(
        "--variants",
        default="default,linger0",
        help="comma-separated, which of default (shoal's settings) and linger0 "
        "(producer_linger_ms=0) to run (default,linger0)",
    )
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="SETTING=VALUE[,...]",
        help="one more variant: linger0 plus these shoal settings, for the client and the "
        "workers (repeatable), e.g. consumer_max_batch=1",
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.join < 0 or args.workers < 1:
        parser.error("--rate, --seconds and --workers must be positive, --join >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    install_event_loop_policy()
    linger0 = {"producer_linger_ms": "0"}
    variants: list[tuple[str, dict[str, str]]] = []
    for name in args.variants.split(","):
        if name == "default":
            variants.append(("default", {}))
        elif name == "linger0":
            variants.append(("linger0", linger0))
        elif name:
            raise SystemExit(f"unknown variant {name!r} (default, linger0)")
    for text in args.extra:
        extra = parse_setting(text)
        label = "linger0+" + "+".join(f"{k}={v}" for k, v in extra.items())
        variants.append((label, {**linger0, **extra}))
    print(f"broker {args.broker}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    results = [run_variant(args, *variant) for variant in variants]
    print(f"\nload average afterwards {os.getloadavg()[0]:.1f}")
    print_table(results, args)


if __name__ == "__main__":
    main()

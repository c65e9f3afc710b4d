"""The seed's ``adding`` agent against a bare confluent-kafka loop, same run, same topics.

Run: ``.venv/bin/python bench/bench_adding.py --broker 127.0.0.1:29092 --events 200000``.

Both variants read the same pre-produced input topic (each with its own consumer group, from
the earliest offset), add ``a + b``, produce the sum to their own output topic and commit with
the same at-least-once discipline: offsets are committed only after every output produced
before them is acknowledged by the broker. Both use shoal's producer settings (``acks=all``,
idempotence, ``linger.ms=5``). Each run's output topic is counted afterwards and must hold
exactly ``--events`` messages. The topics made here are deleted at the end (``--keep-topics``
keeps them). A plain script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import pstats
import sys
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import confluent_kafka
from confluent_kafka import TopicPartition

import shoal
from bench.common import create_topics, delete_topics, preproduce
from bench.measure import per_event, thread_cpu
from shoal import metrics
from shoal.worker.runner import install_event_loop_policy

BROKER_ENV = "SHOAL_BENCH_BROKER"
POLL = 0.002  # how often the shoal run checks its progress (s); bounds the timing error


class Add(shoal.Record):
    a: int
    b: int


@dataclass
class Result:
    """One timed run of a variant (seconds, from ``time.perf_counter``)."""

    name: str
    events: int
    started: float  # consumer created (bare) / before app.start() (shoal)
    first: float  # first message received
    done: float  # every input event processed
    committed: float  # final commit made
    cpu: float  # CPU seconds of this process (all threads) from start to the final commit
    threads: str = ""  # the same per thread and event (measure.per_event)

    @property
    def rate(self) -> float:
        """Events/s from the first message received to the final commit."""
        return self.events / (self.committed - self.first)

    @property
    def rate_from_start(self) -> float:
        return self.events / (self.committed - self.started)

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per event: steadier than events/s on a machine with other load."""
        return self.cpu / self.events * 1e6


# -- setup ------------------------------------------------------------------------------------


def end_offsets(broker: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": broker, "group.id": f"bench-watermarks-{uuid.uuid4().hex}"}
    )
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def count_messages(broker: str, topic: str, partitions: int) -> int:
    return sum(end_offsets(broker, topic, partitions).values())


def producer_config(broker: str) -> dict[str, Any]:
    """What shoal gives an app's producer (``producer_config`` in shoal/kafka/clients.py)."""
    return {
        "bootstrap.servers": broker,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "partitioner": "murmur2_random",
    }


# -- bare confluent-kafka ---------------------------------------------------------------------


def run_bare(broker: str, source: str, sink: str, events: int, commit_interval: float) -> Result:
    started = time.perf_counter()
    cpu, before = time.process_time(), thread_cpu()
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"bench-bare-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    producer = confluent_kafka.Producer(producer_config(broker))
    failed = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    def commit(positions: dict[int, int]) -> None:
        if producer.flush(60):
            raise SystemExit("bare: outputs not delivered within 60 s")
        if failed:
            raise SystemExit(f"bare: {failed} outputs failed")
        offsets = [TopicPartition(source, p, o) for p, o in positions.items()]
        consumer.commit(offsets=offsets, asynchronous=False)

    consumer.subscribe([source])
    processed = 0
    positions: dict[int, int] = {}
    first = 0.0
    next_commit = 0.0
    try:
        while processed < events:
            msgs: list[Any] = consumer.consume(1000, 0.1)
            if not msgs:
                continue
            if not first:
                first = time.perf_counter()
                next_commit = first + commit_interval
            for msg in msgs:
                if msg.error() is not None:
                    raise SystemExit(f"bare: consumer error {msg.error()}")
                value = json.loads(msg.value())
                total = value["a"] + value["b"]
                producer.produce(sink, str(total).encode("ascii"), on_delivery=on_delivery)
                positions[msg.partition()] = msg.offset() + 1
            processed += len(msgs)
            producer.poll(0)
            if time.perf_counter() >= next_commit:
                commit(positions)
                next_commit = time.perf_counter() + commit_interval
        done = time.perf_counter()
        commit(positions)
        committed = time.perf_counter()
        cpu, threads = time.process_time() - cpu, per_event(thread_cpu(), before, events)
    finally:
        consumer.close()
    return Result("bare confluent-kafka", events, started, first, done, committed, cpu, threads)


# -- shoal ------------------------------------------------------------------------------------


async def _run_shoal(
    broker: str,
    source: str,
    sink: str,
    events: int,
    partitions: int,
    ends: dict[int, int],
    commit_interval: float,
    commit_every: int | None,
    profiler: cProfile.Profile | None,
    created: list[str],
    with_metrics: bool = False,
) -> Result:
    settings: dict[str, Any] = {}
    if commit_every is not None:
        settings["broker_commit_every"] = commit_every
    app = shoal.App(
        f"bench-adding-{uuid.uuid4().hex[:12]}",
        broker=broker,
        topic_partitions=partitions,
        broker_commit_interval=commit_interval,
        log_level="warning",
        **settings,
    )
    created.append(f"{app.id}-*")  # the app's own topics (dead letters, metadata...)
    # As in a worker of a supervisor: files in the multiprocess directory, or nothing at all.
    metrics.configure(app_id=app.id, worker=0, enabled=with_metrics)
    topic = app.topic(source, value_type=Add)
    output = app.topic(sink)

    @app.agent(topic, sink=[output])
    async def adding(stream: shoal.Stream[Add]) -> Any:
        async for value in stream:
            yield value.a + value.b

    deadline = time.monotonic() + max(120.0, events / 1000)
    if profiler is not None:
        profiler.enable()
    started = time.perf_counter()
    cpu, before, threads = time.process_time(), thread_cpu(), ""
    first = done = 0.0
    try:
        await app.start()
        conductor = app.conductor
        assert conductor is not None
        tps = [(source, p) for p in range(partitions)]

        def reached(attr: str) -> bool:
            trackers = conductor.offsets
            return all(
                (t := trackers.get(tp)) is not None and getattr(t, attr) == ends[tp[1]]
                for tp in tps
            )

        while True:
            if app.crashed is not None:
                raise SystemExit(f"shoal: the app crashed: {app.crashed!r}")
            if time.monotonic() > deadline:
                raise SystemExit(f"shoal: not done in time; stats {dict(conductor.stats)}")
            if not first and conductor.stats["received"]:
                first = time.perf_counter()
            if not done and conductor.stats["received"] >= events and reached("done"):
                done = time.perf_counter()
                # Like the bare loop's final flush + commit: do not wait for the next interval.
                await conductor.commit()
            if done and reached("committed"):
                committed = time.perf_counter()
                cpu, threads = time.process_time() - cpu, per_event(thread_cpu(), before, events)
                break
            await asyncio.sleep(POLL)
    finally:
        await app.stop()
        if profiler is not None:
            profiler.disable()
    name = "shoal + metrics" if with_metrics else "shoal adding agent"
    return Result(name, events, started, first, done, committed, cpu, threads)


def run_shoal(*args: Any) -> Result:
    return asyncio.run(_run_shoal(*args))


# -- main -------------------------------------------------------------------------------------


def print_profile(profiler: cProfile.Profile, title: str) -> None:
    print(f"\n== cProfile of the {title} run (event-loop thread only) ==")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats("cumulative").print_stats(25)
    print("-- same run, top 15 by own time (tottime) --")
    stats.sort_stats("tottime").print_stats(15)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the seed's adding agent against a bare confluent-kafka loop."
    )
    parser.add_argument(
        "--broker",
        default=os.environ.get(BROKER_ENV, "127.0.0.1:9092"),
        help=f"Kafka bootstrap servers (default: ${BROKER_ENV} or 127.0.0.1:9092)",
    )
    parser.add_argument("--events", type=int, default=200_000, help="input messages (200000)")
    parser.add_argument("--partitions", type=int, default=4, help="input partitions (4)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per variant; best is kept")
    parser.add_argument(
        "--keys", choices=("none", "str"), default="none", help="input keys: None or str(i)"
    )
    parser.add_argument(
        "--commit-interval", type=float, default=1.0, help="seconds between commits (1.0)"
    )
    parser.add_argument(
        "--commit-every",
        type=int,
        default=None,
        help="shoal's broker_commit_every (default: shoal's own, 10000)",
    )
    parser.add_argument(
        "--only",
        choices=("all", "bare", "shoal", "shoal-metrics"),
        default="all",
        help="variants to run: the bare loop, shoal without metrics, shoal with metrics "
        "recorded as a supervisor's worker does (prometheus-client multiprocess files)",
    )
    parser.add_argument(
        "--profile",
        choices=("none", "shoal", "bare"),
        default="none",
        help="cProfile one variant (its last round) and print its top functions",
    )
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the topics")
    args = parser.parse_args(argv)
    if args.events < 1 or args.partitions < 1 or args.rounds < 1:
        parser.error("--events, --partitions and --rounds must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # shoal reads SHOAL_* variables as settings and rejects unknown ones: this one is ours.
    os.environ.pop(BROKER_ENV, None)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    loop_kind = install_event_loop_policy()
    n, parts, broker = args.events, args.partitions, args.broker
    run_id = uuid.uuid4().hex[:8]
    source = f"bench-adding-{run_id}-in"
    variants = ["bare", "shoal", "shoal-metrics"] if args.only == "all" else [args.only]
    outputs = {
        (v, r): f"bench-adding-{run_id}-out-{v}-r{r}" for v in variants for r in range(args.rounds)
    }
    # Before prometheus-client is first imported: it picks files or memory at that moment.
    metrics_dir = metrics.setup_multiprocess()
    made: list[str] = []
    print(
        f"broker {broker}; {n:,} events, {parts} partitions, keys {args.keys}; "
        f"{args.rounds} round(s); shoal on {loop_kind}; confluent-kafka "
        f"{confluent_kafka.__version__} / librdkafka {confluent_kafka.libversion()[0]}"
    )
    try:
        print(f"creating topics {source} and {len(outputs)} output topic(s)")
        create_topics(broker, [source, *outputs.values()], parts)
        made = [source, *outputs.values()]
        preproduce(broker, source, n, parts, keyed=args.keys == "str")
        ends = end_offsets(broker, source, parts)
        if sum(ends.values()) != n:
            raise SystemExit(f"input topic holds {sum(ends.values())} messages, not {n}")
        print(f"  end offsets {ends}")
        best: dict[str, Result] = {}
        profiles: dict[str, cProfile.Profile] = {}
        only_profiled: set[str] = set()
        for r in range(args.rounds):
            for v in variants:
                profiled = args.profile == v and r == args.rounds - 1
                profiler = cProfile.Profile() if profiled else None
                print(f"round {r + 1}: {v}{' (profiled)' if profiled else ''} ...", flush=True)
                res = run_variant(v, args, source, outputs[(v, r)], ends, profiler, made)
                if profiler is not None:
                    profiles[v] = profiler
                count = count_messages(broker, outputs[(v, r)], parts)
                status = "OK" if count == n else "WRONG"
                print(
                    f"  {res.rate:>10,.0f} events/s first message -> final commit "
                    f"({res.committed - res.first:.2f} s; processed after "
                    f"{res.done - res.first:.2f} s; {res.committed - res.started:.2f} s from "
                    f"start; {res.cpu_us:.1f} CPU us/event); "
                    f"output {outputs[(v, r)]} holds {count:,} messages: {status}\n"
                    f"      CPU us/event by thread: {res.threads}"
                )
                if count != n:
                    raise SystemExit(f"{v}: output holds {count} messages, expected {n}")
                # A profiled round (always the last) is slower: it counts only when alone.
                if not profiled:
                    if v not in best or res.rate > best[v].rate:
                        best[v] = res
                elif v not in best:
                    best[v] = res
                    only_profiled.add(v)
        print_table(best, args, profiled=only_profiled)
        for v, profiler in profiles.items():
            print_profile(profiler, v)
    finally:
        metrics.teardown_multiprocess(metrics_dir)
        if made and not args.keep_topics:
            delete_topics(broker, [n for n in made if not n.endswith("*")])
            for prefix in (n[:-1] for n in made if n.endswith("*")):  # f"{app id}-*"
                delete_topics(broker, prefix=prefix)


def run_variant(
    variant: str,
    args: argparse.Namespace,
    source: str,
    sink: str,
    ends: dict[int, int],
    profiler: cProfile.Profile | None,
    created: list[str],
) -> Result:
    if variant == "bare":
        run = partial(run_bare, args.broker, source, sink, args.events, args.commit_interval)
        if profiler is None:
            return run()
        profiler.enable()
        try:
            return run()
        finally:
            profiler.disable()
    return run_shoal(
        args.broker,
        source,
        sink,
        args.events,
        args.partitions,
        ends,
        args.commit_interval,
        args.commit_every,
        profiler,
        created,
        variant == "shoal-metrics",
    )


def print_table(best: dict[str, Result], args: argparse.Namespace, profiled: set[str]) -> None:
    print(f"\nbest of {args.rounds} round(s), {args.events:,} events, {args.partitions} partitions")
    print(
        f"{'variant':<22} {'events/s':>10} {'vs bare':>8} {'from start':>11} "
        f"{'CPU us/event':>13} {'vs bare':>8}"
    )
    bare = best.get("bare")
    for v in ("bare", "shoal", "shoal-metrics"):
        res = best.get(v)
        if res is None:
            continue
        ratio = f"{res.rate / bare.rate:>8.0%}" if bare is not None else f"{'-':>8}"
        cpu_ratio = f"{res.cpu_us / bare.cpu_us:>7.2f}x" if bare is not None else f"{'-':>8}"
        note = "  (profiled)" if v in profiled else ""
        print(
            f"{res.name:<22} {res.rate:>10,.0f} {ratio} {res.rate_from_start:>11,.0f} "
            f"{res.cpu_us:>13.1f} {cpu_ratio}{note}"
        )
    off, on = best.get("shoal"), best.get("shoal-metrics")
    if off is not None and on is not None:
        print(
            f"metrics overhead: {1 - on.rate / off.rate:+.1%} events/s, "
            f"{on.cpu_us / off.cpu_us - 1:+.1%} CPU per event (on vs off, same run)"
        )
    print(
        "events/s: first message received -> final commit; 'from start': events/s from "
        "consumer creation (bare) / app.start() (shoal), so including the group join; "
        "CPU us/event: this process, all threads (librdkafka's too), start -> final commit; "
        "best round = highest events/s"
    )


if __name__ == "__main__":
    main()

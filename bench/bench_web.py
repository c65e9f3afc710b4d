"""Table lookups through one host's web endpoint: keys its workers own, and keys another
host owns (forwarded there).

Run: ``.venv/bin/python bench/bench_web.py --broker 127.0.0.1:29092`` (``--quick`` for a
short form). Two supervisors of ``bench/tables_app.py`` (one worker each, 8 partitions) count
K pre-produced keys; then ``/table/counts/{key}`` is asked of the first host by C concurrent
HTTP clients for D seconds, first with keys the first host owns, then with keys the second
owns. Every answer must be 200 and the key's count (1). Reported: lookups/s, p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import Cluster, create_topics, delete_topics
from shoal.kafka.partitioner import partition_for_key

PARTITIONS = 8
URL = re.compile(r"web endpoint on (http://\S+?): /metrics")


def produce_keys(broker: str, topic: str, keys: int) -> None:
    import confluent_kafka

    # Keys placed as the Java client, Faust and shoal place them (librdkafka defaults to CRC32).
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": broker, "linger.ms": 20, "partitioner": "murmur2_random"}
    )
    for i in range(keys):
        producer.produce(topic, b"1", f"k{i}".encode())
        producer.poll(0)
    assert producer.flush(60) == 0


def web_url(cluster: Cluster, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(cluster.lines):
            if m := URL.search(line):
                return m.group(1)
        time.sleep(0.05)  # a poll interval, bounded by the deadline
    raise SystemExit(f"no web endpoint in the log:\n{cluster.log()}")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


async def lookups(
    base: str, keys: list[str], clients: int, seconds: float
) -> tuple[int, list[float]]:
    """Ask ``/table/counts/{key}`` of ``base`` from ``clients`` tasks for ``seconds``."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(offset: int) -> None:
            i = offset
            while time.perf_counter() < stop:
                key = keys[i % len(keys)]
                i += clients
                started = time.perf_counter()
                async with session.get(f"{base}/table/counts/{key}") as reply:
                    body = await reply.read()
                latencies.append(time.perf_counter() - started)
                if reply.status != 200 or body != b"1":
                    raise SystemExit(f"{key}: {reply.status} {body[:200]!r}")

        await asyncio.gather(*(client(n) for n in range(clients)))
    return len(latencies), latencies


def report(label: str, count: int, latencies: list[float], seconds: float) -> dict[str, float]:
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    rate = count / seconds
    print(f"  {label:<34} {rate:>9,.0f} lookups/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    return {"rate": rate, "p50_ms": p50, "p99_ms": p99}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="127.0.0.1:29092")
    parser.add_argument("--quick", action="store_true", help="fewer keys, shorter runs")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    args = parser.parse_args()
    keys = 2_000 if args.quick else 20_000
    seconds = 3.0 if args.quick else args.seconds
    run = f"bweb-{uuid.uuid4().hex[:8]}"
    source, output = f"{run}-in", f"{run}-out"
    create_topics(args.broker, [source, output], PARTITIONS)
    data = Path(tempfile.mkdtemp(prefix="shoal-bench-web-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(
        SHOAL_BROKER=f"kafka://{args.broker}",
        SHOAL_WEB_PORT="0",
        BENCH_APP_ID=run,
        BENCH_IN=source,
        BENCH_OUT=output,
        BENCH_PARTITIONS=str(PARTITIONS),
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    hosts = []
    try:
        for name in ("one", "two"):
            host = Cluster("bench.tables_app", 1, {**env, "BENCH_DATADIR": str(data / name)})
            hosts.append(host)
            host.wait_ready(90)
        first, second = (web_url(h) for h in hosts)
        deadline = time.monotonic() + 60
        while (
            len(get_json(f"{first}/router")["hosts"]) < 2
            or len(get_json(f"{first}/router")["partitions"]) != PARTITIONS // 2
        ):
            if time.monotonic() > deadline:
                raise SystemExit(f"the hosts did not settle: {get_json(f'{first}/router')}")
            time.sleep(0.2)  # a poll interval, bounded by the deadline
        produce_keys(args.broker, source, keys)
        mine = set(get_json(f"{first}/router")["partitions"])
        names = [f"k{i}" for i in range(keys)]
        local = [k for k in names if partition_for_key(k.encode(), PARTITIONS) in mine]
        remote = [k for k in names if partition_for_key(k.encode(), PARTITIONS) not in mine]
        # Every key counted (its value, 1, readable) before the clock starts.
        asyncio.run(lookups_until_counted(first, names[-50:], 120))
        print(f"bench_web: {keys:,} keys; {args.clients} clients, {seconds:g} s each")
        results = {}
        for label, chosen in (("local keys", local), ("remote keys (forwarded)", remote)):
            count, latencies = asyncio.run(lookups(first, chosen, args.clients, seconds))
            results[label] = report(label, count, latencies, seconds)
        count, latencies = asyncio.run(lookups(first, local, 1, seconds / 2))
        results["local keys, one client"] = report(
            "local keys, one client", count, latencies, seconds / 2
        )
        count, latencies = asyncio.run(lookups(second, remote, 1, seconds / 2))
        results["owner asked directly, one client"] = report(
            "owner asked directly, one client", count, latencies, seconds / 2
        )
        print(json.dumps(results))
    finally:
        for host in hosts:
            host.stop()
        delete_topics(args.broker, prefix=run)


async def lookups_until_counted(base: str, keys: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            answers = []
            for key in keys:
                async with session.get(f"{base}/table/counts/{key}") as reply:
                    answers.append((reply.status, await reply.read()))
            if all(a == (200, b"1") for a in answers):
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"keys not counted in {timeout:g} s: {answers[:3]}")
            await asyncio.sleep(0.2)  # a poll interval, bounded by the deadline


if __name__ == "__main__":
    main()

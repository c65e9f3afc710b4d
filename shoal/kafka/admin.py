"""Asking the broker things: is it there, make these topics, drop that one.

Every admin client is made with :func:`shoal.kafka.clients.client_config`, and polled once its
work is done so librdkafka's log lines and errors reach logging.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from shoal.exceptions import BrokerError
from shoal.kafka.clients import client_config, health

log = logging.getLogger(__name__)


class BrokerUnreachable(BrokerError):
    """No broker of the configured list answered in time."""


class TopicSpec(NamedTuple):
    """A topic to declare: its name, partition count and topic-level config."""

    name: str
    partitions: int
    config: dict[str, str]


def admin_client(bootstrap: str) -> Any:
    return AdminClient(client_config(bootstrap))


def check_broker(bootstrap: str, timeout: float) -> None:
    """Return once a broker of ``bootstrap`` answers; raise :class:`BrokerUnreachable`, naming
    the address and the reason, after ``timeout`` seconds (blocking)."""
    admin = admin_client(bootstrap)
    started = time.monotonic()
    try:
        admin.list_topics(timeout=timeout)
    except confluent_kafka.KafkaException as exc:
        admin.poll(0)  # serves error_cb: the reason librdkafka saw (refused, unresolvable...)
        reason = health.recent_error(time.monotonic() - started + 1) or str(exc.args[0].str())
        raise BrokerUnreachable(
            f"cannot reach the Kafka broker at {bootstrap} within {timeout:g} s ({reason}): "
            "check that it runs and that the 'broker' setting (SHOAL_BROKER) names it"
        ) from None
    finally:
        admin.poll(0)


async def wait_for_broker(bootstrap: str, timeout: float | None, *, what: str) -> None:
    """Wait until a broker answers: up to ``timeout`` seconds (then BrokerUnreachable), or
    with ``None`` for as long as it takes, saying every so often that ``what`` waits."""
    if timeout is not None:
        await asyncio.to_thread(check_broker, bootstrap, timeout)
        return
    started = time.monotonic()
    while True:
        try:
            await asyncio.to_thread(check_broker, bootstrap, 10.0)
            return
        except BrokerUnreachable as exc:
            log.warning(
                "%s waits for the broker (%.0f s so far): %s", what, time.monotonic() - started, exc
            )


async def declare_topics(bootstrap: str, specs: Iterable[TopicSpec], replication: int) -> None:
    """Create the topics that do not exist yet, and wait until the broker has them."""
    new = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=replication,
            config=spec.config,
        )
        for spec in specs
    ]
    if not new:
        return
    admin = admin_client(bootstrap)
    futures = admin.create_topics(new, operation_timeout=30)
    try:
        for name, future in futures.items():
            try:
                await asyncio.wrap_future(future)
            except KafkaException as exc:
                if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                raise BrokerError(
                    f"cannot create topic {name!r} on {bootstrap}: {exc.args[0].str()}"
                ) from exc
        await asyncio.to_thread(wait_visible, admin, [n.topic for n in new])
    finally:
        admin.poll(0)


#: How long a created topic may take to show in the broker's metadata (seconds).
VISIBLE_TIMEOUT = 30.0


def wait_visible(admin: Any, names: Iterable[str], timeout: float = VISIBLE_TIMEOUT) -> None:
    """Return once the broker's metadata shows every topic of ``names`` with a leader for
    each of its partitions (blocking).

    A topic's creation is answered before every broker's metadata has it: a consumer that
    subscribes at once can be told "Subscribed topic not available" and then leaves the
    topic alone until its next metadata refresh, minutes later. Past ``timeout``, a warning
    names the topics still missing, and the caller goes on (the consumer will find
    them at its next refresh)."""
    deadline = time.monotonic() + timeout
    missing = sorted(names)
    while True:
        try:
            metadata = admin.list_topics(timeout=max(0.1, deadline - time.monotonic()))
        except KafkaException as exc:
            log.debug("topic metadata not read (%s): asking again", exc)
        else:
            missing = [name for name in missing if not _ready(metadata.topics.get(name))]
        if not missing:
            return
        if time.monotonic() > deadline:
            log.warning(
                "topics %s were created but the broker's metadata did not show them within "
                "%.0f s; their consumers find them at their next metadata refresh",
                ", ".join(missing),
                timeout,
            )
            return
        time.sleep(0.02)  # the broker's metadata catches up within milliseconds


def _ready(topic: Any) -> bool:
    return (
        topic is not None
        and topic.error is None
        and bool(topic.partitions)
        and all(p.leader >= 0 for p in topic.partitions.values())
    )


async def partition_counts(bootstrap: str, names: Iterable[str]) -> dict[str, int]:
    """How many partitions each existing topic of ``names`` has (missing ones are left out)."""
    wanted = set(names)

    def read() -> dict[str, int]:
        admin = admin_client(bootstrap)
        try:
            metadata = admin.list_topics(timeout=30)
        except KafkaException as exc:
            raise BrokerError(f"cannot read topic metadata from {bootstrap}: {exc}") from exc
        finally:
            admin.poll(0)
        return {
            name: len(topic.partitions)
            for name, topic in metadata.topics.items()
            if name in wanted and topic.error is None
        }

    return await asyncio.to_thread(read)


async def group_members(bootstrap: str, group: str) -> dict[str, set[tuple[str, int]]]:
    """Each member of consumer group ``group`` and the partitions assigned to it."""
    admin = admin_client(bootstrap)
    try:
        future = admin.describe_consumer_groups([group], request_timeout=10)[group]
        description = await asyncio.wrap_future(future)
    except KafkaException as exc:
        raise BrokerError(f"cannot describe group {group!r}: {exc.args[0].str()}") from exc
    finally:
        admin.poll(0)
    return {
        member.member_id: {(tp.topic, tp.partition) for tp in member.assignment.topic_partitions}
        for member in description.members
    }


async def delete_topic(bootstrap: str, name: str, timeout: float) -> None:
    """Delete a topic, waiting at most ``timeout`` seconds; a failure is logged, not raised
    (it is gone already, or the broker is away: ``clusterctl clean`` can do it later)."""
    admin = admin_client(bootstrap)
    futures = admin.delete_topics([name], operation_timeout=min(10.0, timeout))
    for future in futures.values():
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except Exception as exc:
            log.warning("could not delete topic %s: %s", name, exc)
    admin.poll(0)

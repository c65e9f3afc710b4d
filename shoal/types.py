"""Names for the plain data every layer passes around."""

from __future__ import annotations

from typing import NamedTuple

#: A topic partition: ``("orders", 3)``.
TP = tuple[str, int]

#: Kafka message headers, in order (a name may repeat).
Headers = list[tuple[str, bytes]]


class TopicPartition(NamedTuple):
    """A topic partition with names, as Faust hands them to programs (``message.tp``, the
    rebalance signals): ``tp.topic``, ``tp.partition``. Equal to the plain ``TP`` tuple."""

    topic: str
    partition: int


def leader_topic(app_id: str) -> str:
    """Faust's leader topic of an app: whoever owns its one partition is the app's leader."""
    return f"{app_id}-__assignor-__leader"


__all__ = ["TP", "Headers", "TopicPartition", "leader_topic"]

"""Names for the plain data every layer passes around."""

from __future__ import annotations

#: A topic partition: ``("orders", 3)``.
TP = tuple[str, int]

#: Kafka message headers, in order (a name may repeat).
Headers = list[tuple[str, bytes]]

__all__ = ["TP", "Headers"]

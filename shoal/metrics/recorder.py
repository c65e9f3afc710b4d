"""What call sites record through: the recorder interface, which records nothing (metrics
off, or not configured yet), and the labels and buckets of every series."""

from __future__ import annotations

#: Labels every series of this module starts with; the recorder fills them in.
BASE_LABELS = ("app", "worker")

#: An agent's handling of one event: mostly sub-millisecond, with a tail into seconds when it
#: awaits I/O.
PROCESSING_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Round trips through Kafka (asks, commits): milliseconds to the ask timeout.
ROUND_TRIP_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class Recorder:
    """What call sites record through. This base records nothing: metrics off, or not yet
    configured. Counts take ``n`` so a call site can count a whole batch in one call."""

    enabled = False

    def events_received(self, agent: str, topic: str, n: int = 1) -> None:
        """Events delivered to an agent's inbox (or a stream's)."""

    def events_processed(self, agent: str, topic: str, n: int = 1) -> None:
        """Events an agent finished (acked)."""

    def events_failed(self, agent: str, topic: str, n: int = 1) -> None:
        """Events whose handling raised in the agent."""

    def processing_time(self, agent: str, seconds: float) -> None:
        """Time an agent spent on one event."""

    def commit(self, seconds: float, ok: bool) -> None:
        """One commit round (the barrier excluded), successful or not."""

    def produce_error(self, topic: str) -> None:
        """A message the broker did not acknowledge."""

    def dead_lettered(self, topic: str, error: str) -> None:
        """An event sent to the dead-letter topic; ``topic`` is its source, ``error`` the
        exception type name (a small, code-bounded set)."""

    def dead_letter_truncated(self, topic: str) -> None:
        """A dead letter too large to copy as it was, sent cut short."""

    def ask_sent(self, agent: str) -> None:
        """A request produced by ``ask``."""

    def ask_reply(self, agent: str, seconds: float, error: bool = False) -> None:
        """A reply that reached its asker in time; ``seconds`` is the round trip."""

    def ask_timeout(self, agent: str) -> None:
        """An ask that raised AskTimeoutError."""

    def late_reply(self) -> None:
        """A reply nobody waited for any more, dropped."""

    def asks_pending(self, n: int) -> None:
        """Asks of this process waiting for their reply now."""

    def inbox_events(self, agent: str, n: int) -> None:
        """Events waiting in an agent's inbox now."""

    def recovery(self, done: dict[str, int], left: int, rate: float) -> None:
        """Table recovery: records replayed since the last call per table, records left and
        the rate of the running recovery (0 and 0 when none runs)."""

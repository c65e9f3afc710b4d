"""bench_adding.py's bare confluent-kafka loop as a process of its own: compare.py's baseline,
timed and measured from outside like every other system.

    python -m bench.bare_loop BROKER SOURCE SINK EVENTS

Reads SOURCE from the earliest offset with a consumer group of its own, produces ``a + b`` of
each JSON value to SINK, commits at least once (after the outputs before it are acknowledged)
every second, and exits after the final commit once EVENTS messages are processed.
"""

from __future__ import annotations

import sys

from bench.bench_adding import run_bare


def main() -> None:
    broker, source, sink, events = sys.argv[1:5]
    result = run_bare(broker, source, sink, int(events), 1.0)
    print(
        f"bare loop: {result.rate:,.0f} events/s first message -> final commit, "
        f"{result.cpu_us:.1f} CPU us/event (its own figures)",
        flush=True,
    )


if __name__ == "__main__":
    main()

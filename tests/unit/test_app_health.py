"""A worker is dead when a thread that events need is, whatever its event loop says."""

from __future__ import annotations

import shoal


async def test_a_stopped_delivery_thread_is_a_dead_part() -> None:
    app = shoal.App("health-check", broker="127.0.0.1:1")  # the producer never connects
    producer = await app.runtime.producers.ensure()
    try:
        assert app.dead_parts() == []
        producer._stopping.set()  # its thread ends, as one that failed would
        assert producer._thread is not None
        producer._thread.join(5)
        assert app.dead_parts() == ["a producer's delivery thread"]
    finally:
        await app.stop(flush_timeout=0.1)

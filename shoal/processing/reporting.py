"""What the per-event path counts, handed to the metrics once a second (not per event)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from shoal import metrics
from shoal.processing.agents import Agent
from shoal.runtime.runtime import Runtime


async def report_metrics(agents: Mapping[str, Agent], runtime: Runtime, every: float = 1.0) -> None:
    """Each ``every`` seconds: events processed and processing times per agent, inbox sizes,
    asks pending."""
    while True:
        await asyncio.sleep(every)  # the flush period
        record = metrics.record
        for agent in agents.values():
            stats = agent.stats
            if stats.processed > stats.reported:
                topic = agent.channel.get_topic_name()
                record.events_processed(agent.name, topic, stats.processed - stats.reported)
                stats.reported = stats.processed
            samples, stats.samples = stats.samples, []
            for seconds in samples:
                record.processing_time(agent.name, seconds)
        for (owner, _topic), inbox in runtime.subscriptions.owned_inboxes().items():
            record.inbox_events(owner, inbox.size)
        record.asks_pending(runtime.asker.pending)

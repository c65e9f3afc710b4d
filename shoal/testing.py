"""Unit-testing agents without Kafka: ``async with agent.test_context() as ctx`` (see
:class:`AgentTestContext`)."""

from shoal.processing.testing import AgentTestContext

__all__ = ["AgentTestContext"]

"""The one exception tree of shoal.

Every error shoal raises on purpose is a :class:`ShoalError`. Third-party errors are wrapped at
the boundary (``raise ... from exc``) and the message says what went wrong and what to do.
"""

from __future__ import annotations


class ShoalError(Exception):
    """Root of every error shoal raises on purpose."""


class ConfigError(ShoalError):
    """A setting is unknown, or its value is invalid. Raised at start, never mid-stream."""


class CodecError(ShoalError):
    """A value could not be serialized or deserialized."""


class DecodeError(CodecError):
    """Bytes from the wire could not be turned into the expected value.

    ``field`` names the offending field of a Record when the failure is a type error
    (``None`` for malformed input such as broken JSON).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class EncodeError(CodecError):
    """A value could not be serialized for the wire."""


class BrokerError(ShoalError):
    """Kafka could not be reached, or refused an operation."""


class AgentError(ShoalError):
    """An agent was misused (bad arguments, wrong state)."""


class AskTimeoutError(ShoalError, TimeoutError):
    """No reply arrived for an ``ask`` within its timeout."""


class TableLookupError(ShoalError):
    """A table's value could not be read from its cluster (no table of that name, or no host
    answered within the timeout)."""


class RemoteAgentError(ShoalError):
    """The agent that handled an ``ask`` raised; carries the remote type and message."""

    def __init__(self, agent: str, remote_type: str, remote_message: str) -> None:
        super().__init__(f"agent {agent!r} raised {remote_type}: {remote_message}")
        self.agent = agent
        self.remote_type = remote_type
        self.remote_message = remote_message

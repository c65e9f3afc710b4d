"""Signals: Faust's ``app.on_partitions_assigned`` and friends, that a program connects to.

::

    @app.on_rebalance_complete.connect
    async def rebalanced(app, **kwargs):
        ...

    @app.on_partitions_assigned.connect
    async def assigned(app, assigned, **kwargs):
        for tp in assigned:  # TopicPartition(topic, partition)
            ...

A receiver is called as Faust calls it: ``receiver(app, *args, signal=<the signal>,
**kwargs)``; it may be a plain or an async function. One that raises crashes the worker, as
in Faust (a program that reacts to a rebalance must not silently not react).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Receiver = Callable[..., Any]


class Signal:
    """A named signal of an app; see the module docstring."""

    def __init__(self, name: str, sender: Any) -> None:
        self.name = name
        self.sender = sender
        self._receivers: list[Receiver] = []

    def __repr__(self) -> str:
        return f"<Signal {self.name}: {len(self._receivers)} receivers>"

    def connect(self, fun: Receiver | None = None, **_faust_options: Any) -> Any:
        """Call ``fun`` on each :meth:`send`: ``@signal.connect`` or ``@signal.connect()``."""

        def add(receiver: Receiver) -> Receiver:
            self._receivers.append(receiver)
            return receiver

        return add(fun) if fun is not None else add

    def disconnect(self, fun: Receiver) -> None:
        self._receivers.remove(fun)

    async def send(self, *args: Any, **kwargs: Any) -> None:
        """Call every receiver, in the order connected, awaiting the async ones."""
        for receiver in list(self._receivers):
            outcome = receiver(self.sender, *args, signal=self, **kwargs)
            if inspect.isawaitable(outcome):
                await outcome

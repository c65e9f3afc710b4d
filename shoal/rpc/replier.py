"""Answering requests: a reply goes back by the shortest route to where its asker waits.

Tried in order:

1. **In this process**: the asker is waiting here; the reply resolves its future at once.
2. **A neighbour**: the asker is another worker of this host (the reply goes to the host's
   reply topic, with a route): over the local channel, through the supervisor, not Kafka.
3. **Kafka**: produced to the reply topic (JSON; or, for ``send(reply_to=other_agent)``,
   encoded with that agent's topic's serializer) on the linger-0 replies producer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal.kafka.producer import Producer
from shoal.rpc.asker import Asker
from shoal.rpc.request import Request, encode_error, encode_reply, error_type

#: (route, correlation id, body, error type or None): hands a reply to a neighbour worker.
Neighbour = Callable[[str, str, bytes, bytes | None], None]
#: The encoder of a topic this app describes, by name (None: not one of ours).
EncoderFor = Callable[[str], Callable[[Any], bytes | None] | None]


class Replier:
    """Sends replies; see the module docstring."""

    def __init__(self, asker: Asker, producer: Callable[[], Producer], encoder_for: EncoderFor):
        self._asker = asker
        self._producer = producer
        self._encoder_for = encoder_for
        #: Set for a worker of a supervisor: replies to the other workers of its host.
        self.neighbour: Neighbour | None = None

    def reply(
        self, request: Request, *, value: Any = None, error: BaseException | None = None
    ) -> None:
        """Answer ``request`` with ``value``, or with the ``error`` its handling raised."""
        futures = self._asker.futures
        if futures is not None and request.reply_to == futures.topic:
            body = encode_error(error) if error is not None else encode_reply(value)
            kind = error_type(error) if error is not None else None
            if futures.is_waiting(request.correlation_id):
                futures.resolve(request.correlation_id, body, kind)  # the asker is here
                return
            if request.route is not None and self.neighbour is not None:
                self.neighbour(request.route, request.correlation_id, body, kind)
                return
        data: bytes | None
        if error is not None:
            data = encode_error(error)
        else:
            encode = self._encoder_for(request.reply_to)
            data = encode(value) if encode is not None else encode_reply(value)
        self._producer().send_soon(
            request.reply_to,
            request.correlation_id.encode(),
            data,
            headers=request.reply_headers(error),
        )

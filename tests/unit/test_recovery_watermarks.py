"""A changelog partition's watermarks while its leader moves or is not known yet: asked again,
not a failed recovery; a stop ends the asking at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from shoal.exceptions import BrokerError
from shoal.tables.recovery import _watermarks


class Broker:
    """A consumer whose first answers are errors."""

    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.asked = 0

    def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
        self.asked += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))
        return 0, 42


def test_a_moving_leader_is_asked_again() -> None:
    broker = Broker(KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)
    assert _watermarks(broker, "t-changelog", 3, 10.0) == (0, 42)
    assert broker.asked == 3


def test_other_errors_and_a_stop_end_it() -> None:
    with pytest.raises(BrokerError, match=r"cannot read the end of changelog t-changelog\[3\]"):
        _watermarks(Broker(KafkaError.TOPIC_AUTHORIZATION_FAILED), "t-changelog", 3, 10.0)
    stop = threading.Event()
    stop.set()
    broker = Broker(*[KafkaError.NOT_LEADER_FOR_PARTITION] * 100)
    with pytest.raises(BrokerError):
        _watermarks(broker, "t-changelog", 3, 30.0, stop)
    assert broker.asked == 1

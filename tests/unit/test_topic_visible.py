"""A declared topic is waited for until the broker's metadata shows it with its leaders."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from shoal.kafka.admin import wait_visible


def topic(*leaders: int) -> Any:
    return SimpleNamespace(
        error=None,
        partitions={p: SimpleNamespace(leader=leader) for p, leader in enumerate(leaders)},
    )


class Admin:
    """Answers metadata requests from a script: one answer per request, the last repeated."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.asked = 0

    def list_topics(self, timeout: float) -> Any:
        self.asked += 1
        answer = self.answers[min(self.asked, len(self.answers)) - 1]
        return SimpleNamespace(topics=answer)


def test_returns_once_every_topic_shows_a_leader_for_each_partition() -> None:
    admin = Admin({}, {"a": topic(0, -1)}, {"a": topic(0, 0), "b": topic(0)})
    wait_visible(admin, ["a", "b"])
    assert admin.asked == 3  # not there; a partition without a leader; all there


def test_topics_that_never_show_are_named_and_the_caller_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = Admin({"a": topic(0)})
    with caplog.at_level(logging.WARNING):
        wait_visible(admin, ["a", "gone"], timeout=0.2)
    assert "topics gone were created but the broker's metadata did not show them" in caplog.text

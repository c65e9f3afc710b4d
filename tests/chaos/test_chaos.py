"""The chaos suite's short form, one test per scenario (the full form: ``ops/chaos``).

Each test runs its scenario against a broker of its own xdist worker (the scenarios pause and
restart it, so it is never the suite's shared broker) and holds the suite's promises: nothing
lost, no per-key order violation, no hang, every ask answered correctly or timed out in time,
and a fresh client's first ask honouring its timeout to within 0.5 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import ChaosBroker
from tests.chaos.run import HEADER, row
from tests.chaos.scenarios import Params, all_scenarios

pytestmark = [pytest.mark.kafka, pytest.mark.chaos, pytest.mark.timeout(300)]

PARAMS = Params.short()
SCENARIOS = all_scenarios(PARAMS)


@pytest.fixture(scope="session")
def chaos_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosBroker]:
    broker = ChaosBroker(tmp_path_factory.mktemp("chaos-kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str, chaos_broker: ChaosBroker, tmp_path: Path) -> None:
    result = SCENARIOS[name](chaos_broker, tmp_path, PARAMS)
    print(f"\n{HEADER}\n{row(result)}")
    assert result.events > 0
    assert result.lost == 0, row(result)
    assert result.order_violations == 0, row(result)
    assert result.hangs == 0, row(result)
    assert result.asks.hangs == 0 and result.asks.wrong == 0, row(result)
    assert result.asks.first_ask_overshoot <= 0.5, row(result)
    assert result.asks.ok > 0, row(result)

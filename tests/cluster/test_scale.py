"""`clusterctl scale`: workers added and removed, partitions moved locally with a drain."""

from __future__ import annotations

import pytest

from tests.helpers import wait_until_sync
from tests.processes import Clusterctl, OutputReader, numbers_env, produce_numbers

pytestmark = pytest.mark.kafka


def test_scale_up_and_down_moves_partitions_without_loss_or_repeats(
    kafka_bootstrap: str, unique: str
) -> None:
    env = numbers_env(kafka_bootstrap, unique, partitions=8)
    env["NUMBERS_SPIN"] = "5000"
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "1", env=env)
    reader = OutputReader(kafka_bootstrap, env["NUMBERS_OUT"])
    try:
        supervisor.wait_for("this host owns 8 partitions over 1 workers")
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(0, 3000))
        reader.read_until(500, 60)
        grow = Clusterctl("tests.apps.numbers_app", "scale", "+1", env=env)
        assert grow.proc.wait(30) == 0, grow.log()
        assert "from 1 to 2 workers" in grow.log()
        supervisor.wait_for("scaled to 2 workers")
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(3000, 6000))
        reader.read_until(4000, 60)
        # The new worker must have taken its share before it gives it back (on a busy
        # machine the first worker alone could reach 4,000 outputs first).
        wait_until_sync(
            lambda: (
                reader.poll(0.1) is not None
                and len(set().union(*reader.pids_by_partition.values())) == 2
            ),
            60,
            "output from the second worker",
        )
        shrink = Clusterctl("tests.apps.numbers_app", "scale", "1", env=env)
        assert shrink.proc.wait(30) == 0, shrink.log()
        supervisor.wait_for("scaled to 1 workers")
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(6000, 8000))
        reader.read_until(8000, 60)
    finally:
        code = supervisor.stop()
        reader.close()
    assert code == 0, supervisor.log()
    assert set(reader.seen) == set(range(8000))
    assert max(reader.seen.values()) == 1, "a local handover processed something twice"
    pids = set().union(*reader.pids_by_partition.values())
    assert len(pids) == 2  # the second worker took partitions, then gave them back

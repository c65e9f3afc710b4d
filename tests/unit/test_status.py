from __future__ import annotations

import os
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from shoal.exceptions import ShoalError
from shoal.supervisor.status import (
    ProcessSampler,
    StatusCorruptError,
    StatusNotFoundError,
    SupervisorStatus,
    WorkerStatus,
    compact_partitions,
    format_bytes,
    format_duration,
    partition_label,
    read_status,
    render_table,
    status_path,
    write_status,
)

NOW = 1_700_000_000.0


def worker(index: int, **overrides: object) -> WorkerStatus:
    fields: dict[str, object] = {
        "index": index,
        "pid": 4250 + index,
        "started_at": NOW - 3725,  # 1h02m05s ago
        "restarts": 0,
        "rss_bytes": 43_201_331,  # 41.2 MiB
        "cpu_percent": 12.5,
        "partitions": [partition_label("orders", p) for p in (12, 0, 8, 4)],
        "events_per_s": 1520.0,
        "lag": 17,
        "state": "running",
    }
    fields.update(overrides)
    return WorkerStatus(**fields)  # type: ignore[arg-type]


def supervisor(*workers: WorkerStatus) -> SupervisorStatus:
    return SupervisorStatus(
        app_id="orders-app",
        pid=4242,
        started_at=NOW - 185,
        host="host1",
        workers=list(workers),
        group_partitions=16,
        updated_at=NOW - 2,
    )


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    path = status_path("orders-app", tmp_path)
    status = supervisor(worker(0), worker(1, lag=None, state="starting", partitions=[]))
    write_status(path, status)
    assert read_status(path) == status
    # No temporary file is left beside it.
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]


def test_a_rewrite_replaces_the_previous_status(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    write_status(path, supervisor(worker(0)))
    write_status(path, supervisor())
    assert read_status(path).workers == []


def test_missing_status_says_what_to_check(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "status.json"
    with pytest.raises(FileNotFoundError) as info:
        read_status(path)
    assert isinstance(info.value, StatusNotFoundError)
    assert isinstance(info.value, ShoalError)
    assert str(info.value) == (
        f"no supervisor status at {path}: is `clusterctl up` running for this app?"
    )


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"app_id": "x"}', b'{"app_id": 1}'])
def test_corrupt_status_is_a_value_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "status.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"unreadable supervisor status at .*status\.json") as info:
        read_status(path)
    assert isinstance(info.value, StatusCorruptError)


def test_status_path_is_in_the_app_runtime_dir(tmp_path: Path) -> None:
    assert status_path("orders-app", tmp_path) == tmp_path / "orders-app" / "status.json"


def test_render_table_header_and_rows() -> None:
    status = supervisor(
        worker(0),
        worker(
            1,
            pid=4999,
            started_at=NOW - 12,
            restarts=3,
            lag=None,
            state="starting",
            rss_bytes=512,
            partitions=["payments[1]", "orders[5]", "orders[1]"],
        ),
    )
    lines = render_table(status, now=NOW).splitlines()
    header, columns, first, second = lines
    assert "orders-app" in header and "host1" in header and "pid 4242" in header
    assert "up 3m05s" in header and "16 partitions owned" in header
    assert "updated 2s ago" in header
    assert columns.split() == [
        "WORKER",
        "PID",
        "UPTIME",
        "RESTARTS",
        "RSS",
        "CPU%",
        "EVENTS/S",
        "LAG",
        "PARTITIONS",
    ]
    assert first.split()[:3] == ["0", "4250", "1h02m"]
    assert "41.2 MiB" in first and "12.5" in first and "1520.0" in first
    assert first.endswith("orders[0,4,8,12]")
    assert second.startswith("1 (starting)")
    assert " 12s " in second and "512 B" in second
    assert second.endswith("orders[1,5] payments[1]")
    # An unknown lag shows as a dash, in the LAG column.
    assert second[columns.index("LAG") : columns.index("PARTITIONS")].strip() == "-"


def test_render_table_truncates_long_partition_lists() -> None:
    many = [partition_label("orders", p) for p in range(20)]
    table = render_table(supervisor(worker(0, partitions=many)), now=NOW, max_per_topic=4)
    assert table.endswith("orders[0,1,2,3,…(+16)]")


def test_render_table_with_no_workers() -> None:
    lines = render_table(supervisor(), now=NOW).splitlines()
    assert len(lines) == 2
    assert "0 workers" in lines[0]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-3, "0s"), (12, "12s"), (185, "3m05s"), (3725, "1h02m"), (2 * 86400 + 3 * 3600, "2d03h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (43_201_331, "41.2 MiB"),
        (3 << 30, "3.0 GiB"),
    ],
)
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text


def test_compact_partitions_keeps_unparseable_labels() -> None:
    labels = ["b[2]", "a[10]", "a[2]", "weird", "a[2]"]
    assert compact_partitions(labels) == "a[2,10] b[2] weird"


def test_sampler_reads_its_own_process() -> None:
    sampler = ProcessSampler()
    first = sampler.sample(os.getpid())
    assert first is not None
    rss, cpu = first
    assert rss > 0
    assert cpu == 0.0  # the first sample only starts the CPU measurement
    second = sampler.sample(os.getpid())
    assert second is not None
    assert second[0] > 0
    assert isinstance(second[1], float) and second[1] >= 0.0


def test_sampler_returns_none_for_a_pid_that_does_not_exist() -> None:
    pid = 2**22 + 1  # above Linux's pid_max ceiling (and macOS's 99999)
    assert not psutil.pid_exists(pid)
    sampler = ProcessSampler()
    assert sampler.sample(pid) is None
    sampler.forget(pid)  # forgetting what is not known is harmless

"""ops/kafka/broker.py without a broker: its errors, the cluster id and the wire protocol."""

from __future__ import annotations

import re
import shutil
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.cluster.devbroker import broker as broker_ops

# ops/kafka/broker.py, loaded the way `clusterctl kafka` loads it.
ops: Any = broker_ops


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """Something else listening on a port of 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_port_in_use_names_the_port(listener: socket.socket, tmp_path: Path) -> None:
    port = listener.getsockname()[1]
    with pytest.raises(ops.BrokerOpsError, match=rf"port {port}\b.*--port"):
        ops.up(port, controller_port=_free_port(), data_dir=tmp_path, quiet=True)
    assert not (tmp_path / "broker.pid").exists()


def test_controller_port_in_use_names_it(listener: socket.socket, tmp_path: Path) -> None:
    cport = listener.getsockname()[1]
    with pytest.raises(ops.BrokerOpsError, match=rf"port {cport}\b.*--controller-port"):
        ops.up(_free_port(), controller_port=cport, data_dir=tmp_path, quiet=True)


def test_java_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ops.BrokerOpsError, match=r"`java` is not on PATH: install a JDK 17\+"):
        ops.up(_free_port(), data_dir=tmp_path / "data", quiet=True)


def test_cli_error_is_one_line_and_exit_2(
    listener: socket.socket, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = listener.getsockname()[1]
    assert ops.main(["up", "--port", str(port), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(port) in err


def test_cluster_id_format() -> None:
    ids = {ops.new_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    for cid in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid), cid
        assert not cid.startswith("-")


def test_status_and_down_when_nothing_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broker.pid").write_text("999999999\n")  # stale: no such process
    assert ops.status(_free_port(), data_dir=tmp_path) is None
    assert ops.main(["status", "--data-dir", str(tmp_path)]) == 1
    assert "not running" in capsys.readouterr().out
    assert ops.down(data_dir=tmp_path, quiet=True) is False
    assert not (tmp_path / "broker.pid").exists()


def _serve_once(sock: socket.socket, reply: bytes | None) -> threading.Thread:
    """Answer one request: `reply` after echoing its correlation id, or close at once."""

    def run() -> None:
        conn, _ = sock.accept()
        with conn:
            if reply is None:
                return
            head = b""
            while len(head) < 12:
                head += conn.recv(12 - len(head))
            corr = head[8:12]
            conn.sendall(struct.pack(">i", 4 + len(reply)) + corr + reply)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _metadata_v4_reply(brokers: list[tuple[int, str, int]]) -> bytes:
    body = struct.pack(">ii", 0, len(brokers))
    for node, host, port in brokers:
        body += struct.pack(">ih", node, len(host)) + host.encode() + struct.pack(">ih", port, -1)
    cluster = b"abcdefghijklmnopqrstuv"
    return body + struct.pack(">h", len(cluster)) + cluster + struct.pack(">ii", 1, 0)


def test_metadata_request_parsing(listener: socket.socket) -> None:
    host, port = listener.getsockname()
    thread = _serve_once(listener, _metadata_v4_reply([(1, "127.0.0.1", 9092)]))
    assert ops.metadata_brokers(host, port, 5.0) == [(1, "127.0.0.1", 9092)]
    thread.join(5)


@pytest.mark.parametrize(
    "reply",
    [None, b"", _metadata_v4_reply([]), b"\x00\x00\x00\x00"],
    ids=["closed", "short", "no-brokers", "truncated"],
)
def test_not_answering(listener: socket.socket, reply: bytes | None) -> None:
    """Closed connections, truncated replies and an empty broker list are not 'ready'."""
    host, port = listener.getsockname()
    thread = _serve_once(listener, reply)
    assert ops.is_answering(host, port, 5.0) is False
    thread.join(5)


def test_nothing_listening() -> None:
    assert ops.is_answering("127.0.0.1", _free_port(), 1.0) is False


def _path_with(tmp_path: Path, **tools: str) -> str:
    """A PATH holding only `java` (the real one) and the given fake tools (name=script)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java on PATH")
    (bin_dir / "java").symlink_to(java)
    for name, script in tools.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{script}\n")
        (bin_dir / name).chmod(0o755)
    return str(bin_dir)


def test_mvn_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHOAL_KAFKA_CACHE", str(tmp_path / "cache" / "libs"))
    monkeypatch.setenv("PATH", _path_with(tmp_path))
    with pytest.raises(ops.BrokerOpsError, match=r"`mvn` is not on PATH: install Apache Maven"):
        ops.fetch_jars(quiet=True)


def test_maven_failure_points_to_its_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SHOAL_KAFKA_CACHE", str(cache / "libs"))
    monkeypatch.setenv("PATH", _path_with(tmp_path, mvn="echo 'no route to host' >&2; exit 1"))
    with pytest.raises(ops.BrokerOpsError, match=r"exit 1\).*maven-fetch\.log") as caught:
        ops.fetch_jars(quiet=True)
    assert "\n" not in str(caught.value)
    assert "no route to host" in (cache / "maven-fetch.log").read_text()
    assert sorted(p.name for p in cache.iterdir()) == [".fetch.lock", "maven-fetch.log"]

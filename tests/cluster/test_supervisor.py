"""`clusterctl up`: a supervisor and its worker processes against the real broker."""

from __future__ import annotations

import json
import re
import signal
import socket
import time

import pytest

from shoal.supervisor import rundir
from tests.processes import Clusterctl, OutputReader, numbers_env, produce_numbers

pytestmark = pytest.mark.kafka


def test_four_workers_own_disjoint_partitions_and_process_everything(
    kafka_bootstrap: str, unique: str
) -> None:
    env = numbers_env(kafka_bootstrap, unique, partitions=16)
    total = 8000
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "4", env=env)
    reader = OutputReader(kafka_bootstrap, env["NUMBERS_OUT"])
    try:
        supervisor.wait_for("this host owns 16 partitions over 4 workers")
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(total))
        reader.read_until(total, 90)
        status = Clusterctl("tests.apps.numbers_app", "status", env=env)
        assert status.proc.wait(30) == 0, status.log()
        table = "".join(status.lines)
        top = Clusterctl("tests.apps.numbers_app", "top", "--count", "1", env=env)
        assert top.proc.wait(30) == 0, top.log()
        assert re.search(r"WORKER\s+PID", top.log()) and "in[0,4,8,12]" in top.log()
    finally:
        code = supervisor.stop()
        reader.close()
    assert code == 0, supervisor.log()
    assert set(reader.seen) == set(range(total))
    # Each partition was handled by exactly one process, and there were four of them.
    assert sorted(reader.pids_by_partition) == list(range(16))
    assert all(len(pids) == 1 for pids in reader.pids_by_partition.values())
    owners = {next(iter(pids)) for pids in reader.pids_by_partition.values()}
    assert len(owners) == 4
    # Partition N of the topic went to worker N % 4: partitions p and p + 4 share a process.
    for p in range(4):
        assert {next(iter(reader.pids_by_partition[q])) for q in (p, p + 4, p + 8, p + 12)} == {
            next(iter(reader.pids_by_partition[p]))
        }
    assert "supervisor stopped" in supervisor.log(200)
    for pid in owners:
        assert str(pid) in table
    assert "in[0,4,8,12]" in table


def test_an_app_that_cannot_be_imported_stops_at_once(kafka_bootstrap: str, unique: str) -> None:
    env = numbers_env(kafka_bootstrap, unique)
    supervisor = Clusterctl("tests.apps.broken_app", "up", "--workers", "2", env=env)
    code = supervisor.proc.wait(60)
    supervisor.stop()
    assert code == 3
    errors = [line for line in supervisor.lines if line.startswith("Error:")]
    assert errors == [
        "Error: cannot import app module 'tests.apps.broken_app': ModuleNotFoundError: "
        "No module named 'no_such_dependency_anywhere'\n"
    ]


def test_workers_that_cannot_boot_stop_the_supervisor_instead_of_a_restart_loop(
    kafka_bootstrap: str, unique: str
) -> None:
    env = numbers_env(kafka_bootstrap, unique)
    supervisor = Clusterctl("tests.apps.boots_only_in_supervisor", "up", "-w", "2", env=env)
    code = supervisor.proc.wait(90)
    supervisor.stop()
    log = supervisor.log(200)
    assert code == 3, log
    assert "could not load or start the app" in log
    assert "Not restarting" in log
    assert log.count("started worker") == 2  # no replacement was started


def test_a_second_sigint_exits_at_once(kafka_bootstrap: str, unique: str) -> None:
    env = numbers_env(kafka_bootstrap, unique)
    env["NUMBERS_SPIN"] = "200000"  # slow events: a graceful stop would take a while
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "2", env=env)
    try:
        supervisor.wait_for("this host owns 4 partitions over 2 workers")
        produce_numbers(kafka_bootstrap, env["NUMBERS_IN"], range(2000))
        supervisor.wait_for("fetching", count=2)
        supervisor.proc.send_signal(signal.SIGINT)
        supervisor.wait_for("SIGINT: stopping gracefully")
        supervisor.proc.send_signal(signal.SIGINT)
        code = supervisor.proc.wait(10)
    finally:
        supervisor.kill()
    assert code == 1
    assert "second SIGINT" in supervisor.log()


def test_json_logs_name_the_app_the_worker_and_the_pid(kafka_bootstrap: str, unique: str) -> None:
    env = numbers_env(kafka_bootstrap, unique)
    supervisor = Clusterctl(
        "tests.apps.numbers_app", "--log-format", "json", "up", "--workers", "1", env=env
    )
    try:
        supervisor.wait_for("this host owns 4 partitions over 1 workers")
    finally:
        code = supervisor.stop()
    assert code == 0, supervisor.log()
    entries = [json.loads(line) for line in supervisor.lines if line.startswith("{")]
    assert len(entries) == len([line for line in supervisor.lines if line.strip()])
    assert {e["worker"] for e in entries} == {"supervisor", "0"}
    assert {e["app"] for e in entries if e["worker"] == "0"} == {unique}
    assert all(isinstance(e["pid"], int) and e["message"] for e in entries)


def test_an_unreachable_broker_stops_up_in_bounded_time_with_one_line(unique: str) -> None:
    env = numbers_env("127.0.0.1:1", unique)  # nothing listens there
    env["SHOAL_BROKER_CONNECT_TIMEOUT"] = "3"
    started = time.monotonic()
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "2", env=env)
    code = supervisor.proc.wait(60)
    took = time.monotonic() - started
    supervisor.stop()
    log = supervisor.log(400)
    assert code == 3, log
    assert took < 3 + 5, f"it took {took:.1f} s"
    errors = [
        line for line in supervisor.lines if "shoal.supervisor.arbiter" in line and "ERROR" in line
    ]
    assert len(errors) == 1, log
    assert "cannot reach the Kafka broker at 127.0.0.1:1 within 3 s" in errors[0]
    assert "check that it runs and that the 'broker' setting (SHOAL_BROKER) names it" in errors[0]
    assert "Traceback" not in log
    assert not any(line.startswith("%") for line in supervisor.lines)  # librdkafka's own
    assert len(supervisor.lines) < 20, log  # not a flood of connection errors
    assert "started worker" not in log
    runtime = rundir.app_dir(unique)
    assert not runtime.exists() or not list(runtime.iterdir()), list(runtime.iterdir())


def test_stray_connections_to_the_sockets_get_one_warning_and_harm_nothing(
    kafka_bootstrap: str, unique: str
) -> None:
    env = numbers_env(kafka_bootstrap, unique)
    supervisor = Clusterctl("tests.apps.numbers_app", "up", "--workers", "1", env=env)
    try:
        supervisor.wait_for("this host owns 4 partitions over 1 workers")
        runtime = rundir.app_dir(unique)
        for path in [*runtime.glob("channel-*.sock"), runtime / "control.sock"]:
            for junk in (
                b"GET / HTTP/1.1\r\n\r\n",
                b"\x00\x00\x00\x03abc",
                b"\x00\x00\x00\x01\xc1",
            ):
                with socket.socket(socket.AF_UNIX) as stray:
                    stray.connect(str(path))
                    stray.sendall(junk)
        supervisor.wait_for("closed a connection that sent", count=3)
        supervisor.wait_for("control socket: rejected a connection", count=3)
        ask = Clusterctl("tests.apps.numbers_app", "ask", "numbers", "5", env=env)
        assert ask.proc.wait(60) == 0, ask.log()  # the cluster works on
    finally:
        code = supervisor.stop()
    log = supervisor.log(400)
    assert code == 0, log
    assert "Traceback" not in log
    assert "exception" not in log.lower()

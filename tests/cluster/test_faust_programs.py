"""Faust programs of our own (tests/programs/), run unchanged but for their import line:
timers in every worker, a leader timer in one process of the whole cluster that moves when
its host dies, a crontab in a time zone that is not UTC, a service feeding a channel that an
agent reads, rebalance signals, and commands that ask an agent and exit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import wait_until_sync
from tests.processes import ROOT, Clusterctl

pytestmark = pytest.mark.kafka


def program_env(bootstrap: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(
        # The program says broker="kafka://localhost:9092": the environment wins, as in Faust.
        BROKER_URL=f"kafka://{bootstrap}",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        SHOAL_WEB_PORT="0",
        **extra,
    )
    return env


class Said:
    """The ``WHAT HOST PID UNIXTIME [DETAIL]`` lines of tests/programs/scheduler.py."""

    def __init__(self, *procs: Clusterctl) -> None:
        self.procs = procs

    def lines(self, what: str) -> list[tuple[str, int, float, list[str]]]:
        found = []
        for proc in self.procs:
            for line in list(proc.lines):
                parts = line.split()
                if len(parts) >= 4 and parts[0] == what:
                    found.append((parts[1], int(parts[2]), float(parts[3]), parts[4:]))
        return sorted(found, key=lambda said: said[2])

    def pids(self, what: str) -> set[int]:
        return {pid for _, pid, _, _ in self.lines(what)}


def next_minute_in(zone: str) -> tuple[str, float]:
    """A cron expression for the next whole minute (at least 10 s ahead) read in ``zone``,
    and that instant: in any other zone it names a time hours away."""
    now = datetime.now(ZoneInfo(zone))
    at = (now + timedelta(seconds=70)).replace(second=0, microsecond=0)
    return f"{at.minute} {at.hour} * * *", at.timestamp()


def test_timers_services_channels_and_a_crontab_in_a_time_zone(
    kafka_bootstrap: str, unique: str
) -> None:
    cron, due = next_minute_in("Asia/Kathmandu")  # UTC+05:45
    env = program_env(
        kafka_bootstrap,
        SCHEDULER_APP_ID=unique,
        SCHEDULER_CRON=cron,
        SCHEDULER_TZ="Asia/Kathmandu",
    )
    cluster = Clusterctl("tests.programs.scheduler", "up", "--workers", "2", env=env)
    said = Said(cluster)
    try:
        wait_until_sync(lambda: len(said.pids("tick")) == 2, 60, "ticks from both workers")
        # Faust settings that do nothing here are named once, not refused; those that say
        # what shoal does anyway (store="memory://", web_enabled=False) are not named.
        warned = [line for line in cluster.lines if "do nothing here" in line]
        assert len(warned) == 1, warned
        assert "worker_redirect_stdouts" in warned[0] and "reply_to_prefix" in warned[0]
        assert "store" not in warned[0] and "web_enabled" not in warned[0]
        # Each worker runs the service, whose timer feeds the channel its agent reads.
        wait_until_sync(lambda: len(said.pids("doubled")) == 2, 30, "channel values")
        assert said.pids("service-start") == said.pids("tick")
        doubled = [int(detail[0]) for _, _, _, detail in said.lines("doubled")]
        assert all(n % 2 == 0 for n in doubled)
        # The leader timer runs in one process only, which knows it is the leader.
        wait_until_sync(lambda: len(said.lines("leader")) >= 8, 30, "leader ticks")
        assert len(said.pids("leader")) == 1
        assert all(detail == ["True"] for _, _, _, detail in said.lines("leader"))
        complete = said.lines("rebalanced")
        assert {pid for _, pid, _, _ in complete} == said.pids("tick")
        assert [pid for _, pid, _, d in complete if d == ["True"]] == list(said.pids("leader"))
        # The crontab fires at that minute in Kathmandu (on the leader: once).
        wait_until_sync(lambda: said.lines("cron"), due - time.time() + 20, "the crontab")
        [(_, pid, fired, detail)] = said.lines("cron")
        assert detail == ["Asia/Kathmandu"]
        assert said.pids("leader") == {pid}
        assert due - 0.5 <= fired <= due + 5, (datetime.fromtimestamp(fired), cron)
        assert cluster.stop() == 0
        assert said.pids("service-stop") == said.pids("tick")
    finally:
        cluster.kill()


def test_the_leader_is_one_process_of_the_cluster_and_moves_when_its_host_dies(
    kafka_bootstrap: str, unique: str
) -> None:
    env = dict(program_env(kafka_bootstrap, SCHEDULER_APP_ID=unique))
    env["SHOAL_BROKER_SESSION_TIMEOUT"] = "6"  # how long the group waits for a dead host
    hosts = {
        name: Clusterctl(
            "tests.programs.scheduler",
            "up",
            "--workers",
            "2",
            env={**env, "SCHEDULER_HOST": name},
        )
        for name in ("a", "b")
    }
    said = Said(*hosts.values())
    try:
        wait_until_sync(
            lambda: {host for host, _, _, _ in said.lines("tick")} == {"a", "b"},
            60,
            "ticks on both hosts",
        )
        try:
            wait_until_sync(lambda: len(said.lines("rebalanced")) >= 4, 60, "both hosts assigned")
        except AssertionError as exc:
            logs = "\n".join(
                f"--- {n}:\n"
                + "".join(line for line in h.lines if line.startswith(("[", "rebalanced")))[-6000:]
                for n, h in hosts.items()
            )
            raise AssertionError(f"{exc}\n{logs}") from None
        settled = time.time()
        wait_until_sync(
            lambda: len([s for s in said.lines("leader") if s[2] > settled]) >= 12,
            30,
            "leader ticks",
        )
        leader_ticks = said.lines("leader")
        # One leader at a time: the pids of the leader's ticks change only at handovers,
        # never back and forth as two leaders' would.
        runs = [leader_ticks[0][1]]
        for _, pid, _, _ in leader_ticks[1:]:
            if pid != runs[-1]:
                runs.append(pid)
        assert len(runs) <= 3, runs
        host, pid, _, _ = leader_ticks[-1]
        other = "b" if host == "a" else "a"
        # The leader's host dies: the other host's leader takes over within seconds.
        killed = time.time()
        hosts[host].kill()

        def new_leader() -> list[tuple[str, int, float, list[str]]]:
            return [s for s in said.lines("leader") if s[0] == other and s[2] > killed]

        wait_until_sync(new_leader, 30, "a leader on the other host")
        took = new_leader()[0][2] - killed
        assert took < 15, f"the leader moved {took:.1f} s after its host died"
        # The dead host's workers stop on their own (no supervisor), and with them its
        # leader: its last tick came before the new leader's first.
        last_old = max(s[2] for s in said.lines("leader") if s[0] == host)
        assert last_old < new_leader()[0][2]
        assert hosts[other].stop() == 0
    finally:
        for proc in hosts.values():
            proc.kill()


def test_a_command_asks_an_agent_and_exits(kafka_bootstrap: str, unique: str) -> None:
    env = program_env(kafka_bootstrap, GREETER_APP_ID=unique)
    worker = Clusterctl("tests.programs.greeter", "worker", env=env)
    try:
        worker.wait_for("started", 60)
        # clusterctl worker's lines say "worker", not "supervisor".
        assert any(f"[{unique} worker " in line for line in worker.lines)
        assert not any(f"[{unique} supervisor " in line for line in worker.lines)
        script = str(ROOT / "tests" / "programs" / "greeter.py")

        def command(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90, check=False
            )

        # As a script (app.main()), with an argument and an option.
        done = command(sys.executable, script, "hello", "Ann", "--times", "2")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["hello Ann", "hello Ann"]
        # Through clusterctl, with the app named.
        cli = [sys.executable, "-m", "shoal.cluster.cli", "-A", "tests.programs.greeter"]
        done = command(*cli, "hello", "Bob")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["hello Bob"]
        # A command that raises exits 1 and says why; --help lists the commands.
        done = command(sys.executable, script, "broken")
        assert done.returncode == 1
        assert "Error: it failed on purpose" in done.stderr
        listed = command(sys.executable, script, "--help").stdout
        assert "hello   Ask the greeter and print its answers." in listed
        assert "--times INTEGER" in command(*cli, "hello", "--help").stdout
        assert worker.stop() == 0
    finally:
        worker.kill()

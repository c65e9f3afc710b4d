#!/usr/bin/env python3
"""Run a single-node Apache Kafka (KRaft) broker on 127.0.0.1 for development and CI.

Standard library only: it runs before shoal or confluent_kafka is installed. It ships inside
the shoal package (with pom.xml, server.properties and log4j2.yaml beside it), so it is both a
script (``ops/kafka/kafka up|down|status|logs|fetch`` in a checkout) and the module behind
``clusterctl kafka``, also from an installed wheel. The jars are fetched once with Maven
(pom.xml); each broker keeps its config, KRaft storage, pid file and logs in its data
directory, ``~/.cache/shoal/kafka/<port>`` by default, so brokers on different ports run side
by side.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

# The tool runs as a script (ops/kafka/kafka, ops/setup), maybe before shoal is installed, and
# as a module of the package (clusterctl kafka): its sibling modules are found either way.
if __package__:
    from shoal.cluster.devbroker.base import BrokerOpsError, locked, quieted, say
    from shoal.cluster.devbroker.jars import cache_dir, fetch_jars, kafka_version, require
    from shoal.cluster.devbroker.wire import DEFAULT_PORT, HOST, is_answering, metadata_brokers
else:  # pragma: no cover - run as a script
    from base import BrokerOpsError, locked, quieted, say  # type: ignore[import-not-found,no-redef]
    from jars import cache_dir, fetch_jars, kafka_version, require  # type: ignore[import-not-found,no-redef]
    from wire import DEFAULT_PORT, HOST, is_answering, metadata_brokers  # type: ignore[import-not-found,no-redef]

__all__ = [
    "DEFAULT_PORT",
    "HOST",
    "BrokerInfo",
    "BrokerOpsError",
    "cache_dir",
    "describe",
    "down",
    "fetch_jars",
    "is_answering",
    "kafka_version",
    "metadata_brokers",
    "show_logs",
    "status",
    "up",
]

HERE = Path(__file__).resolve().parent
PID_FILE, CONFIG_FILE, STORAGE_DIR = "broker.pid", "server.properties", "log"
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # brokers started by this process


@dataclass(frozen=True)
class BrokerInfo:
    bootstrap: str
    port: int
    controller_port: int
    data_dir: Path
    log_file: Path
    pid: int


def data_dir_for(port: int = DEFAULT_PORT, data_dir: Path | None = None) -> Path:
    """--data-dir, else $SHOAL_KAFKA_DATA_DIR, else ~/.cache/shoal/kafka/<port>."""
    chosen = data_dir or os.environ.get("SHOAL_KAFKA_DATA_DIR")
    default = Path.home() / ".cache" / "shoal" / "kafka" / str(port)
    return Path(chosen).expanduser().resolve() if chosen else default


def log_file(data: Path) -> Path:
    return data / "logs" / "server.log"


def new_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding (22 chars), never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        if not cid.startswith("-"):  # StorageTool would take it for an option
            return cid


# ---- processes and data directories ----


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None  # also reaps it, so no zombie lingers
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie still accepts signal 0
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    return True


def _running_pid(data: Path) -> int | None:
    """The pid in the pid file if that process is alive and is our broker for this data dir."""
    try:
        pid = int((data / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    with contextlib.suppress(OSError):  # guard against pid reuse where /proc exists
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"kafka.Kafka" not in cmdline or str(data / CONFIG_FILE).encode() not in cmdline:
            return None
    return pid


def _read_ports(data: Path) -> tuple[int, int] | None:
    """(port, controller_port) from the rendered config of a data dir."""
    with contextlib.suppress(OSError, ValueError, IndexError, KeyError):
        for line in (data / CONFIG_FILE).read_text().splitlines():
            if line.startswith("listeners="):
                urls = [url.partition("://") for url in line.split("=", 1)[1].split(",")]
                ports = {name: int(rest.rsplit(":", 1)[1]) for name, _, rest in urls}
                return ports["PLAINTEXT"], ports["CONTROLLER"]
    return None


def _info(data: Path, port: int, cport: int, pid: int) -> BrokerInfo:
    return BrokerInfo(f"{HOST}:{port}", port, cport, data, log_file(data), pid)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM does
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _tail(path: Path, lines: int, since: int = 0) -> list[str]:
    """The last lines of a file, from byte offset `since` on."""
    with contextlib.suppress(OSError), path.open("rb") as handle:
        handle.seek(max(since, handle.seek(0, os.SEEK_END) - 256 * 1024))
        return handle.read().decode(errors="replace").splitlines(keepends=True)[-lines:]
    return []


def _jvm(java: str, libs: Path, data: Path, main_class: str, *args: str) -> list[str]:
    heap = os.environ.get("SHOAL_KAFKA_HEAP", "-Xms256m -Xmx1g").split()
    log4j = f"-Dlog4j2.configurationFile={HERE / 'log4j2.yaml'}"
    opts = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true", log4j]
    opts += [f"-Dkafka.logs.dir={data / 'logs'}", "-cp", f"{libs}/*"]
    return [java, *heap, *opts, main_class, *args]


def _prepare(java: str, libs: Path, data: Path, port: int, cport: int) -> Path:
    """Render server.properties and format the KRaft storage (once per data dir)."""
    (data / "logs").mkdir(parents=True, exist_ok=True)
    config, template = data / CONFIG_FILE, Template((HERE / CONFIG_FILE).read_text())
    config.write_text(
        template.substitute(port=port, controller_port=cport, log_dirs=data / STORAGE_DIR)
    )
    if (data / STORAGE_DIR / "meta.properties").exists():
        return config
    args = ["format", "-t", new_cluster_id(), "-c", str(config)]
    cmd = _jvm(java, libs, data, "kafka.tools.StorageTool", *args)
    res = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        out = "".join((res.stdout + res.stderr).splitlines(keepends=True)[-15:]).rstrip()
        why = f"formatting the KRaft storage in {data / STORAGE_DIR} failed (exit {res.returncode})"
        raise BrokerOpsError(
            f"{why}: fix the cause below (if the storage is damaged, delete {data})\n{out}"
        )
    return config


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    _CHILDREN.pop(pid, None)
    return True


def _startup_log(data: Path, since: int) -> str:
    """What this start wrote: the JVM's own output (kafka.out), then the log4j log."""
    parts = (_tail(data / "logs" / "kafka.out", 15), _tail(log_file(data), 15, since))
    return "---\n".join("".join(part) for part in parts if part).rstrip()


def _existing(data: Path, port: int, timeout: float) -> BrokerInfo | None:
    """The broker already running on this data dir, once it answers; None if there is none."""
    pid = _running_pid(data)
    if pid is None:
        (data / PID_FILE).unlink(missing_ok=True)  # stale: its process is gone
        return None
    ports = _read_ports(data) or (port, port + 1)
    if ports[0] != port:
        raise BrokerOpsError(
            f"data dir {data} is used by the broker on port {ports[0]}: pick another --data-dir"
        )
    deadline = time.monotonic() + timeout
    while not is_answering(HOST, port) and _alive(pid):  # e.g. still starting in the foreground
        if time.monotonic() > deadline:
            raise BrokerOpsError(
                f"broker pid {pid} does not answer on {HOST}:{port}: run `down` and retry"
            )
        time.sleep(0.2)
    return _info(data, *ports, pid) if _alive(pid) else None


def _check_ports(port: int, cport: int) -> None:
    for p, flag in ((port, "--port"), (cport, "--controller-port")):
        if not _port_free(p):
            why = f"port {p} on {HOST} is already in use by another process"
            if p == port and is_answering(HOST, p):
                why += " (a Kafka broker answers there: another data dir?)"
            raise BrokerOpsError(f"{why}: choose a free one with {flag}")


def up(
    port: int = DEFAULT_PORT,
    *,
    controller_port: int | None = None,
    data_dir: Path | None = None,
    timeout: float = 90.0,
    quiet: bool = False,
    foreground: bool = False,
) -> BrokerInfo:
    """Start a broker (or find it already running) and wait until it answers."""
    cport = controller_port if controller_port is not None else port + 1
    data, version = data_dir_for(port, data_dir), kafka_version()
    where = f"{HOST}:{port} (data: {data}, logs: {log_file(data)})"
    with quieted(quiet), locked(data / ".lock"):
        info = _existing(data, port, timeout)
        if info is not None:
            say(f"Kafka {version} already running on {where}, pid {info.pid}")
            return info
        java = require("java")
        _check_ports(port, cport)
        libs = fetch_jars()
        cmd = _jvm(java, libs, data, "kafka.Kafka", str(_prepare(java, libs, data, port, cport)))
        if foreground:
            (data / PID_FILE).write_text(f"{os.getpid()}\n")  # exec keeps the pid
            say(f"Kafka {version} starting in the foreground on {where}; Ctrl-C stops it")
            os.execv(java, cmd)
        started, since = time.monotonic(), _size(log_file(data))
        with (data / "logs" / "kafka.out").open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                cwd=data,
                start_new_session=True,
            )
        _CHILDREN[proc.pid] = proc
        (data / PID_FILE).write_text(f"{proc.pid}\n")
        try:
            while not is_answering(HOST, port, timeout=1.0):
                if proc.poll() is not None:
                    why = f"the Kafka broker exited (code {proc.returncode}) during startup"
                    fix = f"fix the cause logged below (logs: {data / 'logs'})"
                    raise BrokerOpsError(f"{why}: {fix}\n{_startup_log(data, since)}")
                if time.monotonic() > started + timeout:
                    why = f"the Kafka broker did not answer on {HOST}:{port} within {timeout:.0f} s"
                    fix = f"see {log_file(data)}, or retry with a longer --timeout"
                    raise BrokerOpsError(f"{why} and was killed: {fix}")
                time.sleep(0.2)
        except BaseException:  # also Ctrl-C: never leave a half-started broker behind
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            (data / PID_FILE).unlink(missing_ok=True)
            raise
        say(f"Kafka {version} listening on {where} after {time.monotonic() - started:.1f} s")
        return _info(data, port, cport, proc.pid)


def _probe(port: int, data_dir: Path | None) -> tuple[BrokerInfo, bool]:
    """(what the data dir says, with pid 0 if its broker does not run; whether port answers)"""
    data = data_dir_for(port, data_dir)
    port, cport = _read_ports(data) or (port, port + 1)
    return _info(data, port, cport, _running_pid(data) or 0), is_answering(HOST, port)


def status(port: int = DEFAULT_PORT, *, data_dir: Path | None = None) -> BrokerInfo | None:
    """The broker started here on that port/data dir, if it runs and answers; else None."""
    info, answering = _probe(port, data_dir)
    return info if info.pid and answering else None


def describe(port: int = DEFAULT_PORT, *, data_dir: Path | None = None) -> tuple[bool, str]:
    """(running and answering, one line saying so) for the `status` commands."""
    info, answering = _probe(port, data_dir)
    where = f"{info.bootstrap} (data: {info.data_dir}, logs: {info.log_file})"
    if info.pid and answering:
        return True, f"Kafka {kafka_version()} running on {where}, pid {info.pid}"
    if info.pid:
        return False, f"Kafka broker pid {info.pid} runs but does not answer on {where}"
    other = "; a broker not started by ops/kafka answers there" if answering else ""
    return False, f"Kafka is not running on {info.bootstrap} (data: {info.data_dir}){other}"


def down(
    port: int = DEFAULT_PORT,
    *,
    data_dir: Path | None = None,
    timeout: float = 30.0,
    quiet: bool = False,
) -> bool:
    """Stop the broker of that port/data dir: SIGTERM, then SIGKILL. False if none ran."""
    info, _ = _probe(port, data_dir)
    where = f"{info.bootstrap} (data: {info.data_dir})"
    with quieted(quiet):
        if not info.pid:
            (info.data_dir / PID_FILE).unlink(missing_ok=True)
            say(f"no Kafka broker started by ops/kafka runs on {where}; nothing to stop")
            return False
        how = "stopped"
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, sig)
            if _wait_exit(info.pid, wait):
                break
            how = f"killed (no clean exit within {timeout:.0f} s)"
        (info.data_dir / PID_FILE).unlink(missing_ok=True)
        say(f"{how} Kafka broker pid {info.pid} on {where}")
        return True


def show_logs(
    port: int = DEFAULT_PORT, *, data_dir: Path | None = None, lines: int = 50, follow: bool = False
) -> int:
    """Print the last lines of the broker log; with follow, keep printing until Ctrl-C."""
    log = log_file(data_dir_for(port, data_dir))
    if not log.exists():
        print(f"no broker log at {log}: start one with `up --port {port}`", file=sys.stderr)
        return 1
    sys.stdout.write("".join(_tail(log, lines)))
    sys.stdout.flush()
    pos = _size(log)
    with contextlib.suppress(KeyboardInterrupt):
        while follow:  # poll the file for new lines
            pos = 0 if _size(log) < pos else pos  # rotated: read the new file from the top
            with log.open("rb") as handle:
                handle.seek(pos)
                chunk = handle.read()
            pos += len(chunk)
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()
            time.sleep(0 if chunk else 0.2)
    return 0


_COMMANDS = {
    "up": "start a broker and wait until it answers a Metadata request (no-op if it runs)",
    "down": "stop the broker started by `up` (SIGTERM, then SIGKILL after 30 s)",
    "status": "print one line about the broker; exit 0 if it runs and answers, else 1",
    "logs": "print the end of the broker's log4j log (logs/server.log in its data dir)",
    "fetch": "only fetch the jars with Maven into $SHOAL_KAFKA_CACHE or ~/.cache/shoal, once",
}


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="ops/kafka/kafka", description=__doc__, formatter_class=fmt
    )
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    cmd = {
        name: sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        for name, text in _COMMANDS.items()
    }
    port_help = f"client port on {HOST} (default {DEFAULT_PORT})"
    dir_help = "default: $SHOAL_KAFKA_DATA_DIR, else <repo>/.cache/kafka/<port>"
    for name in ("up", "down", "status", "logs"):
        cmd[name].add_argument("--port", type=int, default=DEFAULT_PORT, help=port_help)
        cmd[name].add_argument("--data-dir", type=Path, help=dir_help)
    add = cmd["up"].add_argument
    add("--controller-port", type=int, help="KRaft controller port (default: --port + 1)")
    add("--timeout", type=float, default=90.0, help="seconds to wait for it (default 90)")
    add("--foreground", action="store_true", help="run it in this process, not detached")
    add = cmd["logs"].add_argument
    add("-n", "--lines", type=int, default=50, help="how many lines (default 50)")
    add("-f", "--follow", action="store_true", help="keep printing new lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "fetch":
            print(fetch_jars())
        elif args.cmd == "up":
            up(
                args.port,
                controller_port=args.controller_port,
                data_dir=args.data_dir,
                timeout=args.timeout,
                foreground=args.foreground,
            )
        elif args.cmd == "down":
            down(args.port, data_dir=args.data_dir)
        elif args.cmd == "status":
            running, line = describe(args.port, data_dir=args.data_dir)
            print(line)
            return 0 if running else 1
        elif args.cmd == "logs":
            return show_logs(
                args.port, data_dir=args.data_dir, lines=args.lines, follow=args.follow
            )
    except BrokerOpsError as exc:
        print(f"ops/kafka: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

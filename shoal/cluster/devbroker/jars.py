"""The Kafka jars the development broker runs from: fetched once with Maven (pom.xml beside
this module) into a cache directory. Standard library only."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

# The tool runs as a script (ops/kafka/kafka, ops/setup), maybe before shoal is installed, and
# as a module of the package (clusterctl kafka): its sibling modules are found either way.
if __package__:
    from shoal.cluster.devbroker.base import BrokerOpsError, locked, quieted, say
else:  # pragma: no cover - run as a script
    from base import BrokerOpsError, locked, quieted, say  # type: ignore[import-not-found,no-redef]

POM = Path(__file__).resolve().parent / "pom.xml"
DEP_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_INSTALL = {
    "java": "install a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless), put it on PATH",
    "mvn": "install Apache Maven 3.8+ (e.g. apt-get install maven); it fetches the Kafka jars once",
}


def kafka_version() -> str:
    node = ET.parse(POM).find(
        "m:properties/m:kafka.version", {"m": "http://maven.apache.org/POM/4.0.0"}
    )
    if node is None or not node.text:
        raise BrokerOpsError(f"{POM} has no <kafka.version> property: restore it from git")
    return node.text.strip()


def cache_dir() -> Path:
    """Where the jars live: $SHOAL_KAFKA_CACHE or ~/.cache/shoal/kafka-<version>/libs."""
    env = os.environ.get("SHOAL_KAFKA_CACHE")
    default = Path.home() / ".cache" / "shoal" / f"kafka-{kafka_version()}" / "libs"
    return Path(env).expanduser().resolve() if env else default


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BrokerOpsError(f"`{tool}` is not on PATH: {_INSTALL[tool]}")
    return path


def _jars_complete(libs: Path, version: str) -> bool:
    return any(libs.glob(f"kafka_*-{version}.jar")) and any(libs.glob("log4j-core-*.jar"))


def fetch_jars(*, quiet: bool = False) -> Path:
    """Download the broker jars once; return the directory holding them."""
    libs, version = cache_dir(), kafka_version()
    if _jars_complete(libs, version):
        return libs
    require("java")
    mvn = require("mvn")
    with quieted(quiet), locked(libs.parent / ".fetch.lock"):
        if _jars_complete(libs, version):  # another process fetched them while we waited
            return libs
        say(f"fetching Kafka {version} jars with Maven into {libs} (once) ...")
        for leftover in libs.parent.glob(".libs-*"):  # from an interrupted fetch
            shutil.rmtree(leftover, ignore_errors=True)
        started, log = time.monotonic(), libs.parent / "maven-fetch.log"
        tmp = Path(tempfile.mkdtemp(prefix=".libs-", dir=libs.parent))
        goal = f"{DEP_PLUGIN}:copy-dependencies"
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            goal,
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ]
        with log.open("wb") as out:
            rc = subprocess.run(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL).returncode
        if rc != 0 or not _jars_complete(tmp, version):
            shutil.rmtree(tmp, ignore_errors=True)
            why = f"Maven could not fetch the Kafka {version} jars (exit {rc})"
            raise BrokerOpsError(f"{why}: read {log}, fix the cause (network? settings?), retry")
        if libs.exists():  # an incomplete or other-version cache: replace it whole
            shutil.rmtree(libs)
        os.rename(tmp, libs)  # atomic: a half-done download is never used
        say(f"fetched {len(list(libs.glob('*.jar')))} jars in {time.monotonic() - started:.1f} s")
    return libs

"""The benchmarks' own virtualenvs, one per system or tool, under ``.cache/bench-venvs``.

Each is made on first use with its pinned packages, so a system under comparison never
shares dependencies with shoal or with another system, and no benchmark tool (matplotlib,
py-spy) becomes a dependency of shoal. shoal itself runs from the project's ``.venv``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import ROOT

VENVS = ROOT / ".cache" / "bench-venvs"

#: What each virtualenv holds: pip requirements, and the distributions whose versions the
#: results name.
SPECS: dict[str, tuple[list[str], list[str]]] = {
    "quix": (["quixstreams==3.28.1"], ["quixstreams", "confluent-kafka"]),
    "faust": (
        ["faust-streaming>=0.15,<0.16"],  # the newest 0.15.x the package index serves
        ["faust-streaming", "aiokafka", "mode-streaming"],
    ),
    "plot": (["matplotlib==3.11.2"], ["matplotlib"]),
    "pyspy": (["py-spy==0.4.3"], ["py-spy"]),
}


def venv_python(name: str) -> Path:
    """The python of virtualenv ``name``, made and filled on first use."""
    requirements = SPECS[name][0]
    path = VENVS / name
    python = path / "bin" / "python"
    if not python.exists():
        print(f"  making {path} with {' '.join(requirements)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *requirements],
            check=True,
        )
    return python


def venv_bin(name: str, program: str) -> Path:
    """A program installed in virtualenv ``name`` (``faust``, ``py-spy``)."""
    return venv_python(name).parent / program


def versions(name: str) -> dict[str, str]:
    """The installed versions of the distributions virtualenv ``name`` is there for."""
    code = (
        "import json, sys\n"
        "from importlib.metadata import version\n"
        "print(json.dumps({d: version(d) for d in sys.argv[1:]}))"
    )
    out = subprocess.run(
        [str(venv_python(name)), "-c", code, *SPECS[name][1]],
        check=True,
        capture_output=True,
        text=True,
    )
    found: dict[str, str] = json.loads(out.stdout)
    return found


def shoal_versions() -> dict[str, str]:
    """shoal's, and those of what its hot path runs on, from this (the project's) python."""
    from importlib.metadata import version

    import confluent_kafka

    found = {dist: version(dist) for dist in ("shoal", "confluent-kafka")}
    found["librdkafka"] = confluent_kafka.libversion()[0]
    for dist in ("msgspec", "uvloop", "rocksdict"):
        found[dist] = version(dist)
    return found


def machine() -> dict[str, Any]:
    """The machine the figures come from."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        with open("/proc/meminfo") as f:
            memory = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }

"""Where settings come from, and in which order.

Each source overrides the one before, as in Faust, where the environment wins over the code:

1. the defaults;
2. keyword arguments (``App('orders', topic_partitions=16)``);
3. a config file: ``$SHOAL_CONFIG`` if set, else ``shoal.toml`` in the working directory, else
   the ``[tool.shoal]`` table of ``pyproject.toml`` in the working directory;
4. environment variables: first Faust's names (``BROKER_URL``, ``APP_VERSION``,
   ``TOPIC_PARTITIONS`` ..., prefixed by ``env_prefix`` when it is set), then shoal's own
   ``SHOAL_<NAME>``, which win over Faust's for the same setting;
5. command-line flags.

Assigning ``app.conf.<name>`` after that, before the app starts, overrides them all.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from shoal.config.faust import FAUST_ENV
from shoal.config.names import setting_name, unknown_setting
from shoal.config.settings import Settings
from shoal.exceptions import ConfigError

ENV_PREFIX = "SHOAL_"
# SHOAL_* variables read by shoal's tooling (the ops scripts, the test harness), not settings.
_TOOL_ENV = re.compile(r"^SHOAL_(APP|CONFIG|OPS_DIR|KAFKA_\w+|TEST_\w+|BENCH_\w+)$")


def find_config_file(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The config file that applies: ``$SHOAL_CONFIG``, ``shoal.toml`` or ``pyproject.toml``."""
    env = os.environ if env is None else env
    if env.get("SHOAL_CONFIG"):
        path = Path(env["SHOAL_CONFIG"])
        if not path.is_file():
            raise ConfigError(f"SHOAL_CONFIG points at {str(path)!r}, which is not a file")
        return path
    base = cwd or Path.cwd()
    for candidate in (base / "shoal.toml", base / "pyproject.toml"):
        if candidate.is_file():
            return candidate
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings table of a config file (``[tool.shoal]`` for a pyproject.toml)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from exc
    table = data.get("tool", {}).get("shoal", {}) if path.name == "pyproject.toml" else data
    if not isinstance(table, dict):
        raise ConfigError(f"config file {str(path)!r}: the shoal settings must be a table")
    return table


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_file: Path | bool | None = True,
    base: Settings | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from every source, in the order of the module docstring.

    ``overrides`` are the keyword arguments (``App(...)``'s); ``flags`` the command-line
    flags. In both, ``None`` means not given, so flags that were not given can be passed
    straight through. ``env`` defaults to ``os.environ``; as in Faust, ``App(...,
    env=mapping)`` gives the app another one. ``config_file=True`` finds the file as
    :func:`find_config_file` does; ``False`` or ``None`` reads none; a Path reads that file.
    """
    kwargs = dict(overrides or {})
    given_env = kwargs.pop("env", None)
    if env is None:
        env = os.environ if given_env is None else given_env
    if not isinstance(env, Mapping):
        raise ConfigError(f"'env' must be a mapping of environment variables, not {env!r}")
    settings = Settings() if base is None else _copy(base)
    settings.apply(_items(kwargs, "keyword argument"), allow_id=True, skip_none=True)
    path = find_config_file(env=env) if config_file is True else config_file or None
    if path is not None:
        table = read_config_file(path)
        settings.apply(_items(table, f"config file {path}"), allow_id=False)
    faust = dict(_faust_env(env, _env_prefix(env, settings)))
    settings.apply(faust.values(), allow_id=False)
    settings.apply(_shoal_env(env, skip=set(faust)), allow_id=False)
    settings.apply(_items(flags or {}, "command-line flag"), allow_id=True, skip_none=True)
    settings.check()
    return settings


def _items(values: Mapping[str, Any], source: str) -> Iterator[tuple[str, Any, str]]:
    return ((name, value, source) for name, value in values.items())


def _copy(base: Settings) -> Settings:
    copy = replace(base)  # unlocked, whatever the base is
    copy._sources = dict(base._sources)
    return copy


def _env_prefix(env: Mapping[str, str], settings: Settings) -> str | None:
    """Faust's ``env_prefix``: ``APP_ENV_PREFIX`` (read unprefixed) wins over the code's, and
    ``SHOAL_ENV_PREFIX`` over both."""
    for variable in ("SHOAL_ENV_PREFIX", "APP_ENV_PREFIX"):
        if variable in env:
            return env[variable] or None
    return settings.env_prefix


def _faust_env(
    env: Mapping[str, str], prefix: str | None
) -> Iterator[tuple[str, tuple[str, Any, str]]]:
    """(variable, item) of each of Faust's variables that is set."""
    for name, variable in FAUST_ENV.items():
        if prefix and name != "env_prefix":
            variable = f"{prefix.rstrip('_')}_{variable}"
        if variable in env:
            yield variable, (name, env[variable], f"environment variable {variable}")


def _shoal_env(env: Mapping[str, str], skip: set[str]) -> Iterator[tuple[str, Any, str]]:
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or _TOOL_ENV.match(key) or key in skip:
            continue
        source = f"environment variable {key}"
        name = setting_name(key[len(ENV_PREFIX) :])
        if name is None:
            raise unknown_setting(key[len(ENV_PREFIX) :].lower(), source)
        yield name, value, source

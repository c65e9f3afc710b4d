"""Value parsers: each turns what a source gave (a Python object, a TOML value, an environment
string) into the typed value of one setting, or raises :class:`Invalid` saying what is allowed.

The settings module turns an :class:`Invalid` into a :class:`~shoal.exceptions.ConfigError`
that also names the setting, the value and its source.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Parser = Callable[[Any], T]


class Invalid(ValueError):
    """A parser's complaint: what is allowed."""


def integer(minimum: int, maximum: int | None = None, unit: str = "") -> Parser[int]:
    allowed = (
        f"expected an integer >= {minimum}"
        if maximum is None
        else f"expected an integer from {minimum} to {maximum}"
    ) + (f" {unit}" if unit else "")

    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise Invalid(allowed)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise Invalid(allowed) from None
        if isinstance(value, float) and value != number:
            raise Invalid(allowed)
        if number < minimum or (maximum is not None and number > maximum):
            raise Invalid(allowed)
        return number

    return parse


def seconds(*, zero: bool = False, maximum: float | None = None) -> Parser[float]:
    """Seconds as a number, a numeric string or a ``timedelta`` (Faust's ``want_seconds``)."""
    allowed = "expected a number of seconds " + (">= 0" if zero else "> 0")
    if maximum is not None:
        allowed += f" and <= {maximum:g}"

    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise Invalid(allowed)
        if isinstance(value, datetime.timedelta):
            value = value.total_seconds()
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise Invalid(allowed) from None
        too_low = number < 0 if zero else not number > 0
        if too_low or number != number or number == float("inf"):
            raise Invalid(allowed)
        if maximum is not None and number > maximum:
            raise Invalid(allowed)
        return number

    return parse


def optional(parse: Parser[T]) -> Parser[T | None]:
    """``None`` (or an empty string, as an environment variable gives it) means not set."""

    def parse_optional(value: Any) -> T | None:
        return None if value is None or value == "" else parse(value)

    return parse_optional


def choice(*allowed: str) -> Parser[str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower().replace("-", "_")
        if text not in allowed:
            raise Invalid("allowed: " + ", ".join(repr(a) for a in allowed))
        return text

    return parse


def boolean(value: Any) -> bool:
    """As Faust reads a flag: ``''`` (an empty variable) is false too."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise Invalid("expected true or false")


_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def is_name(text: str) -> bool:
    """Whether ``text`` can name a topic, an app or a group."""
    return bool(_NAME.match(text))


def name(value: Any) -> str:
    text = str(value).strip()
    if not is_name(text):
        raise Invalid("expected a non-empty name of letters, digits, '.', '_' or '-'")
    return text


def text(value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise Invalid("expected a string")
    return str(value)


def anything(value: Any) -> Any:
    return value


def host(value: Any) -> str:
    text = str(value).strip()
    if ":" in text:  # only an IPv6 address has colons
        try:
            ipaddress.IPv6Address(text.strip("[]"))
        except ValueError:
            raise Invalid("expected a host name or IP address, e.g. 127.0.0.1") from None
        return text.strip("[]")
    if not re.fullmatch(r"[A-Za-z0-9.-]+", text):
        raise Invalid("expected a host name or IP address, e.g. 127.0.0.1")
    return text


def port(minimum: int) -> Parser[int]:
    low = "0 (any free port)" if minimum == 0 else str(minimum)
    check = integer(minimum, 65535)

    def parse(value: Any) -> int:
        try:
            return check(value)
        except Invalid:
            raise Invalid(f"expected a port number from {low} to 65535") from None

    return parse


def serializer(value: Any) -> str:
    text = str(value).strip()
    parts = text.split("|")
    if not all(is_name(p.strip()) for p in parts):
        raise Invalid("expected a codec name such as 'json', 'msgpack', 'raw' or 'json|binary'")
    return "|".join(p.strip() for p in parts)


def template(value: Any) -> str:
    """A topic name in which ``{id}`` is replaced by the app id."""
    allowed = "expected a topic name; '{id}' is replaced by the app id"
    text = str(value).strip()
    try:
        formatted = text.format(id="app")
    except (KeyError, IndexError, ValueError, AttributeError):
        raise Invalid(allowed) from None
    if not is_name(formatted):
        raise Invalid(allowed)
    return text


def id_format(value: Any) -> str:
    """Faust's ``id_format``: ``{id}`` is the app's name, ``{self}`` the settings."""
    if not isinstance(value, str) or "{id}" not in value:
        raise Invalid("expected a format string containing '{id}', e.g. '{id}-v{self.version}'")
    return value


#: Broker URL schemes: Faust's transports, all of them Kafka to shoal.
BROKER_SCHEMES = ("kafka", "aiokafka", "confluent")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def parse_broker(value: Any) -> tuple[str, ...]:
    """Parse Faust-style broker URLs into ``host:port`` strings.

    Accepts ``"kafka://h1:9092;kafka://h2:9092"``, ``"h1:9092,h2"``, ``aiokafka://`` and
    ``confluent://`` URLs (every Faust transport is Kafka to shoal), scheme-less items, or a
    list of any of these. A missing port means 9092, as in Faust.
    """
    items: Iterable[Any] = value if isinstance(value, list | tuple) else [value]
    allowed = (
        "expected host:port or kafka://host:port (also aiokafka:// or confluent://), "
        "separated by ';' or ','"
    )
    out: list[str] = []
    for item in items:
        for raw in re.split(r"[;,\s]+", str(item).strip()):
            if not raw:
                continue
            scheme = _SCHEME.match(raw)
            if scheme is not None and scheme.group(1).lower() not in BROKER_SCHEMES:
                raise Invalid(
                    f"unsupported scheme {scheme.group(1)!r}: shoal talks to Kafka; "
                    "use kafka://, aiokafka://, confluent:// or no scheme"
                )
            address = raw[scheme.end() :] if scheme else raw
            address = address.rstrip("/")
            if address.endswith("]") or ":" not in address:  # no port ([::1] is IPv6)
                host_part, port_part = address, "9092"
            else:
                host_part, _, port_part = address.rpartition(":")
            if (
                not host_part
                or "/" in host_part
                or not port_part.isdigit()
                or not 0 < int(port_part) < 65536
            ):
                raise Invalid(allowed)
            out.append(f"{host_part}:{int(port_part)}")
    if not out:
        raise Invalid("expected at least one broker address (kafka://host:port)")
    return tuple(out)


def timezone(value: Any) -> str:
    """An IANA zone name (``'UTC'``, ``'Europe/Oslo'``); a ``ZoneInfo``, ``timezone.utc`` or
    pytz zone given in code is kept by its name."""
    allowed = "expected an IANA time zone name such as 'UTC' or 'Europe/Oslo'"
    if isinstance(value, zoneinfo.ZoneInfo):
        return value.key
    if value is datetime.UTC:
        return "UTC"
    zone = getattr(value, "zone", None)  # a pytz zone, as Faust users give it
    text = zone if isinstance(zone, str) else value
    if not isinstance(text, str) or not text.strip():
        raise Invalid(allowed)
    text = text.strip()
    if text.upper() == "UTC":
        return "UTC"
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Invalid(allowed) from None
    return text


def path(value: Any) -> Path:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise Invalid("expected a path")
    return Path(value).expanduser()


def url(value: Any) -> str:
    text = str(value).strip()
    if not _SCHEME.match(text) and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text):
        raise Invalid("expected a URL such as 'memory://' or 'http://host:6066'")
    return text


def mapping(value: Any) -> dict[str, Any]:
    """A mapping, or its JSON text (as an environment variable gives it)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise Invalid("expected a mapping, or a JSON object") from None
    if not isinstance(value, Mapping):
        raise Invalid("expected a mapping, or a JSON object")
    return dict(value)


def symbol(value: Any) -> Any:
    """A class, or its import path ``'module:attribute'`` (kept, never imported)."""
    if isinstance(value, str) and not re.fullmatch(r"[\w.]+([:.][\w.]+)?", value.strip()):
        raise Invalid("expected a class or an import path such as 'module:Class'")
    return value.strip() if isinstance(value, str) else value


def severity(value: Any) -> str:
    text = str(value).strip().upper()
    levels = ("CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET")
    if text not in levels:
        raise Invalid("expected a log level such as 'WARN' or 'INFO'")
    return text


def acks(value: Any) -> str:
    """Faust's ``-1``/``'all'``, ``0`` and ``1`` as shoal's ``'all'``, ``'0'`` and ``'1'``."""
    text = str(value).strip().lower()
    if isinstance(value, bool) or text not in ("all", "-1", "0", "1"):
        raise Invalid("allowed: 'all' (or -1), '1', '0'")
    return "all" if text in ("all", "-1") else text


def compression(value: Any) -> str | None:
    text = "none" if value is None else str(value).strip().lower()
    allowed = ("none", "gzip", "snappy", "lz4", "zstd")
    if text not in allowed:
        raise Invalid("allowed: " + ", ".join(repr(a) for a in allowed))
    return None if text == "none" else text

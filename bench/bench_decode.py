"""Decode throughput of shoal's typed JSON decoder against baselines, measured in one run.

Run: ``.venv/bin/python bench/bench_decode.py``. Prints messages/s (best of several
rounds) for 200k JSON-encoded ``Add(a=.., b=..)`` values.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from shoal.model.codecs import make_decoder
from shoal.model.records import Record

MESSAGES = 200_000
ROUNDS = 7


class Add(Record):
    a: int
    b: int


class FrozenAdd(Record, frozen=True):  # type: ignore[misc]  # mypy's dataclass_transform limit
    a: int
    b: int


class NoGcAdd(Record, gc=False):
    a: int
    b: int


@dataclass
class PlainAdd:
    a: int
    b: int


def json_dataclass(data: bytes) -> PlainAdd:
    """The no-library baseline: stdlib json plus the validation a careful user writes."""
    obj = json.loads(data)
    if not isinstance(obj, dict):
        raise ValueError("expected an object")
    a, b = obj["a"], obj["b"]
    if type(a) is not int or type(b) is not int:
        raise TypeError("a and b must be int")
    return PlainAdd(a, b)


def best_rates(
    cases: Sequence[tuple[str, Callable[[bytes], Any]]], payloads: Sequence[bytes]
) -> list[float]:
    """Messages/s per case, best round; rounds interleave cases so machine noise is shared."""
    best = [float("inf")] * len(cases)
    for _ in range(ROUNDS):
        for i, (_, decode) in enumerate(cases):
            start = time.perf_counter()
            for data in payloads:
                decode(data)
            best[i] = min(best[i], time.perf_counter() - start)
    return [len(payloads) / seconds for seconds in best]


def decoded_pair(value: Any) -> tuple[int, int]:
    return (value["a"], value["b"]) if isinstance(value, dict) else (value.a, value.b)


def main() -> None:
    payloads = [msgspec.json.encode({"a": i, "b": i * 7 - 3}) for i in range(MESSAGES)]
    cases: list[tuple[str, Callable[[bytes], Any]]] = [
        ("shoal make_decoder('json', Add)", make_decoder("json", Add)),
        ("  same, coerce=False (strict)", make_decoder("json", Add, coerce=False)),
        ("  same, frozen=True record", make_decoder("json", FrozenAdd)),
        ("  same, gc=False record", make_decoder("json", NoGcAdd)),
        ("msgspec Decoder(Add).decode, bare", msgspec.json.Decoder(Add).decode),
        ("msgspec.json.decode, untyped dict", msgspec.json.decode),
        ("json.loads + dataclass + checks", json_dataclass),
    ]
    for name, decode in cases:  # all must decode the same before timing means anything
        assert decoded_pair(decode(payloads[3])) == (3, 18), name
    rates = best_rates(cases, payloads)
    reference = rates[-1]
    print(f"{MESSAGES:,} JSON messages, best of {ROUNDS} interleaved rounds")
    print(f"{'decoder':<36} {'msgs/s':>12} {'vs stdlib':>10}")
    for (name, _), rate in zip(cases, rates, strict=True):
        print(f"{name:<36} {rate:>12,.0f} {rate / reference:>9.1f}x")


if __name__ == "__main__":
    main()

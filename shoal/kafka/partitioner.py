"""Which partition a key goes to, byte-for-byte as Kafka's Java client and librdkafka's
``murmur2_random`` partitioner (which shoal's producers use) place it:
``toPositive(murmur2(key)) % numPartitions``. The web views find a key's owner with it,
without producing anything.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shoal.model import codecs

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I")


def murmur2(data: bytes | bytearray | memoryview) -> int:
    """Kafka's ``Utils.murmur2``: 32-bit MurmurHash2, seed 0x9747b28c, signed like a Java int.

    >>> murmur2(b"foobar")
    -790332482
    """
    length = len(data)
    h = (_SEED ^ length) & _MASK
    tail = length & ~3
    # Little-endian 4-byte words; Python ints are unbounded, so every multiply is masked
    # back to 32 bits to reproduce Java's int overflow.
    for (word,) in _WORDS.iter_unpack(data[:tail]):
        k = (word * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest:
        if rest == 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


def to_positive(number: int) -> int:
    """Kafka's ``Utils.toPositive``: clear the sign bit (not ``abs``: MIN_VALUE maps to 0)."""
    return number & 0x7FFFFFFF


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` among ``num_partitions``."""
    if num_partitions <= 0:
        raise ValueError(f"num_partitions must be positive, got {num_partitions}")
    return to_positive(murmur2(key)) % num_partitions


_KEY_TYPES: dict[str, Callable[[str], Any]] = {
    "str": str,
    "bytes": str.encode,
    "int": int,
    "float": float,
    "bool": lambda text: {"true": True, "false": False, "1": True, "0": False}[text.lower()],
}


def key_type_name(key_type: Any) -> str | None:
    """``'int'`` for ``int``...: the key types a URL can give; None for any other."""
    name = getattr(key_type, "__name__", None)
    return name if name in _KEY_TYPES else None


@functools.lru_cache(maxsize=64)
def _encoder(serializer: str) -> Callable[[Any], bytes | None]:
    return codecs.make_encoder(serializer)


@dataclass(frozen=True, slots=True)
class KeySpace:
    """How the keys of a table or topic map to its partitions."""

    name: str
    partitions: int
    key_serializer: str
    #: What a key given as text is turned into (``'int'``...; None: the text itself).
    key_type: str | None = None

    def key(self, text: str) -> Any:
        """The key ``text`` names; ValueError (saying why) when it cannot be one."""
        if self.key_type is None:
            return text
        try:
            return _KEY_TYPES[self.key_type](text)
        except (ValueError, KeyError):
            raise ValueError(f"{self.name} has {self.key_type} keys: {text!r} is not one") from None

    def partition(self, key: Any) -> int:
        """The partition ``key`` (a value of the key type) lives in."""
        data = _encoder(self.key_serializer)(key)
        if data is None:
            raise ValueError(f"{self.name}: a key cannot be None")
        return partition_for_key(data, self.partitions)

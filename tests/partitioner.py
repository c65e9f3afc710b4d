"""Key -> partition, byte-for-byte the same as Kafka's Java client: a test oracle.

Java's ``DefaultPartitioner`` (and librdkafka's ``murmur2``/``murmur2_random`` partitioners,
which shoal's producers are configured with for parity) place a keyed record on
``toPositive(murmur2(key)) % numPartitions``. shoal itself never computes it (librdkafka
does, when it produces); the tests use it to check where keyed messages land.
"""

from __future__ import annotations

import struct

__all__ = ["murmur2", "partition_for_key", "to_positive"]

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

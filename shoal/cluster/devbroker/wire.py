"""Just enough of the Kafka wire protocol to know a broker is up: one Metadata request.
Standard library only."""

from __future__ import annotations

import secrets
import socket
import struct

HOST = "127.0.0.1"
DEFAULT_PORT = 9092


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        buf += chunk
    return bytes(buf)


def metadata_brokers(host: str, port: int, timeout: float = 1.0) -> list[tuple[int, str, int]]:
    """Send Metadata v4 (Kafka 4 dropped v0-v3, KIP-896); return the (node_id, host, port)s."""
    corr, client = secrets.randbits(31), b"shoal-ops"
    # header v1: api_key=3 (Metadata), api_version=4, correlation_id, client_id (string)
    # body v4: topics = null (-1: all topics), allow_auto_topic_creation = false
    req = struct.pack(">hhih", 3, 4, corr, len(client)) + client + struct.pack(">ib", -1, 0)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(req)) + req)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        if not 12 <= size <= 64 << 20:
            raise ValueError(f"implausible response size {size}")
        resp = _recv_exact(sock, size)
    got, _throttle_ms, count = struct.unpack_from(">iii", resp, 0)
    if got != corr:
        raise ValueError("correlation id mismatch")
    off, brokers = 12, []
    for _ in range(count):  # [node_id int32, host string, port int32, rack nullable string]
        node, hlen = struct.unpack_from(">ih", resp, off)
        name = resp[off + 6 : off + 6 + hlen].decode()
        bport, rlen = struct.unpack_from(">ih", resp, off + 6 + hlen)
        off += 6 + hlen + 6 + max(rlen, 0)
        brokers.append((node, name, bport))
    (clen,) = struct.unpack_from(">h", resp, off)  # cluster_id, then controller_id and topics
    struct.unpack_from(">ii", resp, off + 2 + max(clen, 0))  # raises if truncated
    return brokers


def is_answering(host: str = HOST, port: int = DEFAULT_PORT, timeout: float = 1.0) -> bool:
    """True if a Kafka broker answers a Metadata request there, listing at least one broker."""
    try:
        return len(metadata_brokers(host, port, timeout)) >= 1
    except (OSError, ValueError, struct.error, UnicodeDecodeError):
        return False

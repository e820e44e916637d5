"""Batched MQTT receive path beside paho: PUBLISH packets parsed in bulk, PUBACKs written in one send.

WHY (measured on the 2-core test machine, see docs/benchmarks.md "Edge sources"): paho 2.2 spends about
25 µs of CPU per received PUBLISH even with no syscall at all (1-byte `recv` calls for the fixed header, a
`threading.Condition` per `MQTTMessage`, the topic matcher, callback locks) and one `send` per PUBACK. That
caps a single Python process near 25-30k messages/s, below the 50k/s target. Here the socket is read in
256 KB chunks, QoS 0/1 PUBLISH packets are sliced out of the buffer (~0.6 µs each) and the PUBACKs of a
batch go out in one write. Everything else (CONNECT/CONNACK, SUBSCRIBE, keepalive, QoS 2, MQTT 5 PUBLISH
with properties, TLS, DISCONNECT) stays paho's: such packets are handed to `loop_read()` one whole packet
at a time, so paho never holds a partial packet and its state machine is unchanged.

paho's socket is wrapped in `PacketBuffer` through the one private hook, paho's `Client._create_socket`,
which lives in iot_connector/compat/paho.py; paho treats the buffer as any `SocketLike` (as it does its own
TLS and websocket wrappers). It is tested against real mosquitto (plain, TLS, MQTT 3.1.1 and 5, QoS 0/1/2,
broker restart, redelivery).
"""

from __future__ import annotations

import ssl
from typing import Any, NamedTuple

import numpy as np

from iot_connector.compat.paho import WrappedSocketClient

_READ_CHUNK = 262144
_PUBLISH = 0x30


class Publish(NamedTuple):
    """A received PUBLISH, whichever path parsed it."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    dup: bool = False  # a redelivery: the broker sent it before (see identity.py)


class PacketBuffer:
    """paho's socket behind a read buffer. paho reads only up to `limit` (one whole packet we hand it);
    beyond that it sees EAGAIN, so it never starts a packet it cannot finish."""

    def __init__(self, sock: Any):
        self.sock = sock
        self.buf = b""
        self.pos = 0
        self.limit = 0
        self.out = b""  # PUBACKs not yet written (socket buffer full)

    # --- what paho calls ---------------------------------------------------------------------------------
    def recv(self, bufsize: int) -> bytes:
        pos = self.pos
        end = min(pos + bufsize, self.limit)
        if end <= pos:
            raise BlockingIOError
        self.pos = end
        return self.buf[pos:end]

    def send(self, data: bytes | bytearray) -> int:
        if self.out and not self.flush():  # our whole PUBACKs go first: packets never interleave
            raise BlockingIOError
        return self.sock.send(data)

    def pending(self) -> int:
        return 0  # nothing buffered that paho may read on its own

    def __getattr__(self, name: str) -> Any:  # setblocking, close, fileno, getpeercert...
        return getattr(self.sock, name)

    # --- what the source calls -----------------------------------------------------------------------------
    def fill(self) -> bool:
        """Read what the socket has (up to a few chunks). False when the peer closed the connection."""
        chunks = [self.buf[self.pos :]] if self.pos < len(self.buf) else []
        got = 0
        try:
            while got < 4 * _READ_CHUNK:
                data = self.sock.recv(_READ_CHUNK)
                if not data:
                    self._keep(chunks)
                    return False
                chunks.append(data)
                got += len(data)
                if not isinstance(self.sock, ssl.SSLSocket) and len(data) < _READ_CHUNK:
                    break  # a plain socket is drained; TLS hands out one record per call, keep reading
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError, InterruptedError):
            pass
        except OSError:  # reset, TLS error...: what arrived before still counts, the connection is over
            self._keep(chunks)
            return False
        self._keep(chunks)
        return True

    def _keep(self, chunks: list[bytes]) -> None:
        self.buf = b"".join(chunks)
        self.pos = self.limit = 0

    def more_pending(self) -> bool:
        """TLS may hold decrypted bytes that select() does not report."""
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def queue_acks(self, acks: bytes) -> bool:
        """Append whole PUBACK packets and try to write them; False while some are still waiting."""
        self.out += acks
        return self.flush()

    def flush(self) -> bool:
        while self.out:
            try:
                sent = self.sock.send(self.out)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError, InterruptedError):
                return False
            self.out = self.out[sent:]
        return True


class BatchedClient(WrappedSocketClient):
    """paho Client whose socket is a PacketBuffer (see the module docstring for why)."""

    def wrap(self, sock: Any) -> PacketBuffer:
        self.buffer = PacketBuffer(sock)
        return self.buffer


# PUBLISH fixed-header byte -> (qos, retain, dup) for the QoS 0/1 packets sliced here; None: paho's.
_FAST: list[tuple[int, bool, bool] | None] = [
    (qos, bool(h & 1), bool(h & 8)) if h & 0xF0 == _PUBLISH and (qos := (h >> 1) & 3) < 2 else None for h in range(256)
]
Message = tuple[str, bytes, int, int, bool, bool]  # a Publish as a plain tuple: (topic, payload, qos, mid, retain, dup)


def _remaining_length(buf: bytes, pos: int, n: int) -> tuple[int, int]:
    """(remaining length, where the variable header starts) of the packet at `pos`; (-1, 0) if cut short."""
    length, mult, i = 0, 1, pos + 1
    while True:  # 1-4 bytes, 7 bits each
        if i - pos > 4:
            raise ConnectionError("malformed MQTT packet: remaining length longer than 4 bytes")
        if i >= n:
            return -1, 0
        byte = buf[i]
        length += (byte & 127) * mult
        mult <<= 7
        i += 1
        if not byte & 128:
            return length, i


def take_publishes(buffer: PacketBuffer, v5: bool, out: list[Message], topics: dict[bytes, str]) -> bool:
    """Slice the QoS 0/1 PUBLISH packets at the head of the buffer into `out` (plain tuples equal to their
    `Publish`: a NamedTuple costs a Python call each), in wire order.

    Stops at the first packet paho must handle (anything else, QoS 2, MQTT 5 properties) and sets the
    buffer's limit to its end: returns True then, so the caller runs `loop_read()` and calls again.
    False: nothing left but an incomplete packet (wait for more data). `topics` caches decoded names.
    """
    buf, pos, n = buffer.buf, buffer.pos, len(buffer.buf)
    append, known, fast = out.append, topics.get, _FAST
    while pos + 2 <= n:
        kind = fast[buf[pos]]
        length = buf[pos + 1]
        i = pos + 2
        if length > 127:  # a packet of 128 bytes or more: a longer length field
            length, i = _remaining_length(buf, pos, n)
            if length < 0:
                break
        end = i + length
        if end > n:
            break
        if kind is not None and length >= 2:
            qos, retain, dup = kind
            j = name_end = i + 2 + ((buf[i] << 8) | buf[i + 1])
            mid = 0
            if qos and j + 2 <= end:
                mid = (buf[j] << 8) | buf[j + 1]
                j += 2
            # well formed (else paho reports it), and in MQTT 5 only without properties (length byte 0)
            if (mid or not qos) and j + v5 <= end and (not v5 or buf[j] == 0):
                name = buf[i + 2 : name_end]
                topic = known(name)
                if topic is None:
                    if len(topics) >= 100_000:  # bounded: topics with ids in them must not grow memory
                        topics.clear()
                    topic = topics[name] = name.decode("utf-8", "replace")
                append((topic, buf[j + v5 : end], qos, mid, retain, dup))
                pos = end
                continue
        buffer.pos, buffer.limit = pos, end
        return True
    buffer.pos = buffer.limit = pos
    return False


def pubacks(mids: list[int]) -> bytes:
    """PUBACK packets (type 4, length 2, packet id) for MQTT 3.1.1 and 5 (no reason code = success), built
    as one array of big-endian words (0x4002 << 16 | packet id): no Python loop per message."""
    if not mids:
        return b""
    return (np.array(mids, dtype=np.uint32) | 0x40020000).astype(">u4").tobytes()

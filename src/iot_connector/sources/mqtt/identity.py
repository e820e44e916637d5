"""record_id of MQTT messages: numbered in arrival order, and a redelivery gets its first number back.

Why not a hash of the content: two readings with identical payloads (no timestamp, or the same one) are
still two readings, and one `edge_ts` per socket read made 2,000 distinct readings share 80 ids. What
identifies a message at the broker is its packet id, and a broker that redelivers a QoS 1/2 message (to a
persistent session, after a lost connection or a crash) sends it with the DUP flag and its original packet
id (MQTT 3.1.1 §4.4, MQTT 5 §4.4). So:

* every message gets (epoch, n): `epoch` counts the starts of this source (a small file, fsynced once per
  start), `n` counts messages since; the record_id hashes (source, epoch, n, index of the record in the
  message). Two readings never share an id, even if everything below is lost.
* a message with DUP whose (packet id, CRC of topic + payload) was numbered recently gets that number
  again, so a redelivered message keeps its id. The recent numbers are appended to a journal file before
  the records are handed to the pipeline (OS write, survives kill -9) and read back at start.

Limit: after a power loss the journal's last writes may be gone; a redelivery then gets a new id (a
duplicate with another id, never a lost or merged reading).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import struct
import zlib
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)
_ENTRY = struct.Struct("<QQHI")  # epoch, n, packet id, crc32(topic + payload)


def record_id(source: str, epoch: int, n: int, index: int) -> str:
    return hashlib.blake2b(f"{source}\x1f{epoch}\x1f{n}\x1f{index}".encode(), digest_size=16).hexdigest()


_topic_crcs: dict[str, int] = {}


def _crc(topic: str, payload: bytes) -> int:
    start = _topic_crcs.get(topic)
    if start is None:
        if len(_topic_crcs) >= 100_000:  # bounded: topics with ids in them must not grow memory
            _topic_crcs.clear()
        start = _topic_crcs[topic] = zlib.crc32(topic.encode())
    return zlib.crc32(payload, start)


class Arrivals:
    """Numbers messages for one source; `state_dir` None keeps everything in memory (a random epoch)."""

    def __init__(self, source: str, state_dir: Path | None, window: int):
        self.source = source
        self.window = window
        self.n = 0
        self._recent: OrderedDict[tuple[int, int], tuple[int, int]] = OrderedDict()  # (packet id, crc) -> (epoch, n)
        self._unwritten: list[bytes] = []
        self._journal: Path | None = None
        self._entries = 0
        self._failing = False
        if state_dir is None:
            self.epoch = secrets.randbits(63)
            return
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self.epoch = _next_epoch(state_dir / f"mqtt-{source}.epoch")
        except OSError as exc:  # e.g. read-only: data flows on, ids stay unique, redeliveries may get new ones
            log.error(
                "%s: cannot keep MQTT arrival numbers (%s); redeliveries after a restart get new record ids",
                state_dir,
                exc,
            )
            self.epoch = secrets.randbits(63)
            return
        self._journal = state_dir / f"mqtt-{source}.journal"
        self._load()

    def number(self, mid: int, dup: bool, qos: int, topic: str, payload: bytes) -> tuple[int, int]:
        """(epoch, n) of a message: its first numbers if it is a redelivery of a recent one, else new ones."""
        if qos:
            key = (mid, _crc(topic, payload))
            if dup and key in self._recent:
                return self._recent[key]
        numbers = (self.epoch, self.n)
        self.n += 1
        if qos:
            self._remember(key, numbers)
            self._unwritten.append(_ENTRY.pack(*numbers, *key))
        return numbers

    def _remember(self, key: tuple[int, int], numbers: tuple[int, int]) -> None:
        recent = self._recent
        if key in recent:
            recent.move_to_end(key)  # the dict stays in arrival order
        recent[key] = numbers
        if len(recent) > self.window:
            recent.popitem(last=False)

    def write(self) -> None:
        """Append the numbers given since the last call to the journal; call before emitting the records."""
        if not self._unwritten or self._journal is None:
            self._unwritten.clear()
            return
        data = b"".join(self._unwritten)
        self._entries += len(self._unwritten)
        self._unwritten.clear()
        try:
            if self._entries > 2 * self.window:  # rewrite with the recent entries only: the file stays small
                tmp = self._journal.with_suffix(".tmp")
                tmp.write_bytes(b"".join(_ENTRY.pack(*v, *k) for k, v in self._recent.items()))
                os.replace(tmp, self._journal)
                self._entries = len(self._recent)
            else:
                with open(self._journal, "ab") as f:
                    f.write(data)
            self._failing = False
        except OSError as exc:  # disk full...: ids stay unique; only a redelivery after a crash may get a new one
            if not self._failing:
                log.error(
                    "%s cannot be written (%s): messages redelivered after a crash get new record ids",
                    self._journal,
                    exc,
                )
            self._failing = True

    def _load(self) -> None:
        assert self._journal is not None
        try:
            data = self._journal.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("%s cannot be read (%s): messages redelivered now get new record ids", self._journal, exc)
            return
        whole = len(data) - len(data) % _ENTRY.size  # a torn last entry is ignored
        for epoch, n, mid, crc in _ENTRY.iter_unpack(data[:whole]):
            self._remember((mid, crc), (epoch, n))
        self._entries = whole // _ENTRY.size


def _next_epoch(path: Path) -> int:
    """The previous epoch + 1, durably written before any number of this start is used."""
    try:
        previous = int(path.read_text().strip() or 0)
    except FileNotFoundError:
        previous = 0
    except ValueError:  # damaged: a random epoch still never repeats one; redeliveries may get new ids once
        log.error("%s does not hold a number; record ids continue from a random epoch", path)
        previous = secrets.randbits(62)
    epoch = previous + 1
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write(str(epoch))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return epoch

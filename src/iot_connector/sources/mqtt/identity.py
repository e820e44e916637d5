"""record_id of MQTT messages: numbered in arrival order, and a redelivery gets its first number back.

Why not a hash of the content: two readings with identical payloads (no timestamp, or the same one) are
still two readings, and one `edge_ts` per socket read made 2,000 distinct readings share 80 ids. What
identifies a message at the broker is its packet id, and a broker that redelivers a QoS 1/2 message (to a
persistent session, after a lost connection or a crash) sends it with the DUP flag and its original packet
id (MQTT 3.1.1 §4.4, MQTT 5 §4.4). So:

* every message gets (epoch, n): `epoch` counts the starts of this source (a small file, fsynced once per
  start), `n` counts messages since; the record_id is `<source tag>:<epoch>:<n>:<index of the record in
  the message>` (hex, `source_tag` 8 digits of the name's hash). Two readings never share an id, even if
  everything below is lost.
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
import zlib
from array import array
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
# Journal entries: three unsigned 64-bit words (machine byte order: the file never leaves this host),
# epoch, n and key = packet id << 32 | crc32(topic + payload).
_WORDS = 3
_ENTRY_BYTES = 8 * _WORDS


def source_tag(source: str) -> str:
    """8 hex digits naming the source inside its ids (ids of different sources never meet)."""
    return hashlib.blake2b(source.encode(), digest_size=4).hexdigest()


def record_ids(base: str, count: int) -> list[str]:
    """The ids of a message's `count` records: `<source tag>:<epoch>:<n>:<index>` in hex. Unique by
    construction, so no hash per record on the hot path (a string join against ~1.5 µs for a blake2b);
    the colons keep them apart from the 32-hex-digit hashes other sources get."""
    return [base + "0"] if count == 1 else [f"{base}{index:x}" for index in range(count)]


_topic_crcs: dict[str, int] = {}
# The fields of a received message tuple (wire.Message) that numbering reads.
_TOPIC, _PAYLOAD, _QOS, _MID, _DUP = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(3), itemgetter(5)


def _crc(topic: str, payload: bytes) -> int:
    start = _topic_crcs.get(topic)
    if start is None:
        if len(_topic_crcs) >= 100_000:  # bounded: topics with ids in them must not grow memory
            _topic_crcs.clear()
        start = _topic_crcs[topic] = zlib.crc32(topic.encode())
    return zlib.crc32(payload, start)


class Arrivals:
    """Numbers messages for one source; `state_dir` None keeps everything in memory (a random epoch).

    Per message: a CRC, one dict entry and three array words, all ints (no objects for the garbage
    collector to walk); old entries are dropped in bulk once the dict holds twice the window."""

    def __init__(self, source: str, state_dir: Path | None, window: int, redeliveries: bool = True):
        self.source = source
        # False for a clean session: the broker discards unacknowledged messages with it, nothing comes back
        self.redeliveries = redeliveries
        self.tag = source_tag(source)
        self.window = window
        self.n = 0
        # key -> n of this epoch, or (epoch, n) of an earlier start (read from the journal)
        self._recent: dict[int, int | tuple[int, int]] = {}
        self._earlier = False  # _recent holds numbers of earlier starts (tuples), read from the journal
        self._unwritten = array("Q")
        self._journal: Path | None = None
        self._entries = 0
        self._failing = False
        self.epoch = secrets.randbits(63)  # unless a state folder keeps the count
        self.prefix = f"{self.tag}:{self.epoch:x}:"
        if state_dir is None:
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
            return
        self.prefix = f"{self.tag}:{self.epoch:x}:"
        self._journal = state_dir / f"mqtt-{source}.journal"
        self._load()

    def number(self, mid: int, dup: bool, qos: int, topic: str, payload: bytes) -> str:
        """The id base (`record_ids`) of a message: its first numbers if it is a redelivery of a recent one,
        else new ones."""
        n = self.n
        if qos and self.redeliveries:
            key = mid << 32 | _crc(topic, payload)
            recent = self._recent
            if dup:
                found = recent.get(key)
                if found is not None:
                    if type(found) is tuple:
                        return f"{self.tag}:{found[0]:x}:{found[1]:x}:"
                    return f"{self.prefix}{found:x}:"
            recent[key] = n
            unwritten = self._unwritten
            unwritten.append(self.epoch)
            unwritten.append(n)
            unwritten.append(key)
            if len(recent) > 2 * self.window:
                self._prune(n - self.window)
        self.n = n + 1
        return f"{self.prefix}{n:x}:"

    def number_many(self, messages: Sequence[tuple], suffix: str = "") -> list[str]:
        """`number` of each received message (`wire.Message` tuples), in order, each followed by `suffix`
        (e.g. "0": the id of its first record, built in the same C-level pass).

        Why a batch: per message, `number` is ~1 µs of Python. Without redeliveries in the batch (no DUP
        flag: the usual case), the numbers are consecutive and the keys, the recent-numbers dict and the
        journal entries are built with C-level maps and numpy over the whole batch (~0.3 µs a message);
        a batch with a DUP, or with QoS 0 and QoS 1 mixed, is numbered one message at a time."""
        k = len(messages)
        qos = list(map(_QOS, messages))
        keyed = self.redeliveries and qos.count(0) == 0  # every message may come back: all get keys
        if any(map(_DUP, messages)) or (self.redeliveries and not keyed and qos.count(0) != k):
            return [self.number(m[3], m[5], m[2], m[0], m[1]) + suffix for m in messages]
        n0 = self.n
        if keyed and k:
            topics = list(map(_TOPIC, messages))
            starts = _topic_crcs
            for topic in set(topics).difference(starts):
                if len(starts) >= 100_000:  # bounded: topics with ids in them must not grow memory
                    starts.clear()
                starts[topic] = zlib.crc32(topic.encode())
            crcs = np.fromiter(map(zlib.crc32, map(_PAYLOAD, messages), map(starts.__getitem__, topics)), np.uint64, k)
            keys = np.fromiter(map(_MID, messages), np.uint64, k) << np.uint64(32) | crcs
            entries = np.empty((k, 3), np.uint64)
            entries[:, 0] = self.epoch
            entries[:, 1] = np.arange(n0, n0 + k, dtype=np.uint64)
            entries[:, 2] = keys
            self._unwritten.frombytes(entries.tobytes())  # the journal's words, machine byte order as array("Q")
            recent = self._recent
            recent.update(zip(keys.tolist(), range(n0, n0 + k)))
            if len(recent) > 2 * self.window:
                self._prune(n0 + k - 1 - self.window)
        self.n = n0 + k
        return list(map(f"{self.prefix}{{:x}}:{suffix}".format, range(n0, n0 + k)))

    def write(self) -> None:
        """Append the numbers given since the last call to the journal; call before emitting the records."""
        if not self._unwritten or self._journal is None:
            del self._unwritten[:]
            return
        data = self._unwritten.tobytes()
        self._entries += len(self._unwritten) // _WORDS
        del self._unwritten[:]
        try:
            if self._entries > 2 * self.window:  # rewrite with the recent entries only: the file stays small
                tmp = self._journal.with_suffix(".tmp")
                tmp.write_bytes(self._recent_entries().tobytes())
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

    def _prune(self, oldest: int) -> None:
        """Keep the numbers of this start above `oldest` (earlier starts' go: older than any of this one)."""
        recent = self._recent
        if self._earlier:
            self._recent = {k: v for k, v in recent.items() if type(v) is int and v > oldest}
            self._earlier = False
            return
        keys, numbers = self._columns()  # all ints: the same, with numpy instead of a loop
        keep = numbers > oldest
        self._recent = dict(zip(keys[keep].tolist(), numbers[keep].tolist()))

    def _columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Keys and numbers of `_recent` while it holds this start's numbers only."""
        recent = self._recent
        return np.fromiter(recent.keys(), np.uint64, len(recent)), np.fromiter(recent.values(), np.int64, len(recent))

    def _recent_entries(self) -> array:
        words = array("Q")
        if not self._earlier:
            keys, numbers = self._columns()
            entries = np.empty((len(keys), _WORDS), np.uint64)
            entries[:, 0], entries[:, 1], entries[:, 2] = self.epoch, numbers, keys
            words.frombytes(entries.tobytes())
            return words
        for key, value in self._recent.items():
            epoch, n = value if isinstance(value, tuple) else (self.epoch, value)
            words.extend((epoch, n, key))
        return words

    def _load(self) -> None:
        assert self._journal is not None
        try:
            data = self._journal.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("%s cannot be read (%s): messages redelivered now get new record ids", self._journal, exc)
            return
        words = array("Q")
        words.frombytes(data[: len(data) - len(data) % _ENTRY_BYTES])  # a torn last entry is ignored
        recent = self._recent
        for i in range(max(0, len(words) - _WORDS * self.window), len(words), _WORDS):
            recent[words[i + 2]] = (words[i], words[i + 1])
        self._earlier = bool(recent)
        self._entries = len(words) // _WORDS


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

"""Durable disk spool: a write-ahead log of Records in segment files, read in order, committed after acks.

Why this shape (see docs/edge_agent.md): every accepted record is appended to the log BEFORE the source is
acknowledged, so a crash loses nothing accepted. Frames are `<u32 length><u32 crc32><payload>`; a torn or
corrupt tail (power loss mid-write) is detected by length/CRC on open and cut. The read position is kept in
`cursor.json` and moved only after the sink acknowledged a batch; fully consumed segments are deleted.
Records written by an earlier process come back with `is_replayed=True`. Recent records are also cached in
memory so the reader does not touch the disk while it keeps up; when it falls behind it reads the segments,
and the single log order keeps the order per tag (and overall) across the overflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Sequence
from itertools import accumulate, repeat
from operator import add
from pathlib import Path
from typing import BinaryIO, NamedTuple

from iot_connector.model import Record
from iot_connector.pipeline import codec
from iot_connector.pipeline.spool_cache import RecentRecords

log = logging.getLogger(__name__)
_HEADER = struct.Struct("<II")
_MAX_FRAME = 64 << 20
CURSOR_FILE = "cursor.json"
CURSOR_INTERVAL_S = 0.05  # the least time between two background cursor writes (commit_soon)


class SpoolWriteError(OSError):
    """The spool could not store records (disk full, I/O error); nothing partial was left behind."""


class Position(NamedTuple):
    segment: int
    offset: int

    def key(self) -> int:
        """One int that orders like the tuple (offsets < 1 TiB): cheap to compare on the hot path."""
        return self.segment << _OFFSET_BITS | self.offset


_OFFSET_BITS = 40
_OFFSET_MASK = (1 << _OFFSET_BITS) - 1


class _Segment:
    __slots__ = ("id", "path", "records", "size")

    def __init__(self, seg_id: int, path: Path, size: int = 0, records: int = 0):
        self.id, self.path, self.size, self.records = seg_id, path, size, records


def _segment_name(seg_id: int) -> str:
    return f"{seg_id:012d}.seg"


def scan_segment(path: Path) -> tuple[int, int, bool]:
    """(valid_bytes, records, clean) of a segment: stops at the first frame whose length or CRC is wrong."""
    valid = records = 0
    with path.open("rb") as fh:
        data = fh.read()
    while valid + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, valid)
        end = valid + _HEADER.size + length
        if length > _MAX_FRAME or end > len(data) or zlib.crc32(data[valid + _HEADER.size : end]) != crc:
            return valid, records, False
        valid, records = end, records + 1
    return valid, records, valid == len(data)


class Spool:
    """Single writer, single reader; all methods run on the event loop except the grouped fsync."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int = 1 << 30,
        segment_bytes: int = 64 << 20,
        durability: str = "fsync",
        fsync_interval_ms: float = 2.0,
        memory_records: int = 100_000,
    ):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = max(4096, min(segment_bytes, max_bytes // 4))
        self.durability = durability
        self.fsync_interval = fsync_interval_ms / 1000
        self.memory_records = memory_records
        self._segments: list[_Segment] = []
        self._writer: BinaryIO | None = None
        self._reader: tuple[int, BinaryIO] | None = None
        self._recent = RecentRecords(memory_records)
        self._read_pos = Position(0, 0)
        self._commit_pos = Position(0, 0)
        self._replay_end = Position(0, 0)
        self._pending = 0  # records appended but not yet read
        self._unacked = 0  # records appended but not yet committed (read or not)
        self._inflight_ends: deque[tuple[Position, int]] = deque()  # (end position, records) of reads
        self._synced_gen = 0
        self._written_gen = 0
        self._sync_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._cursor_target = Position(0, 0)  # the newest committed position waiting to be persisted
        self._cursor_saved = Position(0, 0)
        self._cursor_task: asyncio.Task[None] | None = None
        self.corrupt_bytes_cut = 0

    # ---------------------------------------------------------------- open / close
    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.glob("*.seg")):
            if not path.stem.isdigit():
                log.warning("spool: ignoring %s (not a segment name this agent writes)", path.name)
                continue
            valid, records, clean = scan_segment(path)
            if not clean:
                cut = path.stat().st_size - valid
                self.corrupt_bytes_cut += cut
                log.warning("spool: cut %d corrupt/torn bytes at the end of %s", cut, path.name)
                with path.open("r+b") as fh:
                    fh.truncate(valid)
                    os.fsync(fh.fileno())
            self._segments.append(_Segment(int(path.stem), path, valid, records))
        self._commit_pos = self._cursor_saved = self._cursor_target = self._load_cursor()
        self._drop_segments_before(self._commit_pos.segment)
        if not self._segments:
            self._segments.append(self._create_segment(max(1, self._commit_pos.segment)))
        first = self._segments[0]
        if self._commit_pos.segment < first.id:
            self._commit_pos = Position(first.id, 0)
        last = self._segments[-1]
        if self._commit_pos > Position(last.id, last.size):  # segment files removed by hand
            log.warning("spool: cursor %s is past the last segment; continuing from its end", self._commit_pos)
            self._commit_pos = Position(last.id, last.size)
        self._read_pos = self._commit_pos
        self._replay_end = Position(last.id, last.size)
        self._pending = self._unacked = self._count_records_from(self._read_pos)
        self._writer = last.path.open("ab")

    def _create_segment(self, seg_id: int) -> _Segment:
        path = self.directory / _segment_name(seg_id)
        path.touch()
        return _Segment(seg_id, path)

    def _load_cursor(self) -> Position:
        path = self.directory / CURSOR_FILE
        try:
            data = json.loads(path.read_text())
            return Position(int(data["segment"]), int(data["offset"]))
        except FileNotFoundError:
            return Position(0, 0)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("spool: %s is unreadable (%s); replaying from the oldest segment", path, exc)
            return Position(0, 0)

    def _count_records_from(self, pos: Position) -> int:
        total = 0
        for seg in self._segments:
            if seg.id > pos.segment:
                total += seg.records
            elif seg.id == pos.segment and pos.offset:
                total += self._count_frames(seg.path, pos.offset)
            elif seg.id == pos.segment:
                total += seg.records
        return total

    @staticmethod
    def _count_frames(path: Path, offset: int) -> int:
        count = 0
        with path.open("rb") as fh:
            fh.seek(offset)
            while header := fh.read(_HEADER.size):
                if len(header) < _HEADER.size:
                    break
                length, _ = _HEADER.unpack(header)
                fh.seek(length, os.SEEK_CUR)
                count += 1
        return count

    async def close(self) -> None:
        if self._cursor_task:
            with contextlib.suppress(Exception):
                await self._cursor_task
        if self._cursor_target > self._cursor_saved:
            self._save_cursor(self._cursor_target)
        if self._sync_task:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        if self._writer:
            self._writer.flush()
            os.fsync(self._writer.fileno())
            self._writer.close()
            self._writer = None
        self._release_sync_waiters()
        if self._reader:
            self._reader[1].close()
            self._reader = None

    # ---------------------------------------------------------------- sizes
    @property
    def size_bytes(self) -> int:
        return sum(seg.size for seg in self._segments)

    @property
    def pending(self) -> int:
        """Records not yet handed to the reader."""
        return self._pending

    @property
    def depth(self) -> int:
        """Records not yet acknowledged by the sink."""
        return self._unacked

    def has_room(self, nbytes: int) -> bool:
        return self.size_bytes + nbytes <= self.max_bytes

    # ---------------------------------------------------------------- write path
    @staticmethod
    def encode(records: Sequence[Record]) -> list[bytes]:
        """Frame payloads for `append`; their size is checked against the cap before anything is written."""
        return codec.encode_many(records)

    @staticmethod
    def frames_size(payloads: Sequence[bytes]) -> int:
        return sum(map(len, payloads)) + _HEADER.size * len(payloads)

    def append(self, records: Sequence[Record], payloads: Sequence[bytes]) -> None:
        """Write the records (OS write, no fsync yet); await `wait_durable()` before acknowledging them."""
        assert self._writer is not None, "spool not open"
        seg = self._segments[-1]
        if seg.size >= self.segment_bytes:
            seg = self._roll()
        n = len(records)
        sizes = list(map(len, payloads))
        frames: list[bytes] = [b""] * (2 * n)  # header, payload, header, ...: joined once, no copy per frame
        frames[::2] = map(_HEADER.pack, sizes, map(zlib.crc32, payloads))
        frames[1::2] = payloads
        # offsets[i] = where record i starts; offsets[n] = the segment's new end (C-level loops, no Python one)
        offsets = list(accumulate(map(add, sizes, repeat(_HEADER.size, n)), initial=seg.size))
        self._write(b"".join(frames), seg)
        keep = min(n, self._recent.room)
        self._recent.add(seg.id << _OFFSET_BITS, offsets if keep == n else offsets[: keep + 1], records[:keep])
        offset = offsets[-1]
        seg.records += len(records)
        seg.size = offset
        self._pending += len(records)
        self._unacked += len(records)
        self._written_gen += 1

    def _write(self, data: bytes, seg: _Segment) -> None:
        """Append whole frames or nothing: after a failed write (disk full) the segment is cut back, so no
        torn frame sits in front of later appends."""
        assert self._writer is not None
        try:
            self._writer.write(data)
            self._writer.flush()
        except OSError as exc:
            writer, self._writer = self._writer, None
            with contextlib.suppress(OSError, ValueError):
                writer.close()
            with contextlib.suppress(OSError):
                os.truncate(seg.path, seg.size)
            self._writer = seg.path.open("ab")
            raise SpoolWriteError(f"spool write to {seg.path} failed: {exc.strerror or exc}") from exc

    def _roll(self) -> _Segment:
        assert self._writer is not None
        self._writer.flush()
        os.fsync(self._writer.fileno())
        self._writer.close()
        seg = self._create_segment(self._segments[-1].id + 1)
        self._segments.append(seg)
        self._writer = seg.path.open("ab")
        return seg

    async def wait_durable(self) -> None:
        """Return once everything appended so far is on disk (fsync grouped with other writers)."""
        if self.durability != "fsync" or self._synced_gen >= self._written_gen:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sync_waiters.append((self._written_gen, future))
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.create_task(self._sync_loop(), name="spool-fsync")
        await future

    async def _sync_loop(self) -> None:
        while self._sync_waiters:
            if self.fsync_interval:
                await asyncio.sleep(self.fsync_interval)
            target = self._written_gen
            writer = self._writer
            if writer is not None:
                with contextlib.suppress(ValueError, OSError):  # a roll fsynced and closed it meanwhile
                    await asyncio.to_thread(os.fsync, writer.fileno())
            self._synced_gen = target
            still = []
            for gen, future in self._sync_waiters:
                if gen <= target:
                    if not future.done():
                        future.set_result(None)
                else:
                    still.append((gen, future))
            self._sync_waiters = still

    def _release_sync_waiters(self) -> None:
        for _, future in self._sync_waiters:
            if not future.done():
                future.set_result(None)
        self._sync_waiters = []

    # ---------------------------------------------------------------- read path
    def read(self, max_records: int) -> tuple[list[Record], Position]:
        """Up to `max_records` in log order from the read position, and the position after them."""
        out: list[Record] = []
        while len(out) < max_records and self._pending > 0:
            before = len(out)
            # Records this process appended come after everything there was at open: never replayed.
            end = self._recent.take(self._read_pos.key(), max_records - before, out)
            if end is None:
                self._read_disk(out, max_records)
            else:
                self._read_pos = Position(end >> _OFFSET_BITS, end & _OFFSET_MASK)
                self._pending -= len(out) - before
        if out:
            self._inflight_ends.append((self._read_pos, len(out)))
        return out, self._read_pos

    def _read_disk(self, out: list[Record], max_records: int) -> None:
        pos = self._read_pos
        seg = next((s for s in self._segments if s.id >= pos.segment), None)
        if seg is None:  # cannot happen while the counters are right; never spin on it
            log.error("spool: read position %s is past every segment; resetting the counter", pos)
            self._pending = 0
            return
        if seg.id != pos.segment:
            pos = Position(seg.id, 0)
        if pos.offset >= seg.size:
            later = [s for s in self._segments if s.id > seg.id]
            if later:
                self._read_pos = Position(later[0].id, 0)
            else:  # bookkeeping says pending > 0 but nothing is on disk: resync rather than spin
                log.error("spool: %d records counted but none on disk; resetting the counter", self._pending)
                self._pending = 0
            return
        if self._reader is None or self._reader[0] != seg.id:
            if self._reader:
                self._reader[1].close()
            self._reader = (seg.id, seg.path.open("rb"))
        fh = self._reader[1]
        fh.seek(pos.offset)
        data = fh.read(min(seg.size - pos.offset, 4 << 20))
        offset = 0
        while len(out) < max_records and offset + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, offset)
            end = offset + _HEADER.size + length
            if end > len(data):
                if offset == 0:  # a single frame larger than the read chunk
                    fh.seek(pos.offset)
                    data = fh.read(_HEADER.size + length)
                    end = len(data)
                else:
                    break
            payload = data[offset + _HEADER.size : end]
            if zlib.crc32(payload) != crc:
                log.error(
                    "spool: CRC mismatch in %s at %d; skipping the rest of it", seg.path.name, pos.offset + offset
                )
                self._pending = max(0, self._pending - self._count_frames_safe(seg, pos.offset + offset))
                self._read_pos = Position(seg.id, seg.size)
                return
            record = codec.decode(payload)
            if Position(seg.id, pos.offset + offset) < self._replay_end:
                record.is_replayed = True
            out.append(record)
            self._pending -= 1
            offset = end
        self._read_pos = Position(seg.id, pos.offset + offset)

    def _count_frames_safe(self, seg: _Segment, offset: int) -> int:
        try:
            return self._count_frames(seg.path, offset)
        except OSError:
            return 0

    def commit(self, position: Position) -> None:
        """The sink acknowledged everything before `position`: persist the cursor, delete consumed segments."""
        if self._advance(position):
            self._save_cursor(position)

    def commit_soon(self, position: Position) -> None:
        """`commit`, with the cursor file written by a background thread, coalescing commits that arrive
        meanwhile: the fsync + rename (~3 ms) then no longer stalls the event loop once per batch. At most one
        write per CURSOR_INTERVAL_S: with one ack per record at a few thousand records/s, writing the cursor
        after each cost ~0.2 of a core (benchmarks/edge_e2e.py, agent CPU at the guide rate). A crash before
        it lands only re-sends acknowledged records (same record_id), never loses any."""
        if not self._advance(position):
            return
        self._cursor_target = position
        if self._cursor_task is None or self._cursor_task.done():
            self._cursor_task = asyncio.get_running_loop().create_task(self._cursor_loop(), name="spool-cursor")

    async def _cursor_loop(self) -> None:
        while self._cursor_target > self._cursor_saved:
            target = self._cursor_target
            await asyncio.to_thread(self._write_cursor, target)
            self._cursor_saved = max(self._cursor_saved, target)
            self._drop_segments_before(self._cursor_saved.segment)
            await asyncio.sleep(CURSOR_INTERVAL_S)  # acks arriving meanwhile share the next write

    def _advance(self, position: Position) -> bool:
        if position <= self._commit_pos:
            return False
        while self._inflight_ends and self._inflight_ends[0][0] <= position:
            self._unacked = max(0, self._unacked - self._inflight_ends.popleft()[1])
        self._commit_pos = position
        return True

    def _save_cursor(self, position: Position) -> None:
        self._write_cursor(position)
        self._cursor_saved = self._cursor_target = max(self._cursor_saved, position)
        self._drop_segments_before(position.segment)

    def _write_cursor(self, position: Position) -> None:
        """Atomic replace of cursor.json (thread-safe: touches only the cursor files)."""
        tmp = self.directory / f"{CURSOR_FILE}.{threading.get_ident()}.tmp"  # one per writer thread
        with tmp.open("w") as fh:
            json.dump({"segment": position.segment, "offset": position.offset}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.directory / CURSOR_FILE)

    def _drop_segments_before(self, seg_id: int) -> None:
        while len(self._segments) > 1 and self._segments[0].id < seg_id:
            seg = self._segments.pop(0)
            if self._reader and self._reader[0] == seg.id:
                self._reader[1].close()
                self._reader = None
            seg.path.unlink(missing_ok=True)

    def reclaim(self) -> None:
        """Free the writer's segment when the sink has acknowledged all of it (only needed when full)."""
        last = self._segments[-1]
        if last.size and self._commit_pos >= Position(last.id, last.size):
            self._roll()
            self._drop_segments_before(self._segments[-1].id)

    def drop_oldest_segment(self) -> int:
        """Drop policy `oldest`: discard the oldest segment's unacknowledged records; returns how many."""
        if len(self._segments) == 1:
            self._roll()
        oldest = self._segments[0]
        nxt = Position(self._segments[1].id, 0)
        if self._commit_pos.segment == oldest.id and self._commit_pos.offset:
            lost_unacked = self._count_frames_safe(oldest, self._commit_pos.offset)
        else:
            lost_unacked = oldest.records
        if self._read_pos < nxt:
            if self._read_pos.offset:
                lost_pending = self._count_frames_safe(oldest, self._read_pos.offset)
            else:
                lost_pending = oldest.records
            self._pending -= lost_pending
            self._read_pos = nxt
        self._unacked = max(0, self._unacked - lost_unacked)
        # reads wholly inside the dropped segment were counted in lost_unacked already
        self._inflight_ends = deque((end, n) for end, n in self._inflight_ends if end > nxt)
        self._commit_pos = max(self._commit_pos, Position(oldest.id, 0))
        self.commit(nxt)
        return lost_unacked

"""The durable spool on a real directory: order, commit, replay, torn/corrupt tails, segments, size cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from iot_connector.pipeline.spool import CURSOR_FILE, CURSOR_INTERVAL_S, Spool, SpoolWriteError, scan_segment
from tests.edge.helpers import make_records, seqs


def _spool(path: Path, **kw) -> Spool:
    spool = Spool(path, durability="write", **kw)
    spool.open()
    return spool


def _append(spool: Spool, n: int, start: int = 0) -> None:
    records = make_records(n, start)
    spool.append(records, spool.encode(records))


def _read_all(spool: Spool, step: int = 7):
    out, pos = [], None
    while spool.pending:
        batch, pos = spool.read(step)
        out.extend(batch)
    return out, pos


async def test_roundtrip_in_order_with_all_fields(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    sent = make_records(50)
    spool.append(sent, spool.encode(sent))
    got, _ = _read_all(spool)
    assert [(r.seq, r.tag_id, r.value_double, r.attributes, r.record_id) for r in got] == [
        (r.seq, r.tag_id, r.value_double, r.attributes, r.record_id) for r in sent
    ]
    assert not any(r.is_replayed for r in got)
    await spool.close()


async def test_uncommitted_records_replay_after_restart_marked_replayed(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    _append(spool, 30)
    _batch, pos = spool.read(10)
    spool.commit(pos)
    spool.read(10)  # read but never acknowledged: must come back
    await spool.close()

    again = _spool(tmp_path)
    assert again.pending == 20
    got, _ = _read_all(again)
    assert seqs(got) == list(range(10, 30))
    assert all(r.is_replayed for r in got)
    _append(again, 5, start=30)
    fresh, _ = _read_all(again)
    assert seqs(fresh) == list(range(30, 35))
    assert not any(r.is_replayed for r in fresh)
    await again.close()


async def test_torn_tail_is_cut_on_open(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    _append(spool, 20)
    await spool.close()
    segment = next(tmp_path.glob("*.seg"))
    good_size = segment.stat().st_size
    with segment.open("ab") as fh:  # a frame header promising 500 bytes, then a power cut after 3 of them
        fh.write((500).to_bytes(4, "little") + (0).to_bytes(4, "little") + b"abc")

    again = _spool(tmp_path)
    assert again.corrupt_bytes_cut == 11
    assert segment.stat().st_size == good_size
    got, _ = _read_all(again)
    assert seqs(got) == list(range(20))
    _append(again, 3, start=20)  # appends continue cleanly after the cut
    got, _ = _read_all(again)
    assert seqs(got) == [20, 21, 22]
    await again.close()
    assert scan_segment(segment)[2] is True


async def test_corrupt_frame_cuts_the_rest_of_the_segment(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    _append(spool, 10)
    await spool.close()
    segment = next(tmp_path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    _valid, records, clean = scan_segment(segment)
    assert (records, clean) == (10, True)
    offset = 0
    for _ in range(6):
        offset += 8 + int.from_bytes(data[offset : offset + 4], "little")
    data[offset + 12] ^= 0xFF  # flip one payload byte of frame 6
    segment.write_bytes(bytes(data))

    again = _spool(tmp_path)
    got, _ = _read_all(again)
    assert seqs(got) == list(range(6))
    assert again.corrupt_bytes_cut == len(data) - offset
    await again.close()


async def test_overflow_to_disk_keeps_order(tmp_path: Path) -> None:
    """The reader lags behind the writer: part comes from the memory cache, part from disk, in one order."""
    spool = _spool(tmp_path, memory_records=10, segment_bytes=4096)
    got = []
    for start in range(0, 300, 25):
        _append(spool, 25, start)
        batch, pos = spool.read(9)
        got.extend(batch)
        spool.commit(pos)
    assert len(list(tmp_path.glob("*.seg"))) > 1
    rest, _ = _read_all(spool, step=13)
    got.extend(rest)
    assert seqs(got) == list(range(300))
    for tag in ("hr:0", "hr:1", "hr:2"):
        per_tag = [r.seq for r in got if r.tag_id == tag]
        assert per_tag == sorted(per_tag)
    await spool.close()


async def test_commit_deletes_consumed_segments_and_persists_cursor(tmp_path: Path) -> None:
    spool = _spool(tmp_path, segment_bytes=4096)
    for start in range(0, 400, 50):
        _append(spool, 50, start)
    assert len(list(tmp_path.glob("*.seg"))) >= 4
    size_before = spool.size_bytes
    got, pos = _read_all(spool, step=100)
    spool.commit(pos)
    assert seqs(got) == list(range(400))
    assert len(list(tmp_path.glob("*.seg"))) == 1
    assert spool.size_bytes < size_before
    assert spool.depth == 0
    assert (tmp_path / CURSOR_FILE).exists()
    await spool.close()
    again = _spool(tmp_path)
    assert again.pending == 0
    await again.close()


async def test_drop_oldest_segment_counts_and_skips(tmp_path: Path) -> None:
    spool = _spool(tmp_path, segment_bytes=4096, max_bytes=1 << 20)
    for start in range(0, 200, 50):
        _append(spool, 50, start)
    first_segment_records = spool._segments[0].records
    dropped = spool.drop_oldest_segment()
    assert dropped == first_segment_records > 0
    got, _ = _read_all(spool)
    assert seqs(got) == list(range(first_segment_records, 200))
    await spool.close()


async def test_unreadable_cursor_replays_from_oldest(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    _append(spool, 5)
    await spool.close()
    (tmp_path / CURSOR_FILE).write_text("{not json")
    again = _spool(tmp_path)
    got, _ = _read_all(again)
    assert seqs(got) == list(range(5))
    await again.close()


@pytest.mark.parametrize("durability", ["fsync", "write"])
async def test_wait_durable_returns(tmp_path: Path, durability: str) -> None:
    spool = Spool(tmp_path, durability=durability, fsync_interval_ms=1)
    spool.open()
    _append(spool, 3)
    await spool.wait_durable()
    assert spool._synced_gen == (spool._written_gen if durability == "fsync" else 0)
    await spool.close()


async def test_failed_write_leaves_no_torn_frame(tmp_path: Path) -> None:
    """Disk full mid-append: the records are refused and the segment is cut back to whole frames."""
    spool = _spool(tmp_path)
    _append(spool, 5)
    size = spool.size_bytes

    class DiskFull:
        def write(self, data: bytes) -> None:
            with (tmp_path / next(tmp_path.glob("*.seg")).name).open("ab") as fh:
                fh.write(data[: len(data) // 2])  # half of it reached the disk
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            return None

    spool._writer = DiskFull()  # type: ignore[assignment]
    with pytest.raises(SpoolWriteError, match="No space left"):
        _append(spool, 5, start=5)
    _append(spool, 3, start=10)
    got, _ = _read_all(spool)
    assert seqs(got) == [0, 1, 2, 3, 4, 10, 11, 12]
    assert spool.size_bytes > size
    await spool.close()
    assert scan_segment(next(tmp_path.glob("*.seg")))[1:] == (8, True)


async def test_cursor_past_the_segments_is_clamped(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    _append(spool, 4)
    await spool.close()
    (tmp_path / CURSOR_FILE).write_text('{"segment": 99, "offset": 12}')
    again = _spool(tmp_path)
    assert again.pending == 0
    _append(again, 2, start=4)
    got, _ = _read_all(again)
    assert seqs(got) == [4, 5]
    await again.close()


async def test_commit_soon_persists_the_cursor_in_the_background(tmp_path: Path) -> None:
    """The pipeline's commit: counters move at once, the cursor file and segment deletion follow."""
    import asyncio

    spool = _spool(tmp_path, segment_bytes=4096)
    for start in range(0, 400, 50):
        _append(spool, 50, start)
    first, pos = spool.read(250)
    spool.commit_soon(pos)
    assert spool.depth == 150
    async with asyncio.timeout(10):
        while Spool(tmp_path)._load_cursor() != pos:
            await asyncio.sleep(0.01)
    # a crash now (no close): only the 150 unacknowledged records come back
    crashed = _spool(tmp_path)
    got, _ = _read_all(crashed)
    assert seqs(first) == list(range(250))
    assert seqs(got) == list(range(250, 400))
    await crashed.close()
    _rest, end = _read_all(spool)
    spool.commit_soon(end)
    await spool.close()  # close persists what the background writer had not yet
    assert _spool(tmp_path).pending == 0


async def test_commits_arriving_quickly_share_cursor_writes_and_close_saves_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ack per record at thousands a second must not mean one fsync'd cursor write each: at most one per
    CURSOR_INTERVAL_S, and a clean stop still saves the last position (nothing re-sent after it)."""
    import asyncio

    written = []
    real = Spool._write_cursor
    monkeypatch.setattr(Spool, "_write_cursor", lambda self, position: (written.append(position), real(self, position)))
    spool = _spool(tmp_path)
    _append(spool, 200)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(200):
        _batch, pos = spool.read(1)
        spool.commit_soon(pos)
        await asyncio.sleep(0.001)
    took = loop.time() - start
    await spool.close()
    assert len(written) <= took / CURSOR_INTERVAL_S + 3  # 200 commits, a handful of writes
    assert Spool(tmp_path)._load_cursor() == pos
    assert _spool(tmp_path).pending == 0


def test_codec_reads_frames_of_the_earlier_orjson_format_and_rejects_garbage() -> None:
    import orjson

    from iot_connector.pipeline import codec

    record = make_records(1)[0].finalize()
    legacy = orjson.dumps(list(codec._VALUES(record)))  # what spools written before the marshal format hold
    assert codec.decode(legacy) == record
    assert codec.decode(codec.encode(record)) == record
    with pytest.raises(ValueError, match="not a Record"):
        codec.decode(codec.FORMAT_MARSHAL + __import__("marshal").dumps("text"))

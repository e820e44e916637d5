"""Work-unit planning and watermark arithmetic (pure functions the runner relies on)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import pairwise

from osipi_connector import watermarks
from osipi_connector.plan import CommitGrid, Tag, WorkUnit, plan_units, split_window
from osipi_connector.watermarks import Watermark

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


def test_split_window_pieces_are_contiguous_on_the_grid() -> None:
    start, end = T0 + timedelta(minutes=10), T0 + 3 * H + timedelta(minutes=5)
    pieces = split_window(start, end, H)
    assert [(s, e) for _, s, e in pieces] == [
        (start, T0 + H),
        (T0 + H, T0 + 2 * H),
        (T0 + 2 * H, T0 + 3 * H),
        (T0 + 3 * H, end),
    ]
    assert [slot for slot, _, _ in pieces] == list(range(pieces[0][0], pieces[0][0] + 4))
    assert split_window(end, start, H) == []


def test_units_share_slots_across_tags_and_only_the_last_piece_keeps_its_end() -> None:
    tags = [Tag(f"W{i}", f"T{i}") for i in range(5)]
    windows = [(t, T0 + i * timedelta(minutes=20), T0 + 2 * H) for i, t in enumerate(tags)]
    units = plan_units(windows, batch_size=2, max_window=H)
    assert all(len(u.windows) <= 2 for u in units)
    pieces = {}
    for unit in units:
        for w in unit.windows:
            pieces.setdefault(w.webid, []).append(w)
    for tag, start, end in windows:
        got = sorted(pieces[tag.webid], key=lambda w: w.start)
        assert got[0].start == start
        assert got[-1].end == end
        assert all(a.end == b.start for a, b in pairwise(got))
        assert [w.include_end for w in got] == [False] * (len(got) - 1) + [True]
    # units are in time order: a unit never starts before the previous one's slot
    starts = [min(w.start for w in u.windows) for u in units]
    assert starts == sorted(starts)


def test_incremental_windows_start_at_high_minus_lookback() -> None:
    tags = [Tag("old", "a"), Tag("new", "b"), Tag("done", "c")]
    marks = {
        "old": Watermark("old", "a", T0 - 5 * H, T0),
        "done": Watermark("done", "c", T0 - 5 * H, T0 + 10 * H),
    }
    wins = watermarks.windows("incremental", tags, marks, start=T0 - 24 * H, end=T0 + 3 * H, lookback=2 * H)
    assert [(t.webid, s, e) for t, s, e in wins] == [
        ("old", T0 - 2 * H, T0 + 3 * H),
        ("new", T0 - 24 * H, T0 + 3 * H),
    ]
    full = watermarks.windows("full", tags, marks, start=T0 - H, end=T0, lookback=2 * H)
    assert {(s, e) for _, s, e in full} == {(T0 - H, T0)}


def test_watermarks_high_only_forward_low_only_back() -> None:
    mark = Watermark("w", "n", T0, T0 + 10 * H)
    assert watermarks.advanced("incremental", None, T0, T0 + H) == (T0, T0 + H)
    assert watermarks.advanced("incremental", mark, T0 + 8 * H, T0 + 12 * H) == (T0, T0 + 12 * H)
    assert watermarks.advanced("full", mark, T0 - H, T0 + 2 * H) == (T0 - H, T0 + 10 * H)
    assert watermarks.advanced("backfill", mark, T0 - 5 * H, T0 + H) == (T0 - 5 * H, T0 + 10 * H)
    # a backfill beyond high leaves a gap: high stays where the contiguous data ends
    assert watermarks.advanced("backfill", mark, T0 + 20 * H, T0 + 30 * H) == (T0, T0 + 10 * H)


def test_commit_grid_cuts_a_60_and_a_70_minute_run_at_the_same_units() -> None:
    """Run 1 reads 60 minutes, the next runs 70: commits counted in units (not rows) fall on the same tags, so
    the next run MERGEs into each lookback file from one commit (plan.CommitGrid)."""
    units = [WorkUnit(i, (), slot=0) for i in range(64)]

    def boundaries(rows_per_unit: int) -> list[int]:
        grid = CommitGrid(units, commit_rows=1_000_000)
        cuts, buffered = [], 0
        for unit in units:
            if buffered and grid.starts_commit(unit):
                cuts.append(unit.index)
                buffered = 0
            buffered += rows_per_unit
            grid.observe(1, rows_per_unit)
            assert not grid.must_commit(buffered)
        return cuts

    def by_rows(rows_per_unit: int) -> list[int]:  # the old rule: commit once commit_rows rows wait
        cuts, buffered = [], 0
        for unit in units:
            buffered += rows_per_unit
            if buffered >= 1_000_000:
                cuts.append(unit.index + 1)
                buffered = 0
        return cuts

    assert boundaries(61_000) == boundaries(71_200) == list(range(16, 64, 16))
    assert by_rows(61_000)[:2] == [17, 34]
    assert by_rows(71_200)[:2] == [15, 30]


def test_commit_grid_caps_a_commit_at_twice_commit_rows() -> None:
    grid = CommitGrid([WorkUnit(0, (), slot=0)], commit_rows=100)
    grid.observe(1, 10)  # a sparse first unit: no span yet (below half of commit_rows)
    assert grid.span is None
    assert not grid.must_commit(199)
    assert grid.must_commit(200)

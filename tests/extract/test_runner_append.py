"""The append fast path seen from a run: a first load appends, a crash after some appends is repaired by
the next run without duplicates, and a re-run over the same window MERGEs into a table that does not change."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from osipi_connector import PILakeflowConnector
from osipi_connector.committer import Committer
from osipi_connector.executor import _bounded
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import TIMESERIES, WATERMARKS, TableSpec
from osipi_connector.lake.sink import WriteResult
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.plan import Tag, plan_units
from tests.extract.conftest import served_rows, table_rows
from tests.extract.test_runner import END, START, config

pytestmark = pytest.mark.integration


def operations(sink: DeltaSink) -> list[str]:
    return [c["operation"] for c in reversed(DeltaTable(sink.path(TIMESERIES)).history())]


class CrashAfterAppends(DeltaSink):
    """Dies on the third timeseries commit: two commits (appends) are on disk, their watermarks may not be."""

    commits = 0

    def merge(self, spec: TableSpec, data: pa.Table, **hints) -> WriteResult:
        if spec.name == TIMESERIES.name:
            self.commits += 1
            if self.commits == 3:
                raise OSError("simulated crash in the middle of the timeseries commits")
        return super().merge(spec, data, **hints)


def test_first_load_appends_and_a_crash_midway_is_repaired_without_duplicates(simulator, names, tmp_path) -> None:
    tags = list(names)
    cfg = config(simulator.url, tmp_path / "lake", tags, mode="incremental")
    cfg["performance"]["commit_rows"] = 2_000  # several commits per run
    crashing = CrashAfterAppends(tmp_path / "lake")
    crashed = PILakeflowConnector(cfg, sink=crashing).run(datasets=["timeseries"])
    assert any("simulated crash" in e for e in crashed.errors)
    assert operations(crashing)[1:] == ["WRITE", "WRITE"]  # a fresh table: appended, not merged
    sink = DeltaSink(tmp_path / "lake")
    repaired = PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"])
    assert repaired.status == "success", repaired.errors
    served = served_rows(simulator.url, list(names.values()), format_datetime(START), format_datetime(END))
    landed = table_rows(sink)
    assert len(landed) == len(set(landed))  # no duplicates...
    assert set(landed) == served  # ...and nothing lost
    version = DeltaTable(sink.path(TIMESERIES)).version()
    again = PILakeflowConnector(config(simulator.url, tmp_path / "lake", tags), sink=sink).run(datasets=["timeseries"])
    assert again.status == "success"
    assert sorted(table_rows(sink), key=str) == sorted(landed, key=str)
    assert DeltaTable(sink.path(TIMESERIES)).version() == version  # a full re-run changes nothing


def test_units_are_in_webid_order_per_slot_and_reach_the_buffer_in_plan_order() -> None:
    """What keeps commits' file statistics disjoint: WebID order within a slot, plan order at the buffer."""
    tags = [Tag(f"W{i:03d}") for i in random.Random(3).sample(range(40), 40)]
    units = plan_units([(t, START, END) for t in tags], batch_size=7, max_window=timedelta(minutes=45))
    for slot in {u.slot for u in units}:
        webids = [w for u in units if u.slot == slot for w in u.webids]
        assert webids == sorted(webids)
        assert len(webids) == len(tags)
    assert [u.slot for u in units] == sorted(u.slot for u in units)

    def slow_first(unit):  # later units finish first: completion order differs from plan order
        time.sleep(0.02 if unit.index % 3 == 0 else 0.0)
        return unit.index

    with ThreadPoolExecutor(3) as pool:
        seen = [future.result() for _, future in _bounded(pool, slow_first, units, 5)]
    assert seen == [u.index for u in units]


class HoldsFirstCommit(DeltaSink):
    """The first timeseries commit waits until the run has handed over the next one, then records the order
    of every write: a commit written on the main thread would never return (the run would stop here)."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.second_handed_over = threading.Event()
        self.writes: list[tuple[str, str]] = []
        self.timeseries_commits = 0

    def merge(self, spec: TableSpec, data: pa.Table, **hints) -> WriteResult:
        if spec.name == TIMESERIES.name:
            self.timeseries_commits += 1
            if self.timeseries_commits == 1:
                assert self.second_handed_over.wait(30), "the next commit was not fetched while this one was written"
        self.writes.append((spec.name, threading.current_thread().name))
        return super().merge(spec, data, **hints)


def test_the_next_commit_is_fetched_while_one_is_written_and_commits_stay_in_order(
    simulator, names, tmp_path, monkeypatch
) -> None:
    cfg = config(simulator.url, tmp_path / "lake", list(names), mode="incremental")
    cfg["performance"]["commit_rows"] = 2_000  # several commits per run
    sink = HoldsFirstCommit(tmp_path / "lake")
    handed_over = Committer.submit

    def submit(self, commit, *args):
        if sink.timeseries_commits >= 1:  # the first commit is being written
            sink.second_handed_over.set()
        handed_over(self, commit, *args)

    monkeypatch.setattr(Committer, "submit", submit)
    result = PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"])
    assert result.status == "success", result.errors
    timeseries = [i for i, (name, _) in enumerate(sink.writes) if name == TIMESERIES.name]
    assert len(timeseries) >= 3
    assert {thread for name, thread in sink.writes if name in (TIMESERIES.name, WATERMARKS.name)} == {"pi-commit_0"}
    # each commit's rows before its watermarks, one commit at a time
    kinds = [name for name, _ in sink.writes if name in (TIMESERIES.name, WATERMARKS.name)]
    assert kinds[0] == TIMESERIES.name
    assert kinds.count(WATERMARKS.name) >= 1
    served = served_rows(simulator.url, list(names.values()), format_datetime(START), format_datetime(END))
    assert sorted(table_rows(sink), key=str) == sorted(served, key=str)


def test_a_failed_commit_stops_the_run_loudly_and_no_watermark_passes_its_rows(simulator, names, tmp_path) -> None:
    cfg = config(simulator.url, tmp_path / "lake", list(names), mode="incremental", batch_size=2)
    cfg["performance"] |= {"commit_rows": 200, "max_window": "1d"}  # two tags per unit and commit, done in it
    crashing = CrashAfterAppends(tmp_path / "lake")
    result = PILakeflowConnector(cfg, sink=crashing).run(datasets=["timeseries"])
    assert result.status != "success"
    assert any("simulated crash" in e for e in result.errors)
    assert crashing.commits == 3  # nothing was written after the failed commit
    served = served_rows(simulator.url, list(names.values()), format_datetime(START), format_datetime(END))
    landed = set(table_rows(crashing))
    done = [r["item_id"] for r in crashing.read(WATERMARKS).to_pylist() if r["high_watermark"] is not None]
    assert done  # the commits before the failure moved their tags' watermarks...
    for webid in done:  # ...and only over rows that are in the table
        assert {row for row in served if row[0] == webid} <= landed

"""The blind appender commits the sink's batches itself: its stats are delta-rs' own, readers skip files
correctly with them, and a racing writer, a changed or replaced table, a failed link or a kill -9 lose or
corrupt nothing."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake

from iot_connector.metrics import Metrics
from iot_connector.model import RECORD_SCHEMA, Record
from iot_connector.sinks.base import SinkError
from iot_connector.sinks.delta import DeltaSink, records_table
from iot_connector.sinks.delta_append import DICTIONARY_COLUMNS, TEMP_PREFIX, BlindAppender, unsupported
from tests.edge.helpers import make_records

LONG = "line-7/" + "é" * 300  # over STATS_STRING_BYTES


def _batch(start: int, n: int = 50, **overrides: object) -> pa.Table:
    records = [r.finalize() for r in make_records(n, start)]
    for name, value in overrides.items():
        for record in records:
            setattr(record, name, value)
    return records_table(records, "a")


def _new_table(path: Path) -> BlindAppender:
    DeltaTable.create(str(path), schema=RECORD_SCHEMA)
    return BlindAppender(path, 0)


def _seqs(path: Path, filters: list | None = None) -> list[int]:
    table = DeltaTable(str(path)).to_pyarrow_table(columns=["seq"], filters=filters)
    return sorted(table.column("seq").to_pylist())


def _add(path: Path, version: int) -> dict:
    lines = (path / "_delta_log" / f"{version:020d}.json").read_text().splitlines()
    return next(json.loads(line)["add"] for line in lines if line.startswith('{"add"'))


def _mixed() -> list[Record]:
    records = [r.finalize() for r in make_records(40)]
    records[3].value_double, records[4].tag_path, records[5].value_long = None, "ü-ß/温度", -(2**63)
    records[6].value_string, records[7].value_bool, records[8].value_double = "x" * 200, True, 0.0
    records[9].tag_path, records[10].tag_path = LONG, "\U0010ffff" * 20 + "z"  # max: nothing to increment
    records[11].unit = "a" * 63 + "\u00bf" * 3  # cut inside a 2-byte character
    return records


def _with(n: int, **values: object) -> list[Record]:
    records = [r.finalize() for r in make_records(n)]
    for record, value in zip(records, values.pop("value_double", [])):
        record.value_double = value
    for name, value in values.items():
        for record in records:
            setattr(record, name, value)
    return records


@pytest.mark.parametrize(
    "records",
    [
        _mixed(),
        _with(4, value_double=[float("nan"), 1.5, float("nan"), -2.0]),
        _with(3, value_double=[float("nan")] * 3),
        _with(3, value_double=[float("inf"), 1.0, float("-inf")]),
        _with(3, value_double=[0.0, -0.0, 0.0]),
        _with(2, value_string="é" * 40, value_raw="\u20ac" * 30),
    ],
    ids=["mixed", "nan-and-numbers", "only-nan", "infinities", "zeros", "long-multibyte"],
)
def test_the_stats_are_those_delta_rs_writes_for_the_same_rows(tmp_path: Path, records: list[Record]) -> None:
    table = records_table(records, "a")
    path = tmp_path / "t"
    _new_table(path).append(table)
    write_deltalake(str(path), table, mode="append")
    ours, theirs = (json.loads(_add(path, v)["stats"]) for v in (1, 2))  # strict JSON: no NaN
    assert ours == theirs


def test_long_strings_get_bounds_that_keep_their_file_in_a_filter(tmp_path: Path) -> None:
    path = tmp_path / "t"
    appender = _new_table(path)
    appender.append(_batch(0, 3, tag_path=LONG))
    appender.append(_batch(3, 3, tag_path="line-8"))
    stats = json.loads(_add(path, 1)["stats"])
    low, high = stats["minValues"]["tag_path"], stats["maxValues"]["tag_path"]
    assert low < LONG < high
    assert len(low.encode()) <= 64
    assert len(high.encode()) <= 64
    assert _seqs(path, [("tag_path", "=", LONG)]) == [0, 1, 2]
    assert _seqs(path, [("tag_path", "=", "line-8")]) == [3, 4, 5]


def test_readers_skip_files_with_the_stats_and_lose_no_row(tmp_path: Path) -> None:
    path = tmp_path / "t"
    appender = _new_table(path)
    for start in range(0, 500, 50):
        appender.append(_batch(start))
    DeltaTable(str(path)).create_checkpoint()  # delta-rs parses the stats into its checkpoint
    actions = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).to_pydict()
    assert sorted(zip(actions["min.seq"], actions["max.seq"])) == [(s, s + 49) for s in range(0, 500, 50)]
    assert actions["null_count.value_long"] == [50] * 10
    for k in (0, 49, 50, 273, 499):
        assert _seqs(path, [("seq", "=", k)]) == [k]
    assert _seqs(path, [("seq", ">=", 480)]) == list(range(480, 500))


def test_a_racing_writer_takes_versions_and_every_row_lands_once(tmp_path: Path) -> None:
    """A second writer (another agent, a user's job) commits while the appender does: each finds the next
    free version; the log stays contiguous."""
    path = tmp_path / "t"
    appender = _new_table(path)

    def other() -> None:  # delta-rs gives up after 15 lost races by default: the appender commits ~1 ms apart
        retries = CommitProperties(max_commit_retries=1000)
        for start in range(10_000, 10_400, 20):
            write_deltalake(str(path), _batch(start, 20), mode="append", commit_properties=retries)

    racer = threading.Thread(target=other)
    racer.start()
    for start in range(0, 1000, 25):
        appender.append(_batch(start, 25))
    racer.join()
    assert _seqs(path) == list(range(1000)) + list(range(10_000, 10_400))
    versions = sorted(int(p.name[:20]) for p in (path / "_delta_log").glob("*.json"))
    assert versions == list(range(61))
    assert not list((path / "_delta_log").glob(f"{TEMP_PREFIX}*"))


async def test_a_commit_that_changes_the_table_sends_the_sink_to_delta_rs_writer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone adds a CHECK constraint while the agent runs: the appender sees the metadata change at the
    version it wanted, and the sink goes on through delta-rs' writer, which enforces the constraint."""
    path, metrics = tmp_path / "t", Metrics()
    sink = DeltaSink(path, "a", metrics=metrics)
    await sink.open()
    await sink.write([r.finalize() for r in make_records(10)])
    assert metrics.registry.get_sample_value("iot_delta_blind_append") == 1
    DeltaTable(str(path)).alter.add_constraint({"seq_small": "seq < 100"})
    with caplog.at_level(logging.WARNING):
        await sink.write([r.finalize() for r in make_records(10, 10)])
    assert "CHECK constraints (delta.constraints.seq_small)" in caplog.text
    assert metrics.registry.get_sample_value("iot_delta_blind_append") == 0
    with pytest.raises(SinkError):  # the constraint holds: delta-rs refuses the batch
        await sink.write([r.finalize() for r in make_records(5, 200)])
    await sink.close()
    assert _seqs(path) == list(range(20))


async def test_a_failed_link_leaves_no_file_behind_and_the_next_batch_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t"
    sink = DeltaSink(path, "a")
    await sink.open()
    await sink.write([r.finalize() for r in make_records(10)])
    files_before = sorted(path.glob("*.parquet"))

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "link", refuse)
    with pytest.raises(SinkError, match="Permission denied"):
        await sink.write([r.finalize() for r in make_records(10, 10)])
    assert sorted(path.glob("*.parquet")) == files_before
    assert not list((path / "_delta_log").glob(f"{TEMP_PREFIX}*"))
    monkeypatch.undo()
    await sink.write([r.finalize() for r in make_records(10, 10)])  # what the pipeline's retry does
    await sink.close()
    assert _seqs(path) == list(range(20))
    assert DeltaTable(str(path)).version() == 2


async def test_a_table_replaced_under_the_sink_gets_no_gap_in_its_log(tmp_path: Path) -> None:
    """The user moved the table away and a new one was created at the path: the appender's next version
    would leave a hole, so it loads the new table first."""
    path = tmp_path / "t"
    sink = DeltaSink(path, "a")
    await sink.open()
    for start in range(0, 30, 10):
        await sink.write([r.finalize() for r in make_records(10, start)])
    path.rename(tmp_path / "old")
    DeltaTable.create(str(path), schema=RECORD_SCHEMA)
    await sink.write([r.finalize() for r in make_records(10, 100)])
    await sink.close()
    assert DeltaTable(str(path)).version() == 1
    assert _seqs(path) == list(range(100, 110))


def test_versions_behind_the_last_checkpoint_are_never_written_again(tmp_path: Path) -> None:
    """Log entries before a checkpoint may be deleted as expired: an appender that last knew version 0
    must not write a new version 1, which readers starting at the checkpoint would never see."""
    path = tmp_path / "t"
    appender = _new_table(path)
    for start in range(0, 100, 20):
        write_deltalake(str(path), _batch(start, 20), mode="append")
    DeltaTable(str(path)).create_checkpoint()
    for version in range(5):
        (path / "_delta_log" / f"{version:020d}.json").unlink()  # what an expired-log cleanup does
    assert appender.append(_batch(100, 20)) == 6
    assert _seqs(path) == list(range(120))


_APPEND_FOREVER = """
import sys, itertools
from pathlib import Path
from iot_connector.sinks.delta import records_table
from iot_connector.sinks.delta_append import BlindAppender
from tests.edge.helpers import make_records
path, offset = Path(sys.argv[1]), int(sys.argv[2])
appender = BlindAppender(path, 0)
print("ready", flush=True)
for i in itertools.count():
    appender.append(records_table([r.finalize() for r in make_records(100, offset + 100 * i)], "a"))
"""


def test_kill_9_mid_append_leaves_a_readable_table_of_whole_commits(tmp_path: Path) -> None:
    path = tmp_path / "t"
    DeltaTable.create(str(path), schema=RECORD_SCHEMA)
    for round_, delay in enumerate((0.3, 0.45, 0.6)):
        proc = subprocess.Popen(
            [sys.executable, "-c", _APPEND_FOREVER, str(path), str(round_ * 10**6)],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parents[2],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        versions = DeltaTable(str(path)).version()
        seqs = _seqs(path)
        assert len(seqs) == 100 * versions == len(set(seqs))  # whole commits, each row once
        assert all(json.loads(_add(path, v)["stats"])["numRecords"] == 100 for v in range(1, versions + 1))
    assert versions > 3  # the appends did run between the kills
    referenced = {Path(uri).name for uri in DeltaTable(str(path)).file_uris()}
    assert len({p.name for p in path.glob("*.parquet")} - referenced) <= 3  # at most one orphan per kill
    appender = BlindAppender(path, versions)
    appender.remove_temporaries(older_than_s=0)
    assert not list((path / "_delta_log").glob(f"{TEMP_PREFIX}*"))
    appender.append(_batch(5 * 10**6, 10))
    assert len(_seqs(path)) == 100 * versions + 10


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: DeltaTable.create(p, schema=RECORD_SCHEMA, partition_by=["source_id"]), "partitioned by"),
        (
            lambda p: DeltaTable.create(p, schema=RECORD_SCHEMA, configuration={"delta.columnMapping.mode": "name"}),
            "writer protocol 5",
        ),
        (
            lambda p: DeltaTable.create(p, schema=RECORD_SCHEMA, configuration={"delta.enableDeletionVectors": "true"}),
            "deletionVectors",
        ),
        (
            lambda p: DeltaTable.create(p, schema=RECORD_SCHEMA.append(pa.field("site", pa.string()))),
            "schema differs",
        ),
    ],
    ids=["partitioned", "column-mapping", "deletion-vectors", "extra-column"],
)
def test_tables_a_blind_append_cannot_serve_are_declined_with_the_reason(tmp_path: Path, make, reason) -> None:
    make(str(tmp_path))
    assert reason in (unsupported(DeltaTable(str(tmp_path))) or "")


def test_the_agents_own_table_with_change_data_feed_and_append_only_is_served(tmp_path: Path) -> None:
    config = {"delta.enableChangeDataFeed": "true", "delta.appendOnly": "true"}
    DeltaTable.create(str(tmp_path), schema=RECORD_SCHEMA, configuration=config)
    assert unsupported(DeltaTable(str(tmp_path))) is None
    BlindAppender(tmp_path, 0).append(_batch(0, 5))
    assert _seqs(tmp_path) == list(range(5))


def test_records_round_trip_through_the_appender(tmp_path: Path) -> None:
    record = Record(
        source_id="s",
        protocol="mqtt",
        endpoint="mqtt://127.0.0.1",
        tag_id="t",
        data_type="string",
        value_string=LONG,
        value_long=2**63 - 1,
        attributes={"topic": "a/b", "qos": "1"},
    ).finalize()
    _new_table(tmp_path).append(records_table([record], "agent"))
    row = DeltaTable(str(tmp_path)).to_pyarrow_table().to_pylist()[0]
    assert row["value_string"] == LONG
    assert row["value_long"] == 2**63 - 1
    assert dict(row["attributes"]) == {"topic": "a/b", "qos": "1"}
    assert row["record_id"] == record.record_id
    assert row["agent_id"] == "agent"


async def test_a_file_system_without_hard_links_sends_the_sink_to_delta_rs_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """link(2) fails with EPERM where the file system has no hard links (some network and FUSE mounts): the
    batch is committed by delta-rs' writer instead, and so is every later one; nothing is lost or doubled."""
    path, metrics = tmp_path / "t", Metrics()
    sink = DeltaSink(path, "a", metrics=metrics)
    await sink.open()
    attempts = []

    def no_links(src: object, dst: object) -> None:
        attempts.append(dst)
        raise OSError(errno.EPERM, "Operation not permitted", str(dst))

    monkeypatch.setattr(os, "link", no_links)
    with caplog.at_level(logging.WARNING):
        for start in range(0, 30, 10):
            await sink.write([r.finalize() for r in make_records(10, start)])
    await sink.close()
    assert _seqs(path) == list(range(30))
    assert len(attempts) == 1  # then delta-rs' writer only
    assert "cannot hard-link" in caplog.text
    assert metrics.registry.get_sample_value("iot_delta_blind_append") == 0
    assert len(list(path.glob("*.parquet"))) == 3  # delta-rs' three; the appender's try left no file


def test_only_columns_whose_values_repeat_are_dictionary_encoded(tmp_path: Path) -> None:
    _new_table(tmp_path).append(_batch(0, 500))
    (data,) = tmp_path.glob("*.parquet")
    metadata = pq.ParquetFile(data).metadata
    group = metadata.row_group(0)
    chunks = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert set(DICTIONARY_COLUMNS) <= set(chunks)  # every name is a column of the file
    encoded = {path for path, chunk in chunks.items() if chunk.has_dictionary_page}
    assert encoded == set(DICTIONARY_COLUMNS)

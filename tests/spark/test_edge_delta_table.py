"""Delta Lake on Spark reads the edge agent's local table as the agent wrote it: files and stats committed by
the blind appender (`sinks/delta_append.py`), a checkpoint written by the upkeep (delta-rs) with the log
entries before it expired, a commit by Spark in between. Wrong stats would not fail a read: they would make
Spark skip files that match, so the filters below must return exactly the rows written, and read only the
files whose stats allow a match. One known exception, shared with every table delta-rs writes: NaN (see the
`value_double > 5` filter)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from iot_connector.config.models import DeltaSinkSettings
from iot_connector.model import RECORD_SCHEMA, SCHEMA_VERSION, Record
from iot_connector.sinks import delta_upkeep
from iot_connector.sinks.delta import DeltaSink
from iot_connector.sinks.delta_append import STATS_STRING_BYTES

LONG_PATH = "Werk Süd/Halle ä/" * 20  # 340 chars, non-ASCII: stats keep bounds cut to 64 bytes
LONG_VALUE = "🌡 Temperatur über Grenzwert; " * 12  # 4-byte UTF-8 (a surrogate pair in the JVM)
MAX_LONG = 2**63 - 1


def _record(seq: int | None, source_ts: int, **values) -> Record:
    return Record(
        source_id="plc1",
        protocol="opcua",
        endpoint="opc.tcp://127.0.0.1:4840",
        tag_id=f"ns=2;s=Tag{source_ts % 3}",
        data_type="Double",
        seq=seq,
        source_ts=1_700_000_000_000_000 + source_ts,
        edge_ts=1_700_000_000_500_000 + source_ts,
        **values,
    ).finalize()


def _plain(start: int, attributes: dict[str, str]) -> list[Record]:
    """seq start..start+9, value_double = seq - start (so > 5 for four rows), short non-ASCII strings."""
    return [
        _record(s, s, value_double=float(s - start), tag_path=f"Werk/Halle ä/T{s}", unit="°C", attributes=attributes)
        for s in range(start, start + 10)
    ]


def _hostile_floats() -> list[Record]:
    """seq 100..109: NaN and +inf (Spark orders both above 5), -inf, negatives; nulls in optional columns."""
    doubles = [math.nan, math.inf, -math.inf] + [-float(i) for i in range(3, 9)] + [None]
    records = [_record(100 + i, 100 + i, value_double=d, quality="UNCERTAIN") for i, d in enumerate(doubles)]
    records.append(_record(None, 150, value_double=None, attributes={}))  # a null seq too
    return records


def _hostile_strings_and_longs() -> list[Record]:
    """seq 200..209: value_double null throughout, int64 extremes, strings longer than the stats keep."""
    longs = [MAX_LONG, -MAX_LONG, -(2**63), *range(3, 10)]
    return [
        _record(
            200 + i,
            200 + i,
            value_long=v,
            tag_path=LONG_PATH if i < 5 else LONG_PATH + str(i),
            value_string=LONG_VALUE if i == 0 else "日本語",
            value_raw=json.dumps({"v": v}),
            status_code=0,
            attributes={"qos": "1", "retain": "false", "ünit": "°C", "topic": "a/b/#"},
        )
        for i, v in enumerate(longs)
    ]


def _expected(records: list[Record], agent_id: str = "a") -> dict[str, dict]:
    rows = {}
    for r in records:
        row = {f.name: getattr(r, f.name) for f in RECORD_SCHEMA if f.name not in ("agent_id", "schema_version")}
        rows[r.record_id] = {**row, "agent_id": agent_id, "schema_version": SCHEMA_VERSION}
    return rows


def _comparable(row: dict) -> dict:
    """NaN != NaN: compare it as a marker."""
    d = row["value_double"]
    return {**row, "value_double": "NaN" if isinstance(d, float) and math.isnan(d) else d}


def _query(table: DataFrame, where: str | Column) -> tuple[set[str], int]:
    """The record_ids a filter returns, and how many files the scan read (Delta's data skipping chose them)."""
    df = table.where(where).select("record_id")
    ids = [r.record_id for r in df.collect()]
    assert len(ids) == len(set(ids)), f"duplicates for {where}"
    scan = df._jdf.queryExecution().executedPlan().collectLeaves().head()
    return set(ids), int(scan.metrics().get("numFiles").get().value())


async def test_spark_reads_the_blind_appenders_table_and_skips_files_by_its_stats(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta_upkeep, "CHECKPOINT_EVERY", 3)
    path = tmp_path / "iot_records"
    sink = DeltaSink(path, agent_id="a", settings=DeltaSinkSettings(compact_every_commits=0))  # a file per commit
    await sink.open()
    assert sink._appender is not None  # the blind appender commits, not delta-rs' writer

    plain = _plain(0, {"qos": "1", "retain": "false", "unit_id": "ü"})
    floats, strings = _hostile_floats(), _hostile_strings_and_longs()
    above_five = _plain(300, {})
    for record in above_five:
        record.value_double += 10.5  # all > 5
        record.value_bool = record.seq % 2 == 0
    log = path / "_delta_log"
    await sink.write(plain)
    await sink.write(floats)
    hour_ago = time.time() - 3600  # entries 0-2 expired (log retention 10 min): the checkpoint replaces them
    for version in range(3):
        os.utime(log / f"{version:020d}.json", (hour_ago, hour_ago))
    await sink.write(strings)  # version 3: the upkeep checkpoints it
    await sink.upkeep.close()
    assert json.loads((log / "_last_checkpoint").read_text())["version"] == 3
    assert not (log / f"{0:020d}.json").exists()  # commits 1-2 live in the checkpoint only
    await sink.write(above_five)  # version 4, read from JSON after the checkpoint

    # Spark appends (version 5), then the agent again: its appender takes the next free version (6).
    delta = spark.read.format("delta").load(str(path))
    spark_rows = (
        delta.where("seq < 10")
        .withColumn("record_id", F.concat(F.lit("spark-"), "record_id"))
        .withColumn("seq", F.col("seq") + 1000)
        .withColumn("agent_id", F.lit("spark"))
    )
    spark_rows.write.format("delta").mode("append").save(str(path))
    after_spark = _plain(500, {"k": "v"})
    for record in after_spark:
        record.value_double /= 2  # all < 5 ...
    after_spark[-1].value_double = math.nan  # ... but NaN, which Spark orders above 5
    await sink.write(after_spark)
    await sink.close()
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    assert [h.version for h in history] == [3, 4, 5, 6]  # 0-2 expired
    assert "Spark" in history[2].engineInfo
    assert history[3].engineInfo.startswith("iot-connector/")

    # Every row as written, once.
    written = _expected(plain + floats + strings + above_five + after_spark)
    for r in plain:
        row = dict(written[r.record_id], record_id="spark-" + r.record_id, seq=r.seq + 1000, agent_id="spark")
        written[row["record_id"]] = row
    rows = [row.asDict(recursive=True) for row in spark.read.format("delta").load(str(path)).collect()]
    assert len(rows) == len(written) == 61
    assert {row["record_id"]: _comparable(row) for row in rows} == {k: _comparable(v) for k, v in written.items()}

    # Filters return exactly the matching rows and read only the files whose stats allow a match (6 files).
    def ids(records: list[Record]) -> set[str]:
        return {r.record_id for r in records}

    table = spark.read.format("delta").load(str(path))
    assert _query(table, "true") == (set(written), 6)
    for records in (plain, floats, strings, above_five, after_spark):
        assert _query(table, f"seq = {records[3].seq}") == ({records[3].record_id}, 1)
    assert _query(table, "seq = 1003") == ({"spark-" + plain[3].record_id}, 1)
    # The stats are delta-rs' (tests/edge/test_delta_append.py): NaN is left out of min/max, an infinity makes
    # them null. So Spark, which orders NaN above every number, skips the NaN of a file whose numbers are all
    # <= 5 (after_spark's) on `value_double > 5`, as it does on any table delta-rs writes; `isnan()` finds
    # every NaN (docs/edge_agent.md says so). The file with infinities has null bounds: it is always read.
    over = {r.record_id for r in plain if r.value_double > 5} | {"spark-" + r.record_id for r in plain[6:]}
    over |= ids(above_five) | {floats[0].record_id, floats[1].record_id}
    assert _query(table, "value_double > 5") == (over, 4)
    nans = {floats[0].record_id, after_spark[-1].record_id}
    assert _query(table, "isnan(value_double)") == (nans, 6)
    assert _query(table, "value_double = double('inf')") == ({floats[1].record_id}, 1)
    assert min(len(LONG_PATH.encode()), len(LONG_VALUE.encode())) > STATS_STRING_BYTES
    assert _query(table, f"tag_path = '{LONG_PATH}'") == (ids(strings[:5]), 1)
    assert _query(table, f"tag_path = '{LONG_PATH}9'") == ({strings[9].record_id}, 1)
    assert _query(table, f"value_string = '{LONG_VALUE}'") == ({strings[0].record_id}, 1)
    copies = {plain[3].record_id, "spark-" + plain[3].record_id}
    assert _query(table, "tag_path = 'Werk/Halle ä/T3'") == (copies, 2)  # the long paths' bounds exclude it
    assert _query(table, f"value_long = {MAX_LONG}") == ({strings[0].record_id}, 1)
    assert _query(table, F.col("value_long") == -(2**63)) == ({strings[2].record_id}, 1)  # no SQL literal
    assert _query(table, "seq IS NULL") == ({floats[-1].record_id}, 1)
    assert _query(table, "attributes['ünit'] = '°C'") == (ids(strings), 6)  # maps have no stats

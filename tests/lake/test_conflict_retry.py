"""ConflictRetry: Delta's concurrent-modification errors, and only those, re-run a bounded number of times.

The conflicts are real ones: delta-rs' from two writers on one table version here, Spark + Delta Lake's in
tests/spark/test_concurrent_runs.py (where the runs' retry records name the Java exception that arrived).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from osipi_connector.lake.conflict_retry import ConflictRetry, Retry, conflict_name
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import TAGS, WATERMARKS
from osipi_connector.lake.validate import SchemaMismatchError
from tests.lake import rows


def real_commit_conflict(tmp_path: Path) -> CommitFailedError:
    """Two writers MERGE the same row from the same table version: delta-rs refuses the second commit."""
    write_deltalake(tmp_path / "t", pa.table({"k": [1, 2], "v": [1, 1]}))
    first, second = DeltaTable(tmp_path / "t"), DeltaTable(tmp_path / "t")

    def update(table: DeltaTable, value: int) -> None:
        source = pa.table({"k": [1], "v": [value]})
        table.merge(source, "t.k = s.k", source_alias="s", target_alias="t").when_matched_update_all().execute()

    update(first, 2)
    with pytest.raises(CommitFailedError) as lost:
        update(second, 3)
    return lost.value


class Flaky:
    """A real DeltaSink whose first `failures` merges raise `error` before touching the table."""

    def __init__(self, sink: DeltaSink, error: Exception, failures: int) -> None:
        self.sink, self.error, self.failures, self.calls = sink, error, failures, 0
        self.engine = sink.engine

    def __getattr__(self, name: str):
        return getattr(self.sink, name)

    def merge(self, spec, data, **hints):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.sink.merge(spec, data, **hints)


def no_sleep(seconds: float) -> None:
    assert 0 < seconds <= 1.5 * 0.5 * 2**3  # jittered, doubling from BASE_DELAY, bounded by the attempts


def test_a_conflict_is_retried_counted_and_logged(tmp_path, caplog) -> None:
    conflict = real_commit_conflict(tmp_path)
    sink = ConflictRetry(Flaky(DeltaSink(tmp_path / "lake"), conflict, failures=2), sleep=no_sleep)
    data = rows.table(WATERMARKS, [rows.watermark("W1", rows.T0)])
    with caplog.at_level(logging.WARNING, logger="osipi_connector.lake.conflict_retry"):
        result = sink.merge(WATERMARKS, data)
    assert result.inserted == 1
    assert sink.read(WATERMARKS).num_rows == 1
    assert sink.retries == [
        Retry("pi_watermarks", "merge", 1, "CommitFailedError"),
        Retry("pi_watermarks", "merge", 2, "CommitFailedError"),
    ]
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]
    assert "lost a commit race to a concurrent writer (CommitFailedError, attempt 1 of 5)" in caplog.text


def test_after_the_last_attempt_the_conflict_itself_surfaces(tmp_path) -> None:
    conflict = real_commit_conflict(tmp_path)
    flaky = Flaky(DeltaSink(tmp_path / "lake"), conflict, failures=99)
    sink = ConflictRetry(flaky, attempts=3, sleep=no_sleep)
    with pytest.raises(CommitFailedError) as raised:
        sink.merge(TAGS, rows.table(TAGS, []))
    assert raised.value is conflict
    assert flaky.calls == 3
    assert len(sink.retries) == 2


@pytest.mark.parametrize(
    "error",
    [SchemaMismatchError("table pi_tags: column 'x'"), OSError("disk full"), ValueError("bad batch")],
)
def test_any_other_error_is_not_retried(tmp_path, error) -> None:
    flaky = Flaky(DeltaSink(tmp_path), error, failures=1)
    sink = ConflictRetry(flaky, sleep=no_sleep)
    with pytest.raises(type(error)):
        sink.merge(TAGS, rows.table(TAGS, []))
    assert flaky.calls == 1
    assert sink.retries == []


def test_conflict_names(tmp_path) -> None:
    conflict = real_commit_conflict(tmp_path)
    assert conflict_name(conflict) == "CommitFailedError"
    wrapped = RuntimeError("merge failed")
    wrapped.__cause__ = conflict
    assert conflict_name(wrapped) == "CommitFailedError"  # found in the cause chain
    assert conflict_name(ValueError("[DELTA_CONCURRENT_APPEND] but not from Spark")) is None


@pytest.mark.parametrize(
    ("condition", "message", "expected"),
    [
        (
            "DELTA_CONCURRENT_APPEND.WITH_PARTITION_HINT",
            "[DELTA_CONCURRENT_APPEND.WITH_PARTITION_HINT] Files were added",
            "DELTA_CONCURRENT_APPEND",
        ),
        (
            None,
            "[DELTA_PROTOCOL_CHANGED] The protocol version of the Delta table has been changed",
            "DELTA_PROTOCOL_CHANGED",
        ),
        ("TABLE_OR_VIEW_NOT_FOUND", "[TABLE_OR_VIEW_NOT_FOUND] The table cannot be found", None),
    ],
)
def test_spark_connect_errors_by_their_error_class(condition, message, expected) -> None:
    """Spark Connect / Databricks Connect raise PySpark exceptions that carry Delta's error class, not a Java one."""
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException

    assert conflict_name(SparkConnectGrpcException(message, errorClass=condition)) == expected


def test_spark_analysis_errors_are_not_conflicts(spark) -> None:
    from pyspark.errors import AnalysisException

    with pytest.raises(AnalysisException) as raised:
        spark.sql("SELECT * FROM spark_catalog.default.no_such_table_here")
    assert conflict_name(raised.value) is None


def test_a_create_race_seen_by_the_loser_is_a_conflict(spark, tmp_path) -> None:
    """What the second of two simultaneous CREATE TABLE IF NOT EXISTS meets: the winner's files at the table's
    location before the table is registered. Made here for real with a non-Delta file at that location."""
    from pyspark.errors import AnalysisException

    location = tmp_path / "half_made"
    location.mkdir()
    (location / "part-00000.parquet").write_bytes(b"PAR1")
    with pytest.raises(AnalysisException) as raised:
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS spark_catalog.default.half_made (x INT) USING DELTA LOCATION '{location}'"
        )
    assert conflict_name(raised.value) == "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION"


def test_wrapping_twice_keeps_one_layer(tmp_path) -> None:
    inner = DeltaSink(tmp_path)
    assert ConflictRetry(ConflictRetry(inner)).sink is inner
    assert ConflictRetry(inner).path(TAGS) == inner.path(TAGS)  # the engine's own attributes stay reachable

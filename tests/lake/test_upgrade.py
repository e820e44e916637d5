"""`osipi-connector upgrade-tables`: checkpoint tables an earlier version created get this version's layout
(pi_watermarks partitioned by dataset, pi_run_metrics.conflict_retries, .datasets, .watermarks_repaired), rows
kept, on delta-rs and on Spark."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from osipi_connector import cli
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import RUN_METRICS, WATERMARKS
from osipi_connector.lake.sink import Location
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.lake.upgrade import upgrade
from osipi_connector.lake.validate import SchemaMismatchError
from tests.lake import rows

OLD_WATERMARKS = dataclasses.replace(WATERMARKS, partition_by=(), monotonic={})
ADDED = ["conflict_retries", "datasets", "watermarks_repaired"]  # pi_run_metrics columns added since
OLD_RUN_METRICS = dataclasses.replace(
    RUN_METRICS, schema=pa.schema([f for f in RUN_METRICS.schema if f.name not in ADDED])
)
NEW_COLUMNS = dict.fromkeys(ADDED)


def old_tables(sink) -> tuple[pa.Table, pa.Table]:
    """The two tables as the previous version wrote them, with a row each."""
    marks = rows.table(OLD_WATERMARKS, [rows.watermark("W1", rows.T0), rows.watermark("W2", rows.T0)])
    metrics = rows.run_metrics("r1").drop_columns(ADDED)
    sink.merge(OLD_WATERMARKS, marks)
    sink.append(OLD_RUN_METRICS, metrics)
    return marks, metrics


def test_local_tables_are_upgraded_by_the_command_and_keep_their_rows(tmp_path) -> None:
    sink = DeltaSink(tmp_path / "lake")
    marks, metrics = old_tables(sink)
    with pytest.raises(SchemaMismatchError, match=r"partitioned by \[\] on disk, \['dataset'\] in spec"):
        sink.ensure(WATERMARKS)
    with pytest.raises(SchemaMismatchError, match=r"datasets \(missing\).*osipi-connector upgrade-tables"):
        sink.ensure(RUN_METRICS)
    config = tmp_path / "c.yaml"
    config.write_text(
        'pi_web_api:\n  url: "http://127.0.0.1:1"\n  auth_type: anonymous\n'
        'extraction:\n  tag_names: ["t"]\n'
        f'local:\n  lakehouse_root: "{tmp_path / "lake"}"\n'
    )

    cli.main(["upgrade-tables", "--config", str(config)])

    for spec in (WATERMARKS, RUN_METRICS):
        sink.ensure(spec)  # the current specs accept them now
    assert sink.read(WATERMARKS).sort_by("item_id").to_pylist() == marks.to_pylist()
    stored = sink.read(RUN_METRICS).to_pylist()
    assert stored == [{**metrics.to_pylist()[0], **NEW_COLUMNS}]
    assert upgrade(sink) == []  # nothing left to do: safe to repeat


@pytest.mark.slow
def test_unity_catalog_tables_are_upgraded_on_spark(spark) -> None:
    sink = SparkSink(spark, Location("spark_catalog", "bronze_upgrade", "checkpoints_upgrade"))
    marks, metrics = old_tables(sink)

    changes = upgrade(sink)

    assert changes == [
        "spark_catalog.checkpoints_upgrade.pi_watermarks: partitioned by dataset",
        "spark_catalog.checkpoints_upgrade.pi_run_metrics: added conflict_retries, datasets, watermarks_repaired",
    ]
    detail = spark.sql("DESCRIBE DETAIL spark_catalog.checkpoints_upgrade.pi_watermarks").first()
    assert list(detail["partitionColumns"]) == ["dataset"]
    fresh = SparkSink(spark, sink.location)
    assert fresh.read(WATERMARKS).sort_by("item_id").to_pylist() == marks.to_pylist()
    assert fresh.read(RUN_METRICS).to_pylist() == [{**metrics.to_pylist()[0], **NEW_COLUMNS}]
    assert upgrade(fresh) == []

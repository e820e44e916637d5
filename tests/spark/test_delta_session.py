"""The tests' Spark really runs Delta Lake (tests/sparksession.py), and says how to get it when it cannot."""

from __future__ import annotations

import pytest

from tests import sparksession


def test_delta_tables_are_created_merged_and_read(spark, tmp_path) -> None:
    path = tmp_path / "t"
    spark.sql(f"CREATE TABLE delta.`{path}` (id INT, v STRING) USING DELTA")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES (1, 'a'), (2, 'b')")
    spark.sql(
        f"MERGE INTO delta.`{path}` t USING (SELECT 2 AS id, 'B' AS v UNION ALL SELECT 3, 'c') s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    assert sorted(spark.read.format("delta").load(str(path)).collect()) == [(1, "a"), (2, "B"), (3, "c")]
    assert spark.version.startswith("4.0.")


def test_missing_jars_fail_with_the_command_that_fetches_them(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sparksession, "JARS_DIR", tmp_path)
    with pytest.raises(pytest.fail.Exception, match=r"no Delta Lake jars in .*: run `bash tools/spark-jars\.sh`"):
        sparksession.delta_jars()

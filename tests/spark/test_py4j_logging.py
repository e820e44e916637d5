"""py4j's DEBUG logger is capped at INFO by every Spark entry point unless the user set its level: at DEBUG
it recurses without end when a caught Java exception is formatted (spark/py4j_logging.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pyspark.errors import AnalysisException

from osipi_connector import cli
from osipi_connector.lake.spark_sink import SparkSink


@pytest.fixture
def py4j_unset() -> Iterator[logging.Logger]:
    """The `py4j` logger as nobody configured it (NOTSET), its level restored afterwards."""
    logger = logging.getLogger("py4j")
    level = logger.level
    logger.setLevel(logging.NOTSET)
    yield logger
    logger.setLevel(level)


def py4j_debug_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("py4j") and r.levelno < logging.INFO]


def test_a_spark_sink_keeps_py4j_debug_lines_off_and_the_users_on(spark, spark_location, py4j_unset, caplog):
    caplog.set_level(logging.DEBUG)  # as a notebook's logging.basicConfig(level=logging.DEBUG)
    with pytest.raises(AnalysisException):  # a caught Java exception: what set py4j recursing
        spark.sql("SELECT * FROM main.no_such_schema.no_such_table").collect()
    assert py4j_debug_lines(caplog)  # uncapped, py4j talks at DEBUG
    caplog.clear()

    SparkSink(spark, spark_location)
    with pytest.raises(AnalysisException):
        spark.sql("SELECT * FROM main.no_such_schema.no_such_table").collect()
    logging.getLogger("osipi_connector.tests").debug("still at DEBUG")

    assert py4j_debug_lines(caplog) == []
    assert py4j_unset.level == logging.INFO
    assert [r.getMessage() for r in caplog.records if r.name == "osipi_connector.tests"] == ["still at DEBUG"]


def test_py4j_stays_pinned_when_the_root_drops_to_debug_later(spark, spark_location, py4j_unset, caplog):
    caplog.set_level(logging.WARNING)
    SparkSink(spark, spark_location)
    caplog.set_level(logging.DEBUG)  # e.g. a notebook cell configuring logging after the job's setup

    with pytest.raises(AnalysisException):
        spark.sql("SELECT * FROM main.no_such_schema.no_such_table").collect()

    assert [r for r in caplog.records if r.name.startswith("py4j")] == []  # not even its INFO lines


def test_a_level_the_user_set_on_py4j_is_left_alone(spark, spark_location, py4j_unset):
    py4j_unset.setLevel(logging.DEBUG)  # asked for explicitly: theirs to keep

    SparkSink(spark, spark_location)

    assert py4j_unset.level == logging.DEBUG


def test_the_cli_on_databricks_caps_py4j(spark, spark_location, py4j_unset, tmp_path, monkeypatch, capsys):
    config = tmp_path / "connector.yaml"
    config.write_text(
        'pi_web_api:\n  url: "https://pi.example.com/piwebapi"\nextraction:\n  tags: ["W000"]\n', encoding="utf-8"
    )
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")  # default_sink: the active SparkSession
    schemas = ["--schema", spark_location.schema, "--checkpoint-schema", spark_location.checkpoint_schema]

    with pytest.raises(SystemExit) as exited:  # the quickest command through default_sink's SparkSink
        cli.main(["maintain", "--config", str(config), *schemas])

    printed = capsys.readouterr().err
    assert (exited.value.code, "no tables in" in printed) == (2, True)
    assert py4j_unset.level == logging.WARNING  # the CLI's level: pinned there, neither DEBUG nor INFO chatter
    assert "py4j" not in printed

"""One local PySpark session for tests/spark. Same builder settings as tests/lake: when both folders run in one
pytest process, `getOrCreate` hands back the same session, so the JVM (~8 s to start) starts once."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

# Python workers (UDFs, Python data sources) must run this interpreter, which has the project installed;
# set before any fixture builds the session (conftest modules are imported at collection).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark() -> Iterator:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("osipi-spark-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()

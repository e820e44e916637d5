"""The tests' one local Spark: PySpark (the jobs' runtime line, Spark 4.0) with real Delta Lake.

The Delta jars come from Maven (`bash tools/spark-jars.sh` -> build/spark-jars), not from Ivy: Spark's
`spark.jars.packages` resolver does not honour the machine's Maven settings. Missing jars fail the tests that
need Spark with that command in the message (a skip would hide that Delta never ran). Warehouse, metastore and
scratch files live in a throwaway directory, never in the working tree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

JARS_DIR = Path(__file__).resolve().parents[1] / "build" / "spark-jars"
FETCH = "bash tools/spark-jars.sh"

# Python workers (UDFs, Python data sources) must run this interpreter, which has the project installed.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def delta_jars() -> list[Path]:
    """The jars of build/spark-jars; fails the calling test when delta-spark is not among them."""
    jars = sorted(JARS_DIR.glob("*.jar"))
    if not any(j.name.startswith("delta-spark_") for j in jars):
        pytest.fail(
            f"no Delta Lake jars in {JARS_DIR}: run `{FETCH}` (Maven fetches them; `make test` does it)",
            pytrace=False,
        )
    return jars


def delta_session(scratch: Path):
    """A local[2] SparkSession with Delta's SQL extension and catalog; stop it when done."""
    from pyspark.sql import SparkSession

    jars = ",".join(str(j) for j in delta_jars())
    scratch.mkdir(parents=True, exist_ok=True)
    return (
        SparkSession.builder.master("local[2]")
        .appName("osipi-connector-tests")
        .config("spark.jars", jars)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.catalogImplementation", "in-memory")  # no Hive metastore: faster, nothing in cwd
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={scratch / 'derby'}")
        .config("spark.local.dir", str(scratch / "local"))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.databricks.delta.snapshotPartitions", "2")  # test tables' logs are tiny: not 50 tasks
        # VACUUM lists the table with this many tasks (default 10,000: minutes per VACUUM on two cores)
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "2")
        .getOrCreate()
    )

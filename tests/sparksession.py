"""The tests' one local Spark: PySpark (the jobs' runtime line, Spark 4.0) with real Delta Lake.

The Delta jars come from Maven (`bash tools/spark-jars.sh` -> build/spark-jars), not from Ivy: Spark's
`spark.jars.packages` resolver does not honour the machine's Maven settings. Missing jars fail the tests that
need Spark with that command in the message (a skip would hide that Delta never ran). Warehouse, metastore and
scratch files live in a throwaway directory, never in the working tree.

Three-part names (`main.bronze.pi_timeseries`) as on Databricks: the open-source Unity Catalog server and its
Spark connector (io.unitycatalog) are not served by the Maven registry these machines reach, so the catalog
`main` is Delta's own catalog plugin (`DeltaCatalog`, a `DelegatingCatalogExtension`) registered a second time
as `spark.sql.catalog.main` and delegating to the session catalog: `main.bronze.t` is `spark_catalog.bronze.t`,
with every Delta statement (CREATE, MERGE, OPTIMIZE, VACUUM, DESCRIBE HISTORY) working through the name.
One such catalog per session: a second one would share the same schemas.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from osipi_connector.lake.schemas import TableSpec
from osipi_connector.lake.sink import Location

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


def delta_session(scratch: Path, catalog: str = "main"):
    """A local[2] SparkSession with Delta's SQL extension and catalog, and `catalog`.schema.table names."""
    from pyspark.sql import SparkSession

    jars = ",".join(str(j) for j in delta_jars())
    scratch.mkdir(parents=True, exist_ok=True)
    spark = (
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
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.databricks.delta.snapshotPartitions", "2")  # test tables' logs are tiny: not 50 tasks
        # VACUUM lists the table directory with this many tasks (default 10,000: minutes on 2 cores)
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "2")
        .getOrCreate()
    )
    three_part_names(spark, catalog)
    return spark


def three_part_names(spark, catalog: str) -> None:
    """Register `catalog` as DeltaCatalog over the session catalog (see the module docstring)."""
    spark.conf.set(f"spark.sql.catalog.{catalog}", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
    catalogs = spark._jsparkSession.sessionState().catalogManager()
    # A catalog plugin other than spark_catalog gets no delegate from Spark; give it the session catalog.
    catalogs.catalog(catalog).setDelegateCatalog(catalogs.v2SessionCatalog())


def fresh_location(spark, root: Path, catalog: str = "main") -> Location:
    """Schemas of their own for one test (`main.bronze_<id>`, `main.checkpoints_<id>`), created with LOCATION
    `root/<catalog>/<schema>`: Spark's tables then sit exactly where `DeltaSink(root, location)` keeps them,
    so both engines can be pointed at the same tables."""
    suffix = uuid.uuid4().hex[:8]
    location = Location(catalog=catalog, schema=f"bronze_{suffix}", checkpoint_schema=f"checkpoints_{suffix}")
    for schema in (location.schema, location.checkpoint_schema):
        spark.sql(f"CREATE SCHEMA `{catalog}`.`{schema}` LOCATION '{root / catalog / schema}'")
    return location


def drop_location(spark, location: Location) -> None:
    for schema in (location.schema, location.checkpoint_schema):
        spark.sql(f"DROP SCHEMA IF EXISTS `{location.catalog}`.`{schema}` CASCADE")


class StatementSpy:
    """The real session, with the text of every `sql()` call recorded (and run for real), the rows of the
    source temp view at the moment each statement ran, and an optional failure injected before a statement."""

    def __init__(self, spark, fail_on: str | None = None) -> None:
        self._spark = spark
        self.fail_on = fail_on
        self.statements: list[str] = []
        self.sources: dict[str, pa.Table] = {}

    def __getattr__(self, name):
        return getattr(self._spark, name)

    def sql(self, text: str):
        self.statements.append(text)
        view = re.search(r"(?:USING|FROM) `(osipi_src_\w+)`", text)
        if view:
            self.sources[view.group(1)] = self._spark.table(view.group(1)).toArrow()
        if self.fail_on and text.startswith(self.fail_on):
            raise RuntimeError(f"simulated failure of {self.fail_on}")
        return self._spark.sql(text)

    def merged(self, spec: TableSpec) -> list[tuple[int, pa.Table]]:
        """(statement index, source rows) of every MERGE into `spec`'s table, in order."""
        return [
            (i, self.sources[view_of(s)])
            for i, s in enumerate(self.statements)
            if s.startswith("MERGE INTO") and s.split("\n", 1)[0].endswith(f".`{spec.name}` AS t")
        ]


def view_of(statement: str) -> str:
    return re.search(r"`(osipi_src_\w+)`", statement).group(1)

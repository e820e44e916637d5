"""One boundary for "where units run": the runner drives a `UnitExecutor` its sink chose, and neither the runner
nor the Spark modules import each other (spark/ depends on the interface in executor.py, never on runner.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from osipi_connector.config import ConfigError, ConnectorConfig
from osipi_connector.executor import ThreadPoolUnits
from osipi_connector.lake.conflict_retry import ConflictRetry
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.spark.dispatch import SparkUnits

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "osipi_connector"


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function (a lazy import is still a dependency)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_runner_imports_nothing_of_spark() -> None:
    spark = {m for m in imported_modules(PACKAGE / "runner.py") if m.startswith("osipi_connector.spark")}
    assert spark == set()


@pytest.mark.parametrize("module", sorted(p.name for p in (PACKAGE / "spark").glob("*.py")))
def test_no_spark_module_imports_the_runner(module: str) -> None:
    assert "osipi_connector.runner" not in imported_modules(PACKAGE / "spark" / module)


def test_importing_the_runner_loads_neither_spark_nor_pyspark() -> None:
    code = (
        "import sys, osipi_connector.runner; "
        "print(sorted(m for m in sys.modules if m.startswith(('osipi_connector.spark', 'pyspark'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def config(distributed: bool | str) -> ConnectorConfig:
    return ConnectorConfig.from_flat(
        {
            "pi_web_api": {"url": "https://pi.example.com/piwebapi", "auth_type": "anonymous"},
            "extraction": {"tag_names": ["SINUSOID"]},
            "performance": {"distributed": distributed},
        }
    )


def test_the_sink_chooses_the_executor(tmp_path) -> None:
    on_spark = SparkSink(spark=None)  # not a Spark Connect session: a classic cluster's driver
    assert isinstance(DeltaSink(tmp_path).executor(config("auto")), ThreadPoolUnits)
    assert isinstance(on_spark.executor(config("auto")), SparkUnits)
    assert isinstance(on_spark.executor(config(True)), SparkUnits)
    assert isinstance(on_spark.executor(config(False)), ThreadPoolUnits)
    with pytest.raises(ConfigError, match=r"performance\.distributed: true needs the Spark sink"):
        DeltaSink(tmp_path).executor(config(True))


def test_a_wrapped_sink_s_executor_writes_through_the_wrapper(tmp_path) -> None:
    """The runner wraps its sink in ConflictRetry: the executors' MERGE must go through it to be retried."""
    wrapped = ConflictRetry(SparkSink(spark=None))
    units = wrapped.executor(config("auto"))
    assert isinstance(units, SparkUnits)
    assert units.sink is wrapped
    assert isinstance(ConflictRetry(DeltaSink(tmp_path)).executor(config("auto")), ThreadPoolUnits)

"""tests/spark shares tests/lake's session-scoped local PySpark fixture: one JVM (~8 s to start) per run."""

from __future__ import annotations

import os
import sys

# Python workers (UDFs, Python data sources) must run this interpreter, which has the project installed;
# set before any fixture builds the session (conftest modules are imported at collection).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from tests.lake.conftest import spark  # noqa: F401  (the one Spark session fixture)

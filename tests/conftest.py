"""Shared fixtures: one simulator per test session on a free 127.0.0.1 port, with a fixed clock, and one
local PySpark session (JVM start-up is ~8 s here: pay it once per run)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import requests

from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import RunningSimulator, running_simulator

FIXED_NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def sim_config() -> SimConfig:
    return SimConfig(seed=7, tags=500, now=FIXED_NOW, rate_limit_max_requests=0)


@pytest.fixture(scope="session")
def simulator(sim_config: SimConfig) -> Iterator[RunningSimulator]:
    with running_simulator(sim_config) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["X-Requested-With"] = "XMLHttpRequest"
        yield session


# Python workers (UDFs, Python data sources) must run this interpreter, which has the project installed;
# set before any fixture builds the Spark session.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark() -> Iterator:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("osipi-connector-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()  # without it the JVM dies noisily at exit ("terminate called without an active exception")

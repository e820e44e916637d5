"""`spark.read.format("pi_web_api")` on local PySpark, reading the simulator over HTTP."""

from __future__ import annotations

import itertools
from datetime import datetime

import pyarrow as pa
import pytest
from chispa.schema_comparer import assert_schema_equality

from osipi_connector.extract.points import resolve_points
from osipi_connector.extract.timeseries import TagWindow, fetch_recorded
from osipi_connector.lake.schemas import TIMESERIES
from osipi_connector.lake.spark_schema import spark_schema
from osipi_connector.piwebapi.client import PIWebAPIClient
from osipi_connector.piwebapi.pitime import parse_iso
from osipi_connector.piwebapi.settings import ClientSettings
from osipi_connector.simulator.server import RunningSimulator
from osipi_connector.spark.datasource import OptionError, PIWebAPIReader, ReadOptions, register
from tests.conftest import FIXED_NOW

START, END = "2025-03-01T10:00:00Z", "2025-03-01T12:00:00Z"
NAME_FILTER = "*00001*"  # 11 points of several types (counters, flows, levels, digital states)
LINEAGE = ("ingested_at", "run_id")


@pytest.fixture(scope="module")
def pi_read(spark, simulator: RunningSimulator):
    register(spark)

    def reader(**options: str):
        base = {"url": simulator.url, "nameFilter": NAME_FILTER, "startTime": START, "endTime": END}
        return spark.read.format("pi_web_api").options(**(base | options))

    return reader


def extractor_rows(url: str) -> pa.Table:
    """What the local extractor reads for the same tags: one window per tag, no partitioning."""
    with PIWebAPIClient(ClientSettings(url=url, auth_type="anonymous")) as client:
        now = datetime.now(parse_iso(START).tzinfo)
        points = resolve_points(
            client, data_server=None, webids=[], names=[], name_filter=NAME_FILTER, run_id="x", ingested_at=now
        )
        windows = [
            TagWindow(w, n, parse_iso(START), parse_iso(END))
            for w, n in zip(points.column("tag_webid").to_pylist(), points.column("tag_name").to_pylist())
        ]
        return fetch_recorded(client, windows, max_count=10_000, run_id="x", ingested_at=now).table


def rows(table: pa.Table) -> list[tuple]:
    columns = [c for c in TIMESERIES.schema.names if c not in LINEAGE]
    table = table.select(columns)
    return sorted(zip(*(table.column(c).to_pylist() for c in columns)), key=lambda r: (r[0], r[2], r[3]))


def test_partitioned_read_equals_the_local_extractor(pi_read, simulator: RunningSimulator) -> None:
    # 30-minute windows and 3 tags per partition: 16 partitions, many window edges, paging at 500 values.
    df = pi_read(partitionWindow="30m", tagsPerPartition="3", maxCount="500").load()
    assert_schema_equality(df.schema, spark_schema(TIMESERIES.schema))
    read = df.toArrow()
    expected = extractor_rows(simulator.url)
    assert expected.num_rows > 100
    assert read.num_rows == expected.num_rows
    assert rows(read) == rows(expected)
    assert len(set(read.column("run_id").to_pylist())) == 1


def test_partitions_are_tag_groups_times_windows(simulator: RunningSimulator) -> None:
    options = ReadOptions.parse(
        {
            "url": simulator.url,
            "nameFilter": NAME_FILTER,
            "startTime": START,
            "endTime": END,
            "partitionWindow": "40m",
            "tagsPerPartition": "4",
        }
    )
    partitions = PIWebAPIReader(options).partitions()
    tags = {w.webid for p in partitions for w in p.windows}
    groups_per_window = -(-len(tags) // 4)
    assert len(partitions) == 3 * groups_per_window
    assert all(len(p.windows) <= 4 for p in partitions)
    # each tag: three adjacent windows, only the last keeps its end
    webid = sorted(tags)[0]
    pieces = sorted((w.start, w.end, w.include_end) for p in partitions for w in p.windows if w.webid == webid)
    assert [p[2] for p in pieces] == [False, False, True]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))


def test_pi_time_strings_are_relative_to_the_server_clock(pi_read, simulator: RunningSimulator) -> None:
    df = pi_read(startTime="*-30m", endTime="*", nameFilter="TI000018.PV").load()
    stamps = df.select("timestamp").toArrow().column("timestamp").to_pylist()
    assert stamps
    now = FIXED_NOW  # the session simulator's clock; the test machine's clock is years later
    assert all((now - ts).total_seconds() <= 30 * 60 for ts in stamps)


def test_unknown_tag_names_fail_with_their_names(pi_read) -> None:
    with pytest.raises(Exception, match="NO_SUCH_TAG"):
        pi_read(tags="NO_SUCH_TAG", nameFilter="").load().count()
    with pytest.raises(Exception, match="'NOTHING\\*' matches no PI point"):
        pi_read(nameFilter="NOTHING*").load().count()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tags": "a"}, 'option "url" is required'),
        ({"url": "http://h/piwebapi"}, 'select points with option "tags"'),
        ({"url": "http://h/piwebapi", "tags": "a", "maxCont": "5"}, r"unknown option\(s\) \['maxcont'\]"),
        ({"url": "http://h/piwebapi", "tags": "a", "tagsPerPartition": "0"}, "'tagsPerPartition' must be a positive"),
        ({"url": "http://h/piwebapi", "tags": "a", "verifySsl": "maybe"}, '"verifySsl" must be true or false'),
        ({"url": "http://h/piwebapi", "tags": "a", "partitionWindow": "1mo"}, "invalid pi_web_api option"),
    ],
)
def test_bad_options_name_what_to_fix(options: dict, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        ReadOptions.parse(options)


def test_password_never_shows_in_a_repr() -> None:
    options = ReadOptions.parse({"url": "http://h/piwebapi", "tags": "a", "username": "u", "password": "s3cret-pw"})
    assert options.settings.auth_type == "basic"
    assert "s3cret-pw" not in repr(options)
    assert options.credentials.password.get_secret_value() == "s3cret-pw"

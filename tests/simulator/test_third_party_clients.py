"""Clients written without knowledge of this project work against the simulator unchanged.

tagreader 6.3 (Equinor's PI Web API reader, `tagreader.IMSClient(imstype="piwebapi")`) is used exactly
as its users do: connect, search, read raw / interpolated / summaries / snapshots. Every value it
returns is compared with what the simulator's own endpoints serve for the same window, never with
numbers written here.

tagreader looks data server WebIDs up on its hard-coded home server `https://piwebapi.equinor.com`
whatever URL it is given (`get_piwebapi_source_to_webid_dict(auth=auth)` without `url`). The test
routes that host to the simulator with a CONNECT proxy on 127.0.0.1 (`hostroute`), as DNS would in a
plant network; nothing leaves the machine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import requests
import tagreader
from requests.auth import HTTPBasicAuth
from tagreader import ReaderType

from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.simulator.server import RunningSimulator, running_simulator
from tests.simulator.hostroute import HostRoute, certificate_for

HOME_HOST = "piwebapi.equinor.com"
USER = ("piuser", "pipassword")
START = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
END = datetime(2025, 3, 1, 11, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    return certificate_for(tmp_path_factory.mktemp("tls"), [HOME_HOST])


@pytest.fixture(scope="module")
def pi(sim_config, certificate) -> Iterator[RunningSimulator]:
    """The session's simulator configuration, over HTTPS with basic auth."""
    cert, key = certificate
    with running_simulator(dataclasses.replace(sim_config, auth="basic"), tls_cert=cert, tls_key=key) as running:
        yield running


@pytest.fixture(scope="module")
def route(pi) -> Iterator[HostRoute]:
    port = int(pi.url.split(":")[2].split("/")[0])
    with HostRoute({f"{HOME_HOST}:443": port}) as proxy:
        yield proxy


@pytest.fixture(autouse=True)
def routed(monkeypatch, route, certificate) -> None:
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, route.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])  # tagreader verifies its home server


@pytest.fixture(scope="module")
def ref(pi, certificate) -> Iterator[requests.Session]:
    """A plain session reading the simulator's own endpoints: the reference for every comparison."""
    with requests.Session() as session:
        session.auth = USER
        session.verify = certificate[0]
        session.trust_env = False
        yield session


@pytest.fixture
def client(pi) -> Iterator[tagreader.IMSClient]:
    ims = tagreader.IMSClient(
        datasource=pi.sim.config.server_name,
        imstype="piwebapi",
        url=pi.url,
        auth=HTTPBasicAuth(*USER),
        verify_ssl=False,
        cache=None,
    )
    ims.connect()
    yield ims
    ims.handler.session.close()  # a TLS server waits for open connections when it stops


def served(ref: requests.Session, url: str, **params) -> dict:
    response = ref.get(url, params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def points(pi, ref) -> list[dict]:
    server = served(ref, f"{pi.url}/dataservers")["Items"][0]
    return served(ref, server["Links"]["Points"], maxCount=1000)["Items"]


@pytest.fixture(scope="module")
def busiest(ref, points):
    """The `count` points of a type with the most values in [START, END] (among the first 30)."""

    def pick(point_type: str, count: int = 1) -> list[dict]:
        candidates = [p for p in points if p["PointType"] == point_type][:30]
        window = {"startTime": format_datetime(START), "endTime": format_datetime(END), "maxCount": 10_000}
        sizes = {p["Name"]: len(served(ref, p["Links"]["RecordedData"], **window)["Items"]) for p in candidates}
        return sorted(candidates, key=lambda p: -sizes[p["Name"]])[:count]

    return pick


def utc_index(frame: pd.DataFrame) -> list[pd.Timestamp]:
    return list(frame.index.tz_convert("UTC"))


def pi_value(item: dict) -> float:
    """What a user of tagreader sees for a PI value: the number, NaN for a system state."""
    return item["Value"] if isinstance(item["Value"], int | float) else np.nan


def test_connect_and_search_match_the_point_list(client, pi, ref, route):
    server = served(ref, f"{pi.url}/dataservers")["Items"][0]
    listed = served(ref, server["Links"]["Points"], nameFilter="TI*", maxCount=1000)["Items"]
    assert listed
    assert client.search("TI*") == [(p["Name"], p["Descriptor"]) for p in listed]
    assert client.search("TI*", return_desc=False) == [p["Name"] for p in listed]
    one = listed[-1]
    assert client.search(desc=one["Descriptor"]) == [(one["Name"], one["Descriptor"])]
    assert client.search("NO-SUCH-TAG*") == []
    assert f"{HOME_HOST}:443" in route.tunnels  # tagreader's data server lookup went to the simulator


def test_raw_values_equal_recorded(client, pi, ref, busiest):
    for point in busiest("Float32") + busiest("Int32"):
        frame = client.read([point["Name"]], START, END, read_type=ReaderType.RAW)
        items = served(
            ref,
            point["Links"]["RecordedData"],
            startTime=format_datetime(START),
            endTime=format_datetime(END),
            maxCount=10_000,
        )["Items"]
        assert len(items) > 10
        # tagreader keeps the first of several values at one timestamp (its documented dedupe)
        expected: dict[pd.Timestamp, float] = {}
        for item in items:
            expected.setdefault(pd.Timestamp(item["Timestamp"]), pi_value(item))
        assert utc_index(frame) == list(expected)
        np.testing.assert_array_equal(frame[point["Name"]].to_numpy(dtype=float), list(expected.values()))


def test_interpolated_values_equal_interpolated_boundaries(client, pi, ref, busiest):
    chosen = busiest("Float32", 2) + busiest("Int32")
    names = [p["Name"] for p in chosen]
    frame = client.read(names, START, END, ts=timedelta(minutes=10), read_type=ReaderType.INT)
    grid = pd.date_range(START, END, freq="10min")
    assert utc_index(frame) == list(grid)
    for point in chosen:
        for t, got in zip(grid, frame[point["Name"]].tolist(), strict=True):
            at = format_datetime(t.to_pydatetime())
            (item,) = served(
                ref, point["Links"]["RecordedData"], startTime=at, endTime=at, boundaryType="Interpolated"
            )["Items"]
            assert item["Timestamp"] == at
            assert got == item["Value"], (point["Name"], at)


@pytest.mark.parametrize(
    ("read_type", "summary_type"),
    [
        (ReaderType.AVG, "Average"),
        (ReaderType.STD, "StdDev"),
        (ReaderType.RNG, "Range"),
        (ReaderType.MIN, "Minimum"),
        (ReaderType.MAX, "Maximum"),
    ],
)
def test_summaries_equal_one_summary_per_interval(client, pi, ref, busiest, read_type, summary_type):
    point = busiest("Float64")[0]
    step = timedelta(minutes=30)
    frame = client.read([point["Name"]], START, END, ts=step, read_type=read_type)
    expected = []
    for a in pd.date_range(START, END - step, freq=step):
        (item,) = served(
            ref,
            point["Links"]["SummaryData"],
            startTime=format_datetime(a.to_pydatetime()),
            endTime=format_datetime((a + step).to_pydatetime()),
            summaryType=summary_type,
        )["Items"]
        expected.append((pd.Timestamp(item["Value"]["Timestamp"]), item["Value"]["Value"]))
    assert len(expected) == 4
    if read_type == ReaderType.MAX and expected[0][0] > pd.Timestamp(START):
        # tagreader moves every Maximum one interval back when the first one is not at the start
        expected = [(t - step, v) for t, v in expected]
    assert utc_index(frame) == [t for t, _ in expected]
    np.testing.assert_allclose(frame[point["Name"]].to_numpy(dtype=float), [v for _, v in expected], rtol=1e-12)


def test_snapshot_equals_value(client, pi, ref, busiest):
    point = busiest("Float32")[0]
    now = served(ref, point["Links"]["Value"])
    frame = client.read([point["Name"]], read_type=ReaderType.SNAPSHOT)  # "now" on the wall clock
    assert utc_index(frame) == [pd.Timestamp(now["Timestamp"])]
    assert frame[point["Name"]].iloc[0] == pi_value(now)
    earlier = served(ref, point["Links"]["Value"], time=format_datetime(START))
    frame = client.read([point["Name"]], end_time=START, read_type=ReaderType.SNAPSHOT)
    assert utc_index(frame) == [pd.Timestamp(earlier["Timestamp"])]
    assert frame[point["Name"]].iloc[0] == pi_value(earlier)


def test_raw_status_flags_equal_recorded_quality(client, pi, ref, busiest):
    point = busiest("Float64")[0]
    frame = client.read([point["Name"]], START, END, read_type=ReaderType.RAW, get_status=True)
    window = {"startTime": format_datetime(START), "endTime": format_datetime(END), "maxCount": 10_000}
    expected: dict[pd.Timestamp, int] = {}
    for item in served(ref, point["Links"]["RecordedData"], **window)["Items"]:
        status = int(item["Questionable"]) + 2 * (1 - int(item["Good"])) + 4 * int(item["Substituted"])
        expected.setdefault(pd.Timestamp(item["Timestamp"]), status)  # tagreader's status code
    assert utc_index(frame) == list(expected)
    assert frame[f"{point['Name']}::status"].astype(int).tolist() == list(expected.values())
    assert any(expected.values()), "the window should hold some bad, questionable or substituted values"

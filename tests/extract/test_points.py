"""resolve_points against the simulator over HTTP: rows equal what PI serves, nothing dropped silently."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from osipi_connector.extract.points import PointsNotFoundError, resolve_points
from osipi_connector.lake.schemas import TAGS
from osipi_connector.piwebapi import webid
from osipi_connector.piwebapi.client import PIWebAPIError
from tests.simulator.helpers import all_points, get_json

NOW = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)


def select(client, *, data_server=None, webids=(), names=(), name_filter=None):
    return resolve_points(
        client,
        data_server=data_server,
        webids=list(webids),
        names=list(names),
        name_filter=name_filter,
        run_id="run-1",
        ingested_at=NOW,
    )


def test_name_filter_selects_exactly_the_points_pi_matches(pi_client, simulator, http):
    served = get_json(http, f"{simulator.url}/dataservers")["Items"][0]
    expected = get_json(http, served["Links"]["Points"], nameFilter="TI*", maxCount=100_000)["Items"]
    table = select(pi_client, name_filter="TI*")
    assert table.schema == TAGS.schema
    assert sorted(table.column("tag_webid").to_pylist()) == sorted(p["WebId"] for p in expected)
    assert all(name.startswith("TI") for name in table.column("tag_name").to_pylist())
    assert set(table.column("data_server_webid").to_pylist()) == {served["WebId"]}


def test_rows_carry_the_point_attributes_pi_serves(pi_client, simulator, http):
    points = all_points(http, simulator.url)
    by_webid = {p["WebId"]: p for p in points}
    rows = select(pi_client, name_filter="*").to_pylist()
    assert len(rows) == len(points) == simulator.sim.points.total
    digital = 0
    for row in rows:
        point = by_webid[row["tag_webid"]]
        assert (row["tag_id"], row["tag_name"], row["path"]) == (point["Id"], point["Name"], point["Path"])
        assert (row["point_type"], row["engineering_units"]) == (point["PointType"], point["EngineeringUnits"])
        assert (row["span"], row["zero"], row["descriptor"]) == (point["Span"], point["Zero"], point["Descriptor"])
        assert row["digital_set_name"] == (point["DigitalSetName"] or None)
        assert (row["run_id"], row["ingested_at"]) == ("run-1", NOW)
        digital += row["point_type"] == "Digital"
    assert digital > 0  # the sample covers digital points too


def test_webids_and_names_are_unioned_without_duplicates(pi_client, simulator, http):
    points = all_points(http, simulator.url)[:6]
    table = select(
        pi_client,
        webids=[p["WebId"] for p in points[:4]],
        names=[p["Name"].lower() for p in points[2:6]],  # PI names are case-insensitive; two overlap
    )
    assert sorted(table.column("tag_webid").to_pylist()) == sorted(p["WebId"] for p in points)


def test_unknown_names_and_webids_are_listed_not_dropped(pi_client, simulator, http):
    known = all_points(http, simulator.url)[0]
    bogus_webid = webid.point_path_webid("PISIM", "DELETED.TAG")  # a well-formed WebID of no point
    with pytest.raises(PointsNotFoundError) as caught:
        select(pi_client, names=[known["Name"], "NO.SUCH.TAG"], webids=[bogus_webid])
    error = caught.value
    assert sorted(error.missing) == sorted(["NO.SUCH.TAG", bogus_webid])
    assert "NO.SUCH.TAG" in str(error)
    assert "PISIM" in str(error)
    assert error.table.column("tag_webid").to_pylist() == [known["WebId"]]


def test_data_server_by_name_or_webid(pi_client, simulator, http):
    server = get_json(http, f"{simulator.url}/dataservers")["Items"][0]
    by_name = select(pi_client, data_server=server["Name"].lower(), name_filter="FI*")
    by_webid = select(pi_client, data_server=server["WebId"], name_filter="FI*")
    assert by_name.num_rows == by_webid.num_rows > 0
    with pytest.raises(PIWebAPIError) as caught:
        select(pi_client, data_server="NOSUCHSERVER", name_filter="*")
    assert caught.value.status == 404


def test_an_empty_selection_is_a_clear_error(pi_client):
    with pytest.raises(ValueError, match=r"extraction\.tags"):
        select(pi_client)

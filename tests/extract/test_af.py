"""fetch_af against the simulator over HTTP: every element once, parents and depths right, attributes
pointing at real PI points, and a second MERGE that changes nothing."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from osipi_connector.extract import af as af_module
from osipi_connector.extract.af import fetch_af, point_path, split_path
from osipi_connector.extract.event_frames import fetch_event_frames
from osipi_connector.extract.points import resolve_points
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import ASSET_HIERARCHY, ELEMENT_ATTRIBUTES
from osipi_connector.piwebapi.client import PIWebAPIError
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import running_simulator
from tests.extract.conftest import make_client
from tests.simulator.helpers import get_json

NOW = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
DB_PATH = "\\\\PISIM-AF\\Plant"


@pytest.fixture(scope="module")
def big():
    """4,000 points: 1,169 elements, more than one 1,000-element page."""
    config = SimConfig(seed=11, tags=4000, now=NOW, rate_limit_max_requests=0)
    with running_simulator(config) as sim, make_client(sim.url) as client:
        hierarchy, attributes = fetch_af(client, af_database=DB_PATH, run_id="r1", ingested_at=NOW)
        yield sim, client, hierarchy, attributes


def test_every_element_lands_exactly_once_across_pages(big, http):
    sim, _, hierarchy, _ = big
    model = sim.sim.af
    assert model.total > 1000  # the listing really is paged
    assert hierarchy.schema == ASSET_HIERARCHY.schema
    ids = hierarchy.column("element_id").to_pylist()
    assert len(ids) == len(set(ids)) == model.total
    assert set(ids) == {str(model.guid(x)) for x in range(model.total)}
    db = get_json(http, f"{sim.url}/assetdatabases", path=DB_PATH)
    served = get_json(http, db["Links"]["Elements"], searchFullHierarchy="true", maxCount=100_000)["Items"]
    assert sorted(hierarchy.column("element_webid").to_pylist()) == sorted(e["WebId"] for e in served)


def test_parent_and_depth_match_the_tree_the_simulator_serves(big):
    sim, _, hierarchy, _ = big
    model = sim.sim.af
    index = {str(model.guid(x)): x for x in range(model.total)}
    for row in hierarchy.to_pylist():
        x = index[row["element_id"]]
        parent = model.parent(x)
        assert row["element_path"] == model.path(x)
        assert row["depth"] == len(model.ancestors(x))  # 1 for the top element
        assert row["parent_webid"] == (model.webid(parent) if parent is not None else None)
        assert row["parent_path"] == (model.path(parent) if parent is not None else None)
        assert row["has_children"] == bool(model.children(x))
    depths = Counter(hierarchy.column("depth").to_pylist())
    assert depths == {level + 1: count for level, count in enumerate(model.counts)}


def test_attributes_reference_points_that_exist(big):
    sim, client, hierarchy, attributes = big
    assert attributes.schema == ELEMENT_ATTRIBUTES.schema
    tags = resolve_points(client, data_server=None, webids=[], names=[], name_filter="*", run_id="r", ingested_at=NOW)
    point_webids = set(tags.column("tag_webid").to_pylist())
    rows = attributes.to_pylist()
    pi_point = [r for r in rows if r["data_reference"] == "PI Point"]
    points = sim.sim.points
    assert len(pi_point) == points.count  # each plant point is referenced by exactly one equipment attribute
    defaults = {points.webid(i) for i in range(points.count, points.total)}  # PI's default points: not in AF
    assert {r["point_webid"] for r in pi_point} == point_webids - defaults
    names = dict(zip(tags.column("tag_webid").to_pylist(), tags.column("tag_name").to_pylist()))
    assert all(names[r["point_webid"]] == r["point_name"] for r in pi_point)
    assert all(r["point_webid"] is None for r in rows if r["data_reference"] != "PI Point")
    assert set(attributes.column("element_id").to_pylist()) <= set(hierarchy.column("element_id").to_pylist())
    assert len(set(attributes.column("attribute_id").to_pylist())) == len(rows)


def test_attribute_rows_equal_the_served_attributes(big, http):
    sim, _, hierarchy, attributes = big
    element = next(r for r in hierarchy.to_pylist() if r["template_name"] == "Pump")
    served = get_json(http, f"{sim.url}/elements/{element['element_webid']}/attributes", showHidden="true")["Items"]
    mine = {r["attribute_webid"]: r for r in attributes.to_pylist() if r["element_id"] == element["element_id"]}
    assert set(mine) == {a["WebId"] for a in served}
    assert any(a["IsHidden"] for a in served)  # hidden attributes are kept
    for a in served:
        row = mine[a["WebId"]]
        assert (row["attribute_name"], row["attribute_path"], row["type"]) == (a["Name"], a["Path"], a["Type"])
        assert row["config_string"] == (a["ConfigString"] or None)
        assert row["default_units"] == (a["DefaultUnitsNameAbbreviation"] or None)


def test_config_string_resolves_points_when_links_are_not_served(pi_client, simulator, monkeypatch):
    """Servers that omit `Links.Point`: the point comes from the ConfigString path (looked up by path)."""
    _, with_links = fetch_af(pi_client, af_database=DB_PATH, run_id="r", ingested_at=NOW)
    no_links = dict(af_module.ATTRIBUTE_PARAMS)
    no_links["selectedFields"] = af_module.ATTRIBUTE_FIELDS.replace(";Items.Links.Point", "")
    monkeypatch.setattr(af_module, "ATTRIBUTE_PARAMS", no_links)
    _, from_config = fetch_af(pi_client, af_database=DB_PATH, run_id="r", ingested_at=NOW)
    expected = with_links.column("point_webid").to_pylist()
    assert sum(w is not None for w in expected) == simulator.sim.points.count
    assert from_config.column("point_webid").to_pylist() == expected


def test_database_by_webid_equals_by_path(pi_client, simulator):
    by_path, _ = fetch_af(pi_client, af_database=DB_PATH.lower(), run_id="r", ingested_at=NOW)
    by_webid, _ = fetch_af(pi_client, af_database=simulator.sim.af.database_webid, run_id="r", ingested_at=NOW)
    assert by_path.equals(by_webid)


def test_unknown_or_malformed_database_is_a_clear_error(pi_client):
    with pytest.raises(PIWebAPIError, match=r"not found — check extraction\.af_database"):
        fetch_af(pi_client, af_database="\\\\PISIM-AF\\NoSuchDb", run_id="r", ingested_at=NOW)
    with pytest.raises(ValueError, match="neither an AF database WebID nor a path"):
        fetch_af(pi_client, af_database="Plant", run_id="r", ingested_at=NOW)


def test_merging_the_same_snapshot_twice_changes_nothing(pi_client, tmp_path):
    sink = DeltaSink(tmp_path)
    for spec in (ASSET_HIERARCHY, ELEMENT_ATTRIBUTES):
        sink.ensure(spec)
    hierarchy, attributes = fetch_af(pi_client, af_database=DB_PATH, run_id="r1", ingested_at=NOW)
    sink.merge(ASSET_HIERARCHY, hierarchy)
    sink.merge(ELEMENT_ATTRIBUTES, attributes)
    again, again_attributes = fetch_af(pi_client, af_database=DB_PATH, run_id="r1", ingested_at=NOW)
    sink.merge(ASSET_HIERARCHY, again)
    sink.merge(ELEMENT_ATTRIBUTES, again_attributes)
    stored = sink.read(ASSET_HIERARCHY)
    assert stored.num_rows == hierarchy.num_rows
    assert sorted(stored.column("element_id").to_pylist()) == sorted(hierarchy.column("element_id").to_pylist())
    assert sink.read(ELEMENT_ATTRIBUTES).num_rows == attributes.num_rows


@pytest.mark.parametrize(
    ("path", "parent", "depth"),
    [
        ("\\\\srv\\db\\Top", None, 1),
        ("\\\\srv\\db\\Top\\Mid\\Leaf", "\\\\srv\\db\\Top\\Mid", 3),
    ],
)
def test_split_path(path, parent, depth):
    assert split_path(path) == (parent, depth)


def test_point_path_reads_only_resolvable_config_strings():
    assert point_path("\\\\srv\\TAG.PV;ReadOnly=False") == "\\\\srv\\TAG.PV"
    assert point_path("\\\\srv\\TAG.PV?1234") == "\\\\srv\\TAG.PV"
    assert point_path("\\\\%Server%\\%Element%.%Attribute%") is None
    assert point_path("") is None


def test_same_tables_from_a_server_without_the_batch_controller(simulator, pi_client):
    """/batch disabled (405): the client falls back to single GETs and the datasets come out identical."""
    config = replace(simulator.sim.config, batch_enabled=False)
    with running_simulator(config) as plain, make_client(plain.url) as client:
        without = fetch_af(client, af_database=DB_PATH, run_id="r", ingested_at=NOW)
        frames_without = fetch_event_frames(
            client, af_database=DB_PATH, start=NOW - timedelta(hours=6), end=NOW, run_id="r", ingested_at=NOW
        )
    with_batch = fetch_af(pi_client, af_database=DB_PATH, run_id="r", ingested_at=NOW)
    frames = fetch_event_frames(
        pi_client, af_database=DB_PATH, start=NOW - timedelta(hours=6), end=NOW, run_id="r", ingested_at=NOW
    )
    assert without[0].equals(with_batch[0])
    assert without[1].equals(with_batch[1])
    assert frames.num_rows > 0
    assert frames_without.equals(frames)


class PathLookupRefused:
    """A real client on a server without `GET /assetdatabases?path=` (it answers 404 there)."""

    def __init__(self, client):
        self.client = client

    def get_json(self, resource, params=None):
        if resource == "assetdatabases":
            raise PIWebAPIError("not supported here", status=404)
        return self.client.get_json(resource, params)

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_a_database_path_is_found_by_walking_the_asset_servers(pi_client, simulator):
    hierarchy, _ = fetch_af(PathLookupRefused(pi_client), af_database=DB_PATH, run_id="r", ingested_at=NOW)
    assert set(hierarchy.column("af_database_webid").to_pylist()) == {simulator.sim.af.database_webid}
    assert hierarchy.num_rows == simulator.sim.af.total


def test_an_element_deleted_after_the_listing_is_skipped_with_a_warning(big, pi_client, caplog):
    """Attributes read from a server that no longer has some listed elements (404): those are skipped and
    named in a warning; the attributes of the elements that exist are all there."""
    _, _, hierarchy, _ = big
    listed = [
        {"WebId": r["element_webid"], "Id": r["element_id"], "Path": r["element_path"]}
        for r in hierarchy.to_pylist()
        if r["depth"] == 5
    ][-3:]  # the other server's last equipment elements: absent from the smaller session simulator
    present, _ = fetch_af(pi_client, af_database=DB_PATH, run_id="r", ingested_at=NOW)
    survivor = next(r for r in present.to_pylist() if r["depth"] == 5)
    listed.append({"WebId": survivor["element_webid"], "Id": survivor["element_id"], "Path": survivor["element_path"]})
    with caplog.at_level("WARNING"):
        attributes = af_module._attributes(pi_client, listed, "r", NOW)
    assert set(attributes.column("element_id").to_pylist()) == {survivor["element_id"]}
    assert "3 object(s) no longer exist" in caplog.text

"""OSIsoft's own Python client (`osisoft-pidevclub-piwebapi`, generated from the official swagger)
works against the simulator unchanged, driven through its README workflow: data server and points by
path, recorded / interpolated / plot values into pandas, several paths at once, StreamSet
GetRecordedAdHoc, an element and an attribute by path. Every value it returns is compared with what
the simulator's own endpoints serve for the same request, never with numbers written here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import requests
from osisoft.pidevclub.piwebapi.models import PIAttribute
from osisoft.pidevclub.piwebapi.pi_web_api_client import PIWebApiClient

from osipi_connector.simulator.server import RunningSimulator, running_simulator

USER = ("piuser", "pipassword")
PATHS = ["pi:\\\\PISIM\\sinusoid", "pi:\\\\PISIM\\sinusoidu", "pi:\\\\PISIM\\cdt158"]


@pytest.fixture(scope="module")
def pi(sim_config) -> Iterator[RunningSimulator]:
    """The session's simulator configuration with basic authentication, as the README's first example."""
    with running_simulator(dataclasses.replace(sim_config, auth="basic")) as running:
        yield running


@pytest.fixture(scope="module")
def client(pi) -> PIWebApiClient:
    return PIWebApiClient(pi.url, False, USER[0], USER[1], True)  # baseUrl, useKerberos, username, password, verifySsl


@pytest.fixture(scope="module")
def ref(pi) -> Iterator[requests.Session]:
    """A plain session reading the simulator's own endpoints: the reference for every comparison."""
    with requests.Session() as session:
        session.auth = USER
        yield session


def served(ref: requests.Session, url: str, **params) -> dict:
    response = ref.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def point_of(ref, pi, path: str) -> dict:
    return served(ref, f"{pi.url}/points", path=path.removeprefix("pi:"))


def frame_rows(df) -> list[tuple[str, object]]:
    return [(str(t), v) for t, v in zip(df["Timestamp"], df["Value"])]


def item_rows(items: list[dict]) -> list[tuple[str, object]]:
    return [(v["Timestamp"], v["Value"]) for v in items]


def test_data_server_and_points_by_path(client, pi, ref):
    data_server = client.dataServer.get_by_path("\\\\PISIM")
    assert data_server.web_id == served(ref, f"{pi.url}/dataservers")["Items"][0]["WebId"]
    for path in PATHS:
        point = client.point.get_by_path(path.removeprefix("pi:"))
        mine = point_of(ref, pi, path)
        assert (point.web_id, point.name, point.point_type) == (mine["WebId"], mine["Name"], mine["PointType"])
        info = client.webIdHelper.get_web_id_info(point.web_id)  # OSIsoft's decoder reads our WebIDs
        assert (info.server_id, info.point_id) == (data_server.id, point.id)


def test_recorded_interpolated_and_plot_values_into_pandas(client, pi, ref):
    web_id = point_of(ref, pi, PATHS[0])["WebId"]
    streams = f"{pi.url}/streams/{web_id}"
    recorded = client.data.get_recorded_values(PATHS[0], start_time="*-1d", end_time="*")
    assert frame_rows(recorded) == item_rows(served(ref, f"{streams}/recorded", startTime="*-1d", endTime="*")["Items"])
    interpolated = client.data.get_interpolated_values(PATHS[0], start_time="*-1d", end_time="*", interval="1h")
    reference = served(ref, f"{streams}/interpolated", startTime="*-1d", endTime="*", interval="1h")["Items"]
    assert frame_rows(interpolated) == item_rows(reference)
    assert len(interpolated) == 25
    plot = client.data.get_plot_values(PATHS[0], end_time="*", intervals=15, start_time="*-1d")
    assert frame_rows(plot) == item_rows(
        served(ref, f"{streams}/plot", startTime="*-1d", endTime="*", intervals=15)["Items"]
    )
    chosen = client.data.get_recorded_values(
        PATHS[0], start_time="*-1d", end_time="*", selected_fields="items.value;items.timestamp"
    )
    assert frame_rows(chosen) == frame_rows(recorded)


def test_several_paths_at_once(client, pi, ref):
    frames = client.data.get_multiple_recorded_values(PATHS, start_time="*-1d", end_time="*")
    assert list(frames) == PATHS
    for path, frame in frames.items():
        web_id = point_of(ref, pi, path)["WebId"]
        reference = served(ref, f"{pi.url}/streams/{web_id}/recorded", startTime="*-1d", endTime="*")["Items"]
        assert frame_rows(frame) == item_rows(reference)


def test_stream_set_recorded_ad_hoc(client, pi, ref):
    web_ids = [point_of(ref, pi, path)["WebId"] for path in PATHS]
    answer = client.streamSet.get_recorded_ad_hoc(
        web_ids, start_time="*-3d", end_time="*", include_filtered_values=True, max_count=1000
    )
    reference = served(ref, f"{pi.url}/streamsets/recorded", webId=web_ids, startTime="*-3d", endTime="*",
                       includeFilteredValues="true", maxCount=1000)["Items"]  # fmt: skip
    assert [s.web_id for s in answer.items] == web_ids
    for stream, mine in zip(answer.items, reference):
        assert [(v.timestamp, v.value) for v in stream.items] == item_rows(mine["Items"])


def test_element_and_attribute_by_path(client, pi, ref):
    config = pi.sim.config
    root = f"\\\\{config.af_server_name}\\{config.af_database_name}\\Enterprise"
    element = client.element.get_by_path(root)
    assert element.id == served(ref, f"{pi.url}/elements", path=root)["Id"]
    attribute_path = f"{root}|Reporting Currency"
    attribute = client.attribute.get_by_path(attribute_path, selected_fields="Name")
    assert isinstance(attribute, PIAttribute)
    assert attribute.name == "Reporting Currency"
    assert attribute.web_id is None  # selectedFields=Name left the rest out, as the README shows
    full = client.attribute.get_by_path(attribute_path)
    info = client.webIdHelper.get_web_id_info(full.web_id)
    assert (info.owner_id, info.object_id) == (element.id, full.id)

"""Batch Execute (`POST /batch`) over real HTTP, plus in-process checks of how bodies are embedded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests

from osipi_connector.piwebapi import webid
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.controllers.batch import CHUNK, BatchRun, parse_batch
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.http import LazyJson, Request, Response
from osipi_connector.simulator.server import RunningSimulator, running_simulator
from tests.simulator.helpers import get_json

FOREIGN = "https://pi.elsewhere.example:8443/piwebapi"
SUB_KEYS = {"Status", "Headers", "Content"}


def post_batch(http: requests.Session, base: str, body: Any, expect: int = 207) -> Any:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    response = http.post(f"{base}/batch", data=data, headers={"Content-Type": "application/json"})
    assert response.status_code == expect, response.text
    return response.json()


def chain(points_resource: str = "{0}?maxCount=5") -> dict[str, Any]:
    """Data server -> its points (via Links.Points) -> the attributes of each point (template)."""
    return {
        "ds": {"Method": "GET", "Resource": f"{FOREIGN}/dataservers"},
        "pts": {
            "Method": "GET",
            "ParentIds": ["ds"],
            "Parameters": ["$.ds.Content.Items[0].Links.Points"],
            "Resource": points_resource,
        },
        "each": {
            "Method": "GET",
            "ParentIds": ["pts"],
            "Parameters": ["$.pts.Content.Items[*].WebId"],
            "RequestTemplate": {"Resource": f"{FOREIGN}/points/{{0}}/attributes"},
        },
    }


def missing_point_webid(http: requests.Session, base: str) -> str:
    """A well-formed point WebID on this server that names no point (404, not 400)."""
    server = get_json(http, f"{base}/dataservers")["Items"][0]
    guid = webid.decode(server["WebId"]).guids[0]
    return webid.encode("DP", (guid,), (9_999_999,), kind="I")


def test_chain_shape_parameters_and_template_fan_out(simulator, http):
    result = post_batch(http, simulator.url, chain())
    assert list(result) == ["ds", "pts", "each"]
    for entry in result.values():
        assert set(entry) == SUB_KEYS
    assert result["ds"]["Status"] == 200
    assert result["ds"]["Headers"]["Content-Type"].startswith("application/json")
    points = result["pts"]["Content"]["Items"]
    assert result["pts"]["Status"] == 200
    assert len(points) == 5
    each = result["each"]
    assert each["Status"] == 207  # a templated answer is 207 even when every item succeeded
    assert each["Content"]["Total"] == 5
    items = each["Content"]["Items"]
    assert [set(item) for item in items] == [SUB_KEYS] * 5
    for point, item in zip(points, items):
        assert item["Status"] == 200
        direct = get_json(http, point["Links"]["Self"] + "/attributes")
        assert item["Content"] == direct


def test_foreign_host_ignored_links_use_this_server(simulator, http):
    result = post_batch(http, simulator.url, {"sys": {"Resource": f"{FOREIGN}/system"}})
    assert result["sys"]["Status"] == 200
    assert result["sys"]["Content"]["Links"]["Self"] == f"{simulator.url}/system"


@pytest.mark.parametrize("resource", ["/piwebapi/system", "/system", "system", "https://other/piwebapi/system/"])
def test_relative_and_absolute_resources(simulator, http, resource):
    result = post_batch(http, simulator.url, {"s": {"Resource": resource}})
    assert result["s"]["Status"] == 200
    assert result["s"]["Content"]["ProductTitle"] == "PI Web API"


def test_parents_run_first_whatever_the_body_order(simulator, http):
    body = {
        "third": {"ParentIds": ["second"], "Parameters": ["$.second.Content.Links.Self"], "Resource": "{0}"},
        "second": {"ParentIds": ["first"], "Parameters": ["$.first.Content.Items[0].Links.Self"], "Resource": "{0}"},
        "first": {"Resource": "/dataservers"},
    }
    result = post_batch(http, simulator.url, body)
    assert list(result) == ["third", "second", "first"]  # answers keep the body's order
    assert [result[k]["Status"] for k in result] == [200, 200, 200]
    assert result["third"]["Content"]["WebId"] == result["first"]["Content"]["Items"][0]["WebId"]


def test_several_parameters_and_a_jsonpath_resource(simulator, http):
    body = {
        **chain(),
        "byname": {
            "ParentIds": ["ds", "pts"],
            "Parameters": ["$.ds.Content.Items[0].WebId", "$.pts.Content.Items[2].Name"],
            "Resource": "/dataservers/{0}/points?nameFilter={1}&selectedFields=Items.Name",
        },
        "self": {"ParentIds": ["ds"], "Resource": "$.ds.Content.Items[0].Links.Self"},
    }
    result = post_batch(http, simulator.url, body)
    third = result["pts"]["Content"]["Items"][2]["Name"]
    assert result["byname"]["Content"] == {"Items": [{"Name": third}]}
    assert result["self"]["Content"]["WebId"] == result["ds"]["Content"]["Items"][0]["WebId"]


def test_template_parameters_zip_and_reuse_a_single_token(simulator, http):
    body = {
        **chain(),
        "named": {
            "ParentIds": ["pts"],
            "Parameters": ["$.pts.Content.Items[*].WebId", "$.pts.Content.Items[0].Name"],
            "RequestTemplate": {"Resource": "/points/{0}/attributes?name=tag&selectedFields=Items.Value&x={1}"},
        },
    }
    named = post_batch(http, simulator.url, body)["named"]["Content"]
    points = [p["Name"] for p in post_batch(http, simulator.url, chain())["pts"]["Content"]["Items"]]
    assert [item["Content"]["Items"][0]["Value"] for item in named["Items"]] == points


def test_sub_request_errors_keep_their_errors(simulator, http):
    missing = missing_point_webid(http, simulator.url)
    body = {
        "gone": {"Resource": f"/points/{missing}"},
        "route": {"Resource": "/no/such/thing"},
        "badid": {"Resource": "/points/not-a-webid"},
        "method": {"Method": "POST", "Resource": "/system", "Content": "{}"},
    }
    result = post_batch(http, simulator.url, body)
    assert result["gone"]["Status"] == 404
    assert missing in result["gone"]["Content"]["Errors"][0]
    assert result["route"]["Status"] == 404
    assert result["route"]["Content"]["Errors"]
    assert result["badid"]["Status"] == 400
    assert result["method"]["Status"] == 405
    assert result["method"]["Content"]["Errors"]


def test_failed_parent_stops_its_descendants_only(simulator, http):
    missing = missing_point_webid(http, simulator.url)
    body = {
        "parent": {"Resource": f"/points/{missing}"},
        "child": {"ParentIds": ["parent"], "Parameters": ["$.parent.Content.WebId"], "Resource": "/points/{0}"},
        "grandchild": {"ParentIds": ["child"], "Resource": "/system"},
        "template": {
            "ParentIds": ["parent"],
            "Parameters": ["$.parent.Content.Items[*].WebId"],
            "RequestTemplate": {"Resource": "/points/{0}"},
        },
        "sibling": {"Resource": "/system"},
    }
    result = post_batch(http, simulator.url, body)
    assert result["parent"]["Status"] == 404
    # real servers answer 409 with the reason as a plain string Content (not an Errors object)
    for key, parent in (("child", "parent"), ("grandchild", "child"), ("template", "parent")):
        assert result[key] == {
            "Status": 409,
            "Headers": {},
            "Content": f"The following ParentIds did not complete successfully: {parent}.",
        }
    assert result["sibling"]["Status"] == 200


def test_a_207_template_parent_counts_as_success(simulator, http):
    body = {
        **chain(),
        "after": {
            "ParentIds": ["each"],
            "Parameters": ["$.each.Content.Items[1].Content.Items[0].Name"],
            "Resource": "/system?x={0}",
        },
    }
    assert post_batch(http, simulator.url, body)["after"]["Status"] == 200


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (["$.pts.Content.Items[*].WebId"], "selected 5 tokens"),
        (["$.pts.Content.Nothing"], "did not select any tokens"),
        (["$.unrelated.Content"], "did not select any tokens"),  # only ParentIds' answers are visible
    ],
)
def test_parameter_selection_errors_are_sub_responses(simulator, http, parameters, message):
    body = {**chain(), "one": {"ParentIds": ["pts"], "Parameters": parameters, "Resource": "/points/{0}"}}
    body["unrelated"] = {"Resource": "/system"}
    entry = post_batch(http, simulator.url, body)["one"]
    assert entry["Status"] == 400
    assert message in entry["Content"]["Errors"][0]


def test_template_selecting_nothing_is_400(simulator, http):
    body = chain("{0}?nameFilter=NO_SUCH_TAG*")
    result = post_batch(http, simulator.url, body)
    assert result["pts"]["Content"]["Items"] == []
    assert result["each"]["Status"] == 400
    assert "did not select any tokens" in result["each"]["Content"]["Errors"][0]


def test_placeholder_without_parameter_is_400(simulator, http):
    entry = post_batch(http, simulator.url, {"a": {"Resource": "/points/{1}"}})["a"]
    assert entry["Status"] == 400
    assert "{1}" in entry["Content"]["Errors"][0]


def test_csrf_header_required(simulator):
    response = requests.post(f"{simulator.url}/batch", json={"s": {"Resource": "/system"}}, timeout=10)
    assert response.status_code == 403
    assert "X-Requested-With" in response.json()["Errors"][0]


def test_batch_only_accepts_post(simulator, http):
    response = http.get(f"{simulator.url}/batch")
    assert response.status_code == 405
    assert response.json()["Errors"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        ({"a": 5}, "Request 'a' must be a JSON object"),
        ({"a": {"Method": "HEAD", "Resource": "/system"}}, "unsupported Method"),
        ({"a": {"Method": 3, "Resource": "/system"}}, "unsupported Method"),
        ({"a": {"Method": "GET"}}, "needs a Resource"),
        ({"a": {"Resource": "/system", "RequestTemplate": {"Resource": "/x"}}}, "both"),
        ({"a": {"RequestTemplate": "/system"}}, "RequestTemplate without a Resource"),
        ({"a": {"Resource": "/system", "Parameters": ["$.b.Content.Items[*"]}}, "not a valid JSONPath"),
        ({"a": {"Resource": "/system", "Parameters": ["b.Content"]}}, "not a valid JSONPath"),
        ({"a": {"Resource": "/system", "Parameters": "$.b"}}, "list of JSONPath strings"),
        ({"a": {"Resource": "$.b.[["}}, "not a valid JSONPath"),
        ({"a": {"Method": "POST", "Resource": "/system", "Content": {"Name": "x"}}}, "must be a string"),
        ({"a": {"Resource": "/system", "Headers": ["Cache-Control"]}}, "Headers"),
        ({"a": {"Resource": "/system", "ParentIds": "b"}}, "ParentIds of request 'a'"),
        ({"a": {"Resource": "/system", "ParentIds": ["nope"]}}, "ParentId 'nope'"),
        ({"a": {"Resource": "/system", "ParentIds": ["a"]}}, "cycle: a -> a"),
        (
            {
                "a": {"Resource": "/system", "ParentIds": ["c"]},
                "b": {"Resource": "/system", "ParentIds": ["a"]},
                "c": {"Resource": "/system", "ParentIds": ["b"]},
                "d": {"Resource": "/system"},
            },
            "cycle: a -> c -> b -> a",
        ),
    ],
)
def test_malformed_batches_are_rejected_whole(simulator, http, body, message):
    errors = post_batch(http, simulator.url, body, expect=400)["Errors"]
    assert any(message in e for e in errors), errors


def test_every_problem_is_named(simulator, http):
    body = {"a": {"Method": "HEAD"}, "b": 1}
    errors = post_batch(http, simulator.url, body, expect=400)["Errors"]
    assert len(errors) == 3


def test_empty_batch(simulator, http):
    assert post_batch(http, simulator.url, {}) == {}


def test_member_names_are_case_insensitive(simulator, http):
    result = post_batch(http, simulator.url, {"s": {"method": "get", "resource": "/system"}})
    assert result["s"]["Status"] == 200


@pytest.fixture(scope="module")
def basic_limited() -> Iterator[RunningSimulator]:
    with running_simulator(SimConfig(seed=3, tags=20, auth="basic", rate_limit_max_requests=3)) as running:
        yield running


def test_sub_requests_run_as_the_batch_user_without_rate_limit(basic_limited):
    with requests.Session() as session:
        session.headers["X-Requested-With"] = "XMLHttpRequest"
        session.auth = ("piuser", "pipassword")
        body = {f"r{i}": {"Resource": "/system/userinfo"} for i in range(6)}  # more than the limit
        result = post_batch(session, basic_limited.url, body)
    assert [entry["Status"] for entry in result.values()] == [200] * 6
    assert {entry["Content"]["Name"] for entry in result.values()} == {"piuser"}


def test_batch_itself_needs_auth(basic_limited):
    response = requests.post(f"{basic_limited.url}/batch", json={}, headers={"X-Requested-With": "x"}, timeout=10)
    assert response.status_code == 401


# --- in-process: bodies are embedded as they are, and decoded only when a child needs them --------------


def _in_process(sim: Simulator, body: dict[str, Any]) -> dict[str, Any]:
    request = Request.from_url("POST", "/piwebapi/batch", base_url="http://sim/piwebapi", body=orjson.dumps(body))
    return BatchRun(sim, request).run(parse_batch(request.body))


BIG = 5000  # items in the streamed test body: several CHUNKs


def lazy_items(encodes: list[int]) -> LazyJson:
    """A streamed `Items` array of BIG objects, counting how often it is produced."""

    def pieces() -> Iterator[bytes]:
        encodes.append(1)
        yield b"["
        for start in range(0, BIG, 500):
            last = min(start + 500, BIG)
            yield b",".join(b'{"WebId":"L%d","Pad":"%s"}' % (i, b"x" * 20) for i in range(start, last))
            if last < BIG:
                yield b","
        yield b"]"

    return LazyJson(pieces)


def add_payload_routes(sim: Simulator, encodes: list[int]) -> None:
    """Extra routes: a pre-encoded body, a streamed (LazyJson) one and one without a body."""
    fragment = orjson.Fragment(b'{"Items":[{"WebId":"F1A"},{"WebId":"F1B"}]}')
    sim.router.add("GET", "/test/fragment", lambda request: Response(200, fragment))
    sim.router.add("GET", "/test/lazy", lambda request: {"Links": {}, "Items": lazy_items(encodes)})
    sim.router.add("DELETE", "/test/empty", lambda request: Response(204))


@pytest.fixture
def sim_with_payloads() -> tuple[Simulator, list[int]]:
    sim = Simulator(SimConfig(seed=1, tags=5))
    encodes: list[int] = []
    add_payload_routes(sim, encodes)
    return sim, encodes


def test_pre_encoded_bodies_are_embedded_untouched(sim_with_payloads):
    sim, _ = sim_with_payloads
    result = _in_process(sim, {"f": {"Resource": "/test/fragment"}})
    assert isinstance(result["f"]["Content"], orjson.Fragment)
    encoded = orjson.loads(Response(207, result).encode())
    assert encoded["f"]["Content"]["Items"][1]["WebId"] == "F1B"


def test_parents_are_decoded_for_jsonpath_and_encoded_once(sim_with_payloads):
    sim, encodes = sim_with_payloads
    body = {
        "lazy": {"Resource": "/test/lazy"},
        "frag": {"Resource": "/test/fragment"},
        "ids": {
            "ParentIds": ["lazy", "frag"],
            "Parameters": ["$.lazy.Content.Items[:2].WebId", "$.frag.Content.Items[*].WebId"],
            "RequestTemplate": {"Resource": "/system?a={0}&b={1}"},
        },
    }
    result = _in_process(sim, body)
    assert result["ids"]["Content"]["Total"] == 2
    encoded = orjson.loads(Response(207, result).encode())
    assert len(encoded["lazy"]["Content"]["Items"]) == BIG
    assert encodes == [1]  # the streamed parent was produced once, for the JSONPath and the answer alike


STREAMED_BATCH = {
    "lazy": {"Resource": "/test/lazy"},
    "again": {"RequestTemplate": {"Resource": "/test/{0}"}, "ParentIds": ["frag"], "Parameters": ["$.frag.Status"]},
    "frag": {"Resource": "/test/fragment"},
    "fan": {
        "ParentIds": ["frag"],
        "Parameters": ["$.frag.Content.Items[*].WebId"],
        "RequestTemplate": {"Resource": "/test/lazy?x={0}"},
    },
    "empty": {"Method": "DELETE", "Resource": "/test/empty"},
    "missing": {"Resource": "/test/none"},
    "orphan": {"ParentIds": ["missing"], "Resource": "/system"},
}


def test_streamed_answer_equals_the_one_piece_encoding(sim_with_payloads):
    sim, _ = sim_with_payloads
    request = Request.from_url("POST", "/batch", base_url="http://sim/piwebapi", body=orjson.dumps(STREAMED_BATCH))
    pieces = list(sim.handle(request).pieces())
    assert len(pieces) > 3  # streamed, in pieces of at least CHUNK bytes
    assert all(len(p) >= CHUNK for p in pieces[:-1])
    assert b"".join(pieces) == sim.handle(request).encode()
    answer = orjson.loads(b"".join(pieces))
    assert answer["empty"] == {"Status": 204, "Headers": {}, "Content": None}
    assert answer["again"]["Content"]["Items"][0]["Status"] == 404  # "/test/200"
    assert [len(i["Content"]["Items"]) for i in answer["fan"]["Content"]["Items"]] == [BIG, BIG]
    assert answer["orphan"]["Status"] == 409


def test_large_batches_go_out_chunked(basic_limited):
    add_payload_routes(basic_limited.sim, [])
    with requests.Session() as session:
        session.headers["X-Requested-With"] = "XMLHttpRequest"
        session.auth = ("piuser", "pipassword")
        response = session.post(f"{basic_limited.url}/batch", data=orjson.dumps(STREAMED_BATCH))
    assert response.status_code == 207
    assert response.headers.get("Transfer-Encoding") == "chunked"
    request = Request.from_url(
        "POST", "/batch", base_url=basic_limited.url, body=orjson.dumps(STREAMED_BATCH), user="piuser"
    )
    assert response.content == basic_limited.sim.handle(request).encode()

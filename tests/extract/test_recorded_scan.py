"""The byte scanner of recorded values (`extract.recorded_scan`) gives exactly the table the orjson path gives:
on real simulator /batch answers (every point type, system states, 7-digit fractions, duplicate timestamps,
empty windows, 400/404 sub-responses, truncated pages) and on hand-made bodies with every JSON shape PI can
send. Bodies it cannot prove (whitespace, other key order, extra fields) fall back to orjson, visibly."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import numpy as np
import orjson
import pyarrow as pa
import pytest
import requests

from osipi_connector.extract.recorded_scan import ScannedItems, scan_batch
from osipi_connector.extract.timeseries import SELECTED_FIELDS, TagWindow, _Columns, fetch_recorded
from osipi_connector.piwebapi.client import PIWebAPIClient, SubRequest, SubResponse
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.simulator.server import RunningSimulator
from tests.conftest import FIXED_NOW
from tests.extract.conftest import make_client

NOW = datetime(2025, 3, 1, tzinfo=timezone.utc)


def table_of(document: dict) -> pa.Table:
    """The pi_timeseries rows of every successful entry of a /batch answer, as the extractor builds them."""
    columns = _Columns()
    for key, entry in document.items():
        content = entry["Content"]
        if 200 <= entry["Status"] < 300:
            window = TagWindow(f"W{key}", f"tag {key}", NOW, NOW)
            columns.add(window, content.get("UnitsAbbreviation") or "", content.get("Items") or [])
    return columns.table("run", NOW)


def scanned(document: dict) -> int:
    return sum(
        isinstance(e["Content"], dict) and isinstance(e["Content"].get("Items"), ScannedItems)
        for e in document.values()
    )


def assert_same(body: bytes) -> dict:
    """scan_batch(body) reads what orjson reads: same entries apart from Items, and the same table."""
    reference, document = orjson.loads(body), scan_batch(body)
    assert document.keys() == reference.keys()
    for key, entry in reference.items():
        got = document[key]
        assert {k: v for k, v in got.items() if k != "Content"} == {k: v for k, v in entry.items() if k != "Content"}
        if isinstance(entry["Content"], dict):
            assert {k: v for k, v in got["Content"].items() if k != "Items"} == {
                k: v for k, v in entry["Content"].items() if k != "Items"
            }
            assert len(got["Content"].get("Items") or []) == len(entry["Content"].get("Items") or [])
        else:
            assert got["Content"] == entry["Content"]
    expected, actual = table_of(reference), table_of(document)
    assert actual.equals(expected), (actual.slice(0, 5).to_pylist(), expected.slice(0, 5).to_pylist())
    # NaN-free floats compare by value above; compare bit patterns too (-0.0 vs 0.0)
    values = [t["value"].to_numpy(zero_copy_only=False).view(np.int64) for t in (actual, expected)]
    assert np.array_equal(*values)
    return document


# --- real simulator answers ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def points(simulator: RunningSimulator) -> list[dict]:
    server = requests.get(f"{simulator.url}/dataservers").json()["Items"][0]
    found = requests.get(
        f"{simulator.url}/dataservers/{server['WebId']}/points",
        params={"maxCount": 160, "selectedFields": "Items.WebId;Items.Name;Items.PointType"},
    ).json()["Items"]
    assert {"Float32", "Float64", "Int32", "Digital", "String"} <= {p["PointType"] for p in found}
    return found


def batch_body(url: str, webids: list[str], start: datetime, end: datetime, max_count: int) -> bytes:
    query = f"startTime={format_datetime(start)}&endTime={format_datetime(end)}&maxCount={max_count}"
    body = {
        str(i): {"Method": "GET", "Resource": f"{url}/streams/{w}/recorded?{query}&selectedFields={SELECTED_FIELDS}"}
        for i, w in enumerate(webids)
    }
    answer = requests.post(f"{url}/batch", data=orjson.dumps(body), headers={"X-Requested-With": "XMLHttpRequest"})
    assert answer.status_code == 207
    return answer.content


@pytest.mark.parametrize(("hours", "max_count"), [(6, 150_000), (6, 97), (0.01, 1000)])
def test_simulator_answers_scan_to_the_same_table(simulator, points, hours, max_count) -> None:
    webids = [p["WebId"] for p in points]
    webids += ["F1DPnot-a-webid", "F1DP8O9wYSLWy-YAAQAAAAAAAAAQAAAAUElTSU1cTk9QRS5QVg"]  # 400, 404
    end = FIXED_NOW
    body = batch_body(simulator.url, webids, end - timedelta(hours=hours), end, max_count)
    document = assert_same(body)
    statuses = {e["Status"] for e in document.values()}
    assert {200, 400, 404} <= statuses
    reference = orjson.loads(body)
    with_items = sum(bool(isinstance(e["Content"], dict) and e["Content"].get("Items")) for e in reference.values())
    assert with_items > 10
    assert scanned(document) == with_items
    if hours == 6 and max_count > 1000:  # the long window holds every shape the simulator serves
        rows = table_of(document)
        text = body.decode()
        assert '"IsSystem":true' in text
        assert rows["digital_state_is_system"].to_pylist().count(True) > 0
        assert rows["value_string"].null_count < rows.num_rows
        assert rows["digital_state_name"].null_count < rows.num_rows
        assert any(len(ts) > 20 for ts in _timestamps(text))  # sub-second stamps (up to 7 digits) are in it
        assert rows["value_seq"].to_pylist().count(1) > 0  # values sharing a timestamp


def _timestamps(text: str) -> list[str]:
    return [part.split('"', 1)[0] for part in text.split('{"Timestamp":"')[1:]]


def test_an_empty_window_scans_to_no_rows(simulator, points) -> None:
    old = datetime(2000, 1, 1, tzinfo=timezone.utc)
    body = batch_body(simulator.url, [p["WebId"] for p in points[:5]], old, old + timedelta(hours=1), 100)
    assert b'"Items":[]' in body
    assert table_of(assert_same(body)).num_rows == 0


class OrjsonClient(PIWebAPIClient):
    """The real client whose batch() takes no `decode`: the extractor then uses orjson, as before."""

    def batch(self, requests: dict[str, SubRequest]) -> dict[str, SubResponse]:
        return super().batch(requests)


@pytest.mark.parametrize(("per_type", "max_count"), [(100, 150_000), (4, 50)])
def test_fetch_recorded_gives_the_same_table_either_way(simulator, points, per_type, max_count) -> None:
    """Also through paging: small pages cut runs of equal timestamps, windows that leave their end out."""
    start, end = FIXED_NOW - timedelta(hours=3), FIXED_NOW - timedelta(minutes=7)
    chosen = [p for i, p in enumerate(points) if [q["PointType"] for q in points[:i]].count(p["PointType"]) < per_type]
    windows = [TagWindow(p["WebId"], p["Name"], start, end, include_end=i % 2 == 0) for i, p in enumerate(chosen)]
    tables = []
    for client in (make_client(simulator.url), OrjsonClient(make_client(simulator.url).settings)):
        with client:
            result = fetch_recorded(client, windows, max_count=max_count, run_id="r", ingested_at=NOW)
        assert not result.failed
        assert result.requests > 1 if max_count < 1000 else result.requests == 1  # paged, or not
        tables.append(result.table)
    assert tables[0].num_rows > 2_000
    assert tables[0].equals(tables[1])


# --- hand-made bodies --------------------------------------------------------------------------------------
def item(ts: str, value: object, good: bool = True, q: bool = False, s: bool = False, a: bool = False) -> dict:
    return {"Timestamp": ts, "Value": value, "Good": good, "Questionable": q, "Substituted": s, "Annotated": a}


def answer(*item_lists: list[dict], units: str = "m3/h") -> dict:
    return {
        str(i): {
            "Status": 200,
            "Headers": {"Content-Type": "application/json; charset=utf-8"},
            "Content": {"Items": items, "UnitsAbbreviation": units, "Links": {}},
        }
        for i, items in enumerate(item_lists)
    }


TS = "2025-03-01T06:03:35Z"
ODD_VALUES = [
    'say "hi"',
    "back\\slash",
    "ünïcødé ✓ \U0001f600",
    "},{",
    '},{"Timestamp":"2025-03-01T00:00:00Z","Value":1,"Good":true,"Questionable":false,"Substituted":false,"Annotated":false}',
    '}],"UnitsAbbreviation":"x","Items":[',
    "line\nbreak\ttab",
    "",
    {"Name": 'Open "wide"', "Value": 2, "IsSystem": False},
    {"Name": "Zu ö \\ }]", "Value": 0, "IsSystem": False},
    {"Name": "I/O Timeout", "Value": 246, "IsSystem": True},
    {"Errors": ["Point not found", 'with "quotes"']},
    None,
    True,
    False,
    [1, 2],
]
NUMBERS = [0, -0, 0.0, -0.0, 1, -7, 83197, 1.5, -2.25, 0.1, 1e-7, 1e22, 1.7976931348623157e308, 5e-324, 123456789012345]
NUMBERS += [1234567890123456, 2**53, 0.30000000000000004, 3.141592653589793, -0.000001, 9999999.999999]
STAMPS = [TS, "2025-03-01T06:03:35.5Z", "2025-03-01T06:03:35.1234567Z", "2024-02-29T23:59:59.0000001Z"]
STAMPS += ["1970-01-01T00:00:00Z", "1969-12-31T23:59:59.9999999Z", "1678-01-01T00:00:00Z", "2261-12-31T23:59:59Z"]


def test_every_value_shape_scans_to_the_same_table() -> None:
    values = ODD_VALUES + NUMBERS
    first = [item(STAMPS[i % len(STAMPS)], v, q=i % 3 == 0, a=i % 5 == 0) for i, v in enumerate(values)]
    last_odd = [item(TS, v) for v in ODD_VALUES]  # odd values as the last item of an array (before `]`)
    singles = [[item(TS, v)] for v in ODD_VALUES[:6]]
    body = orjson.dumps(answer(first, *([it] for it in last_odd), *singles, [], [item(TS, 1.0)] * 3))
    document = assert_same(body)
    assert scanned(document) == len(document) - 1  # all but the empty Items
    rows = table_of(document)  # the UTC day of each timestamp, also before 1970
    assert rows["partition_date"].equals(rows["timestamp"].cast(pa.date32()))


def test_duplicate_stamps_and_raw_number_texts_scan_exactly() -> None:
    """Number texts orjson itself would not write (exponents, long integers, trailing zeros)."""
    texts = ["1E5", "1e+5", "-1.0e-3", "9007199254740992", "1.50", "100.000", "-0", "-0.0", "0.000001"]
    items = ",".join(
        f'{{"Timestamp":"{TS}","Value":{t},"Good":true,"Questionable":false,"Substituted":false,"Annotated":false}}'
        for t in texts
    )
    body = f'{{"0":{{"Status":200,"Headers":{{}},"Content":{{"Items":[{items}],"UnitsAbbreviation":""}}}}}}'.encode()
    document = assert_same(body)
    assert scanned(document) == 1
    assert table_of(document)["value_seq"].to_pylist() == list(range(len(texts)))


def test_errors_and_missing_content_entries() -> None:
    document = answer([item(TS, 1.5)], [item(TS, 2)])
    document["2"] = {"Status": 404, "Headers": {}, "Content": {"Errors": ["not found"]}}
    document["3"] = {"Status": 500, "Headers": {}, "Content": "plain text"}
    document["4"] = {"Status": 200, "Headers": {}, "Content": {"Items": [], "UnitsAbbreviation": ""}}
    assert scanned(assert_same(orjson.dumps(document))) == 2


@pytest.mark.parametrize(
    "body",
    [
        orjson.dumps(answer([item(TS, 1.5), item(TS, 2)]), option=orjson.OPT_INDENT_2),  # whitespace
        orjson.dumps(answer([{"Value": 1.5, "Timestamp": TS, "Good": True}])),  # other key order
        orjson.dumps(answer([{**item(TS, 1.5), "UnitsAbbreviation": "m"}])),  # PI ignoring selectedFields
        orjson.dumps(answer([{"Timestamp": TS, "Value": 1.5}])),  # fields left out
        orjson.dumps(answer([item("2025-03-01T06:03:35+01:00", 1.5)])),  # an offset
        orjson.dumps(answer([item("2025-03-01T06:03:35.12345678Z", 1.5)])),  # 8 fraction digits
        orjson.dumps(answer([item("2025-02-30T06:03:35Z", 1.5)], [item(TS, 1)])),  # no such day
        orjson.dumps(answer([item(TS, 1)], [item("9999-12-31T23:59:59Z", 1.5)])),  # beyond int64 ns
        orjson.dumps(answer([item(TS, {"Timestamp": TS, "Value": 1})])),  # an item inside a value
        orjson.dumps({"0": {"Status": 200, "Content": {"Other": [item(TS, 1.5)]}}}),  # not at Items
        orjson.dumps([item(TS, 1.5)]),  # not a batch answer
    ],
)
def test_layouts_it_cannot_prove_fall_back_to_orjson(body: bytes) -> None:
    document = scan_batch(body)
    assert document == orjson.loads(body)  # plain lists: exactly orjson's answer, then today's parser


@pytest.mark.parametrize(
    "body",
    [
        orjson.dumps(answer([item(TS, 1.5)] * 3))[:-40],  # cut short
        orjson.dumps(answer([item(TS, 1.5)])).replace(b"1.5", b"01.5"),  # not JSON
        orjson.dumps(answer([item(TS, "x")])).replace(b'"x"', b'"\xff"'),  # not UTF-8
        orjson.dumps(answer([item(TS, 1.5), item(TS, 2)])).replace(b"},{", b"},,{"),
    ],
)
def test_invalid_json_is_rejected_as_orjson_rejects_it(body: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)
    with pytest.raises(orjson.JSONDecodeError):
        scan_batch(body)


def test_damaged_bodies_give_orjsons_answer_or_its_error(simulator, points) -> None:
    """Random byte edits of a real answer: the scanner rejects what orjson rejects, and what it accepts gives
    orjson's table (or fails the same way), scanned or not."""
    base = batch_body(simulator.url, [p["WebId"] for p in points[:12]], FIXED_NOW - timedelta(minutes=20), FIXED_NOW, 8)
    rnd = random.Random(5)
    alphabet = b'{}[]",:\\ 0123456789.-eEtrufalsnTZ\x00\xff'
    outcomes = {"rejected": 0, "scanned": 0, "fallback": 0}
    for _ in range(400):
        body = bytearray(base)
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randrange(len(body))
            edit = rnd.random()
            if edit < 0.5:
                body[at] = rnd.choice(alphabet)
            elif edit < 0.75:
                del body[at]
            else:
                body.insert(at, rnd.choice(alphabet))
        try:
            reference = orjson.loads(bytes(body))
        except orjson.JSONDecodeError:
            with pytest.raises(orjson.JSONDecodeError):
                scan_batch(bytes(body))
            outcomes["rejected"] += 1
            continue
        document = scan_batch(bytes(body))
        kind = "scanned" if isinstance(document, dict) and _any_scanned(document) else "fallback"
        outcomes[kind] += 1
        assert _table_or_error(document) == _table_or_error(reference)
    assert min(outcomes.values()) > 10, outcomes


def _any_scanned(document: dict) -> bool:
    return any(
        isinstance(e, dict)
        and isinstance(e.get("Content"), dict)
        and isinstance(e["Content"].get("Items"), ScannedItems)
        for e in document.values()
    )


def _table_or_error(document: object) -> object:
    try:
        return table_of(document).to_pylist()  # type: ignore[arg-type]
    except Exception as exc:  # the same failure either way is what is compared
        return type(exc)

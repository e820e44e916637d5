"""PI time strings, PI timestamps and WebID 2.0: the pure functions both the simulator and client use."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from osipi_connector.piwebapi import webid
from osipi_connector.piwebapi.pitime import (
    TICKS_PER_SECOND,
    PITimeError,
    datetime_to_ticks,
    format_datetime,
    format_ticks,
    parse_iso,
    parse_pi_time,
    parse_pi_timestamp_ticks,
    ticks_to_datetime,
    time_zone,
)

UTC = timezone.utc
NOW = datetime(2025, 3, 31, 12, 30, 15, 500000, tzinfo=UTC)  # month end: calendar arithmetic must clamp
MIDNIGHT = datetime(2025, 3, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*", NOW),
        ("  *  ", NOW),
        ("*-1d", NOW - timedelta(days=1)),
        ("* - 1 h", NOW - timedelta(hours=1)),
        ("*-1.5h", NOW - timedelta(minutes=90)),
        ("*-1d+2h", NOW - timedelta(hours=22)),
        ("*-30s", NOW - timedelta(seconds=30)),
        ("*-10m", NOW - timedelta(minutes=10)),
        ("*-2w", NOW - timedelta(weeks=2)),
        ("-1h", NOW - timedelta(hours=1)),
        ("+30min", NOW + timedelta(minutes=30)),
        ("t", MIDNIGHT),
        ("T", MIDNIGHT),
        ("today", MIDNIGHT),
        ("t+8h", MIDNIGHT + timedelta(hours=8)),
        ("y", MIDNIGHT - timedelta(days=1)),
        ("yesterday", MIDNIGHT - timedelta(days=1)),
        ("y-1w", MIDNIGHT - timedelta(days=8)),
        ("*-1mo", datetime(2025, 2, 28, 12, 30, 15, 500000, tzinfo=UTC)),  # 31 Mar - 1 month: clamped
        ("*-13mo", datetime(2024, 2, 29, 12, 30, 15, 500000, tzinfo=UTC)),  # leap year
        ("*+1y", datetime(2026, 3, 31, 12, 30, 15, 500000, tzinfo=UTC)),
        ("2025-03-01T12:00:00Z", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01t12:00:00z", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T14:00:00+02:00", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T14:00:00+0200", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T12:00:00.1234567Z", datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2025-03-01T06:30:00.1234567-05:30", datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2025-03-01T12:00:00.5Z", datetime(2025, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2025-03-01T12:00:00", datetime(2025, 3, 1, 12, tzinfo=UTC)),  # naive = server time zone (UTC)
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
        # PI's own absolute form (PI DataLink, tagreader): dd-Mon-yy[yy] [HH:MM[:SS[.fff]]] [offsets]
        ("01-Mar-25 12:00:00", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("1-mar-2025", datetime(2025, 3, 1, tzinfo=UTC)),
        ("31-Dec-99 23:59", datetime(1999, 12, 31, 23, 59, tzinfo=UTC)),
        ("05-Jan-25 06:07:08.25", datetime(2025, 1, 5, 6, 7, 8, 250000, tzinfo=UTC)),
        ("01-Mar-25 12:00:00-1h", datetime(2025, 3, 1, 11, tzinfo=UTC)),
    ],
)
def test_parse_pi_time(text, expected):
    parsed = parse_pi_time(text, NOW)
    assert parsed == expected
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == timedelta(0)


def test_relative_times_follow_a_non_utc_now():
    """`now` may come in any zone; the answer is the same instant, in UTC."""
    local = NOW.astimezone(timezone(timedelta(hours=-7)))
    assert parse_pi_time("*-1h", local) == NOW - timedelta(hours=1)
    assert parse_pi_time("t", local) == MIDNIGHT


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("garbage", ""),
        ("*-1x", "unknown unit 'x'"),
        ("*-", "unexpected text"),
        ("t+", "unexpected text"),
        ("*1d", "unexpected text"),
        ("*-1.5mo", "whole"),
        ("*-1d garbage", "unexpected text"),
        ("2025-13-01", ""),
        ("2025-02-30T00:00:00Z", ""),
        ("30-Feb-25 00:00:00", "not a valid date"),
        ("01-Foo-25", "not a valid date"),
        ("01-Mar-25 12:00:00 junk", "unexpected text"),
    ],
)
def test_parse_pi_time_errors(text, reason):
    with pytest.raises(PITimeError, match="Cannot parse time string") as info:
        parse_pi_time(text, NOW)
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)  # callers may catch ValueError


def test_time_zone_parameter_applies_to_times_without_an_offset():
    oslo = time_zone("Europe/Oslo")  # UTC+1 in winter, UTC+2 in summer
    assert parse_pi_time("01-Mar-25 12:00:00", NOW, oslo) == datetime(2025, 3, 1, 11, tzinfo=UTC)
    assert parse_pi_time("2025-07-01T12:00:00", NOW, oslo) == datetime(2025, 7, 1, 10, tzinfo=UTC)
    assert parse_pi_time("2025-07-01T12:00:00Z", NOW, oslo) == datetime(2025, 7, 1, 12, tzinfo=UTC)  # has an offset
    assert parse_pi_time("t", NOW, oslo) == datetime(2025, 3, 30, 22, tzinfo=UTC)  # Oslo midnight, summer time
    assert parse_pi_time("*-1h", NOW, oslo) == NOW - timedelta(hours=1)
    for server_zone in ("UTC", None, ""):
        assert time_zone(server_zone) is UTC
    with pytest.raises(PITimeError, match="time zone 'Mars/Olympus' is not valid"):
        time_zone("Mars/Olympus")


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="aware"):
        parse_pi_time("*", datetime(2025, 1, 1))


@pytest.mark.parametrize(
    ("ticks", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (16451970088757629, "2022-02-18T15:10:08.8757629Z"),
        (16451970085000000, "2022-02-18T15:10:08.5Z"),  # trailing zeros trimmed, as PI does
        (16451970080000001, "2022-02-18T15:10:08.0000001Z"),
        (-5_000_000, "1969-12-31T23:59:59.5Z"),
        (253402300799 * TICKS_PER_SECOND + 9_999_999, "9999-12-31T23:59:59.9999999Z"),
    ],
)
def test_format_ticks_round_trips(ticks, text):
    assert format_ticks(ticks) == text
    assert parse_pi_timestamp_ticks(text) == ticks


def test_format_ticks_round_trips_a_range():
    start = datetime_to_ticks(datetime(2024, 2, 28, 23, 59, 58, tzinfo=UTC))
    for step in range(0, 3 * TICKS_PER_SECOND, 1_234_567):
        assert parse_pi_timestamp_ticks(format_ticks(start + step)) == start + step


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-02-18T17:10:08.8757629+02:00", "2022-02-18T15:10:08.8757629Z"),
        ("2022-02-18T10:10:08-05:00", "2022-02-18T15:10:08Z"),
        ("2022-02-18T15:10:08.123456789Z", "2022-02-18T15:10:08.1234567Z"),  # past 100 ns: dropped
        ("2022-02-18T15:10:08", "2022-02-18T15:10:08Z"),
    ],
)
def test_pi_timestamps_with_offsets_and_long_fractions(text, expected):
    assert format_ticks(parse_pi_timestamp_ticks(text)) == expected


@pytest.mark.parametrize("text", ["", ".5Z", "2022-02-18T15:10:08.1.2Z", "yesterday", "2022-02-18T25:00:00Z"])
def test_pi_timestamp_errors(text):
    with pytest.raises(PITimeError):
        parse_pi_timestamp_ticks(text)


def test_datetime_ticks_conversions_agree():
    value = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    ticks = datetime_to_ticks(value)
    assert ticks % 10 == 0
    assert ticks_to_datetime(ticks) == value
    assert ticks_to_datetime(ticks + 7) == value  # sub-microsecond digits are dropped, not rounded
    assert format_datetime(value) == "2025-03-01T12:00:00.123456Z"
    assert parse_iso(format_datetime(value)) == value


# --- WebID 2.0 -----------------------------------------------------------------------------------------

GUIDS = (
    uuid.UUID("12345678-9abc-def0-1234-56789abcdef0"),
    uuid.UUID("0fedcba9-8765-4321-0fed-cba987654321"),
    uuid.UUID("00112233-4455-6677-8899-aabbccddeeff"),
)
PATH = "\\\\PISRV\\Plant|Unit 1|Temperature Ä"


def identifiers(marker: str, kind: str) -> tuple[tuple[uuid.UUID, ...], tuple[int, ...]]:
    layout = webid.fields(marker, kind)
    return GUIDS[: len(layout) - layout.count("i")], (4_000_000_000,) * layout.count("i")


@pytest.mark.parametrize("marker", sorted(webid.LAYOUTS))
@pytest.mark.parametrize("kind", ["F", "I", "P", "L", "D"])
def test_webid_round_trip(marker, kind):
    guids, ints = identifiers(marker, kind)
    text = webid.encode(marker, guids, ints, path=PATH, kind=kind)
    assert text.startswith(f"{kind}1{marker}")
    assert "=" not in text
    assert all(c.isalnum() or c in "-_" for c in text)  # URL-safe: usable in a path segment as it is
    parsed = webid.decode(text)
    assert parsed.kind == kind
    assert parsed.marker == marker
    if kind == "P":
        assert (parsed.guids, parsed.ints, parsed.path) == ((), (), PATH.upper())
    else:
        assert (parsed.guids, parsed.ints) == (guids, ints)
        assert parsed.path == (PATH.upper() if kind == "F" else None)


def test_known_real_world_layout():
    """The IDOnly point WebID quoted by OSIsoft: 22-char server GUID then a 6-char point id."""
    parsed = webid.decode("I1DPW6Wlk0_Utku9vWTvxg45oA0egAAA")
    assert parsed.marker == "DP"
    assert len(parsed.guids) == len(parsed.ints) == 1
    assert webid.encode("DP", parsed.guids, parsed.ints, kind="I") == "I1DPW6Wlk0_Utku9vWTvxg45oA0egAAA"


def test_point_path_webid():
    text = webid.point_path_webid("pisrv", "sinusoid")
    assert text.startswith("P1DP")
    assert webid.decode(text).path == "PISRV\\SINUSOID"


def _valid_point() -> str:
    return webid.encode("DP", GUIDS[:1], (7,), path="PISRV\\TAG", kind="F")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not a WebID 2.0"),
        ("F1", "not a WebID 2.0"),
        ("X1DSAAAA", "not a WebID 2.0"),
        ("F2DSAAAA", "not a WebID 2.0"),
        ("f1DSAAAA", "not a WebID 2.0"),
        ("F1ZZAAAA", "unknown marker"),
        ("F1AbXAAAA", "unknown marker"),
        ("I1DSAAAA", "not a valid WebID"),  # GUID cut short
        ("I1DP" + "A" * 22 + "AAA", "not a valid WebID"),  # point id cut short
        ("I1DS" + "A" * 22 + "xx", "trailing"),
        ("F1DS" + "A" * 22, "without a path"),
        ("P1DP", "without a path"),
        ("P1DP@@@", "URL-safe"),
        ("I1DS" + "A" * 21 + "+", "URL-safe"),  # standard base64, not URL-safe
        ("F1DS" + "A" * 22 + "_w", "not a valid WebID"),  # path is not UTF-8
        (_valid_point()[:-1] + "!", "URL-safe"),
    ],
)
def test_malformed_webids_are_rejected(text, reason):
    with pytest.raises(webid.WebIdError, match=reason):
        webid.decode(text)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"marker": "DP", "guids": GUIDS[:1], "ints": (), "path": "X"}, "needs"),
        ({"marker": "DS", "guids": GUIDS, "path": "X"}, "needs"),
        ({"marker": "DS", "guids": GUIDS[:1], "kind": "F"}, "needs a path"),
        ({"marker": "DS", "kind": "P"}, "needs a path"),
        ({"marker": "DS", "guids": GUIDS[:1], "kind": "X"}, "unsupported"),
        ({"marker": "Em", "guids": GUIDS[:1], "path": "X"}, "needs"),  # the system GUID is missing
    ],
)
def test_encode_refuses_incomplete_identifiers(kwargs, reason):
    with pytest.raises(webid.WebIdError, match=reason):
        webid.encode(**kwargs)

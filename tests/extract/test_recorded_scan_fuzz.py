"""The byte scanner's word-at-a-time checks (number syntax eight bytes at a time, stamps read only where the
minute changes, the item tail compared with the text of its flag combination) against orjson, on random
bodies: every text orjson accepts gives orjson's table, every text it rejects is rejected the same way."""

from __future__ import annotations

import random

import orjson
import pytest

from osipi_connector.extract.recorded_scan import scan_batch
from tests.extract.test_recorded_scan import ODD_VALUES, answer, assert_same, item, scanned, table_of

DIGITS = "0123456789"


def number_text(rnd: random.Random) -> str:
    """A short text built from the characters of JSON numbers: most are numbers, many are not."""
    if rnd.random() < 0.5:  # well formed, with the edge cases of the grammar
        sign = "-" if rnd.random() < 0.3 else ""
        whole = rnd.choice(["0", str(rnd.randint(1, 9)) + "".join(rnd.choices(DIGITS, k=rnd.randint(0, 16)))])
        fraction = "." + "".join(rnd.choices(DIGITS, k=rnd.randint(1, 9))) if rnd.random() < 0.6 else ""
        return sign + whole + fraction
    return "".join(rnd.choices("0123456789.-", weights=[3] * 10 + [4, 2], k=rnd.randint(1, 26)))


def item_text(stamp: str, value: str, flags: tuple[bool, bool, bool, bool]) -> str:
    good, questionable, substituted, annotated = (str(f).lower() for f in flags)
    return (
        f'{{"Timestamp":"{stamp}","Value":{value},"Good":{good},"Questionable":{questionable},'
        f'"Substituted":{substituted},"Annotated":{annotated}}}'
    )


def body_of(*runs: list[str]) -> bytes:
    entries = ",".join(
        f'"{i}":{{"Status":200,"Headers":{{}},"Content":{{"Items":[{",".join(run)}],"UnitsAbbreviation":"u"}}}}'
        for i, run in enumerate(runs)
    )
    return ("{" + entries + "}").encode()


def too_large(text: str) -> bool:
    """An integer a double cannot hold exactly: neither path reads it (Arrow refuses it; a known limit)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return isinstance(value, int) and abs(value) > 2**53


def same_or_rejected_alike(body: bytes) -> str:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            scan_batch(body)
        return "rejected"
    return "scanned" if scanned(assert_same(body)) else "fallback"


def test_number_texts_read_as_orjson_reads_them() -> None:
    """One number per body (a bad one makes the whole body orjson's): integers up to 17 digits, fractions,
    signs, leading zeros, dots first, last and twice, lone signs, every width from 1 to 26 bytes."""
    rnd = random.Random(12)
    outcomes = {"rejected": 0, "scanned": 0, "fallback": 0}
    for _ in range(1500):
        text = number_text(rnd)
        if too_large(text):
            continue
        good = item_text("2025-03-01T06:03:35Z", "1.5", (True, False, False, False))
        outcomes[same_or_rejected_alike(body_of([good, item_text("2025-03-01T06:03:36Z", text, (True,) * 4)]))] += 1
    assert outcomes["rejected"] > 200, outcomes
    assert outcomes["scanned"] > 500, outcomes


def test_many_numbers_in_one_body_scan_exactly() -> None:
    """Valid number texts of every length side by side in one answer (one width per slice)."""
    rnd = random.Random(3)
    texts = []
    while len(texts) < 3000:
        text = number_text(rnd)
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if not too_large(text):
            texts.append(text)
    run = [item_text(f"2025-03-01T06:{i // 60 % 60:02d}:{i % 60:02d}Z", t, (True,) * 4) for i, t in enumerate(texts)]
    assert scanned(assert_same(body_of(run[:1000], run[1000:]))) == 2


def test_two_digit_integers_ending_in_zero_keep_their_value() -> None:
    """`10`..`90` and `-0`: the scanner once read every two-byte text ending in `0` as orjson's `-0` (0.0)."""
    texts = ["10", "20", "50", "90", "-0", "-1", "0", "-9", "1", "99"]
    run = [item_text(f"2025-03-01T06:03:{i:02d}Z", t, (True, False, False, False)) for i, t in enumerate(texts)]
    document = assert_same(body_of(run))
    assert scanned(document) == 1
    assert table_of(document)["value"].to_pylist() == [10.0, 20.0, 50.0, 90.0, 0.0, -1.0, 0.0, -9.0, 1.0, 99.0]


def stamp(rnd: random.Random, base: int) -> str:
    """A PI stamp near `base` (seconds since 2024-02-28): leap days, month and year ends, 0..7 fraction digits."""
    from datetime import datetime, timedelta, timezone

    moment = datetime(2024, 2, 28, tzinfo=timezone.utc) + timedelta(seconds=base)
    digits = rnd.choice([0, 0, 0, 1, 2, 3, 6, 7, 7])
    fraction = "." + "".join(rnd.choices(DIGITS, k=digits)) if digits else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stamps_flags_and_values_of_long_runs(seed: int) -> None:
    """Tens of thousands of items over several tags (more than one slice of the scanner): the minute
    changing every few items or every item, days and years turning, every flag combination (mostly one,
    as PI sends them), odd values between numbers, duplicate stamps."""
    rnd = random.Random(seed)
    runs = []
    for _ in range(7):
        at = rnd.choice([0, 86_400 - 300, 366 * 86_400 - 200, 30 * 86_400 + 86_340])  # leap day, month/year ends
        run = []
        for _ in range(rnd.randint(0, 6000)):
            at += rnd.choice([0, 1, 5, 59, 61, 3600])
            flags = (True, False, False, False) if rnd.random() < 0.8 else tuple(rnd.random() < 0.5 for _ in range(4))
            if rnd.random() < 0.02:
                value = orjson.dumps(rnd.choice(ODD_VALUES)).decode()
            else:
                value = orjson.dumps(round(rnd.uniform(-1e4, 1e4), rnd.randint(0, 6))).decode()
            run.append(item_text(stamp(rnd, at), value, flags))  # type: ignore[arg-type]
        runs.append(run)
    document = assert_same(body_of(*runs))
    assert table_of(document).num_rows == sum(len(r) for r in runs)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"Good":true', b'"Good":tru'),
        (b'"Annotated":false}', b'"Annotated":fals}'),
        (b'"Substituted":false', b'"Substituted":False'),
        (b'"Questionable":false', b'"Questionable" :false'),
        (b',"Good"', b',"good"'),
        (b"35Z", b"35z"),
        (b"06:03", b"06:63"),
        (b"06:03", b"24:03"),
        (b":35Z", b":65Z"),
        (b"T06", b" 06"),
        (b'Z","Value"', b'Z","value"'),
    ],
)
def test_a_damaged_byte_in_any_field_of_a_later_item_is_not_scanned_as_data(old: bytes, new: bytes) -> None:
    """Items equal to their predecessor but for one byte: nothing is taken on trust from the row before."""
    items = [item("2025-03-01T06:03:35Z", 1.5 + i) for i in range(50)]
    body = orjson.dumps(answer(items))
    at = body.index(old, len(body) // 2)
    damaged = body[:at] + new + body[at + len(old) :]
    try:
        reference = orjson.loads(damaged)
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            scan_batch(damaged)
        return
    assert scan_batch(damaged) == reference  # plain lists: orjson's answer, then the dict path as before

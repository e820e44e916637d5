"""Encode recorded values straight to JSON bytes, vectorised.

Serving values must not be what limits a connector benchmark, so this skips per-value dicts: timestamps
are formatted as fixed-width ASCII in NumPy, numbers by one `orjson.dumps` of the whole column, and the
items are stitched with a single `bytes.join`. Output is byte-identical to encoding the equivalent dicts.
Large answers of numeric points skip even the per-value bytes objects: `encode_body` hands them to
`jsonrows` (one byte matrix per chunk), which writes the same bytes.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Iterator

import numpy as np
import orjson

from osipi_connector.piwebapi.pitime import TICKS_PER_SECOND
from osipi_connector.simulator.points import SYSTEM_STATES, Point
from osipi_connector.simulator.values import SYSTEM_NAMES, Events

TIMED_VALUE_FIELDS = (
    "Timestamp",
    "Value",
    "UnitsAbbreviation",
    "Good",
    "Questionable",
    "Substituted",
    "Annotated",
)
_TRUE_FALSE = (b"false", b"true")
NUMERIC_TYPES = ("Float32", "Float64", "Int32")
ROWS_MIN = 64  # from this many values on, items are built as rows of one byte matrix (`jsonrows`)
_PAIRS = np.frombuffer(b"".join(f"{i:02d}".encode() for i in range(100)), dtype=np.uint8).reshape(100, 2)
_TRIPLES = np.frombuffer(b"".join(f"{i:03d}".encode() for i in range(1000)), dtype=np.uint8).reshape(1000, 3)
_QUADS = np.frombuffer(b"".join(f"{i:04d}".encode() for i in range(10_000)), dtype=np.uint8).reshape(10_000, 4)


def _clock_table() -> np.ndarray:
    """`HH:MM:SS` for every second of a day, as rows of 8 ASCII bytes (675 KiB)."""
    second = np.arange(86_400)
    table = np.empty((86_400, 8), dtype=np.uint8)
    table[:, 0:2] = _PAIRS[second // 3600]
    table[:, 3:5] = _PAIRS[second // 60 % 60]
    table[:, 6:8] = _PAIRS[second % 60]
    table[:, [2, 5]] = ord(":")
    return table


_CLOCK = _clock_table()
_SYSTEM_FRAGMENTS = [b"null"] + [
    orjson.dumps({"Name": name, "Value": SYSTEM_STATES[name], "IsSystem": True}) for name in SYSTEM_NAMES
]


def format_timestamps(ticks: np.ndarray, quoted: bool = False, prefix: bytes = b"", suffix: bytes = b"") -> list[bytes]:
    """`timestamp_matrix` as one bytes object per timestamp."""
    if len(ticks) == 0:
        return []
    buf, _ = timestamp_matrix(ticks, quoted, prefix, suffix)
    return buf.view(f"S{buf.shape[1]}").ravel().tolist()


def timestamp_matrix(
    ticks: np.ndarray, quoted: bool = False, prefix: bytes = b"", suffix: bytes = b""
) -> tuple[np.ndarray, np.ndarray]:
    """PI timestamps (`2025-03-01T12:00:00Z`, or up to 7 fraction digits with trailing zeros trimmed),
    optionally wrapped in JSON quotes and between constant `prefix` and `suffix` bytes: rows of ASCII
    bytes, NUL-padded on the right, and each row's length.

    Values come in time order, so long runs share their day: the `YYYY-MM-DDT` head is formatted once
    per run and repeated; the time of day and the fraction are table lookups."""
    n = len(ticks)
    q = 1 if quoted else 0
    o = len(prefix) + q  # column of the first digit
    secs, frac = np.divmod(ticks, TICKS_PER_SECOND)
    days, second_of_day = np.divmod(secs, 86_400)
    starts = np.flatnonzero(days[1:] != days[:-1]) + 1
    lengths = np.diff(starts, prepend=0, append=n)
    starts = np.concatenate(([0], starts))
    subsecond = bool(frac.any())
    width = o + (28 if subsecond else 20) + q + len(suffix)
    buf = np.empty((n, width), dtype=np.uint8)
    if prefix:
        buf[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    if quoted:
        buf[:, o - 1] = ord('"')
    buf[:, o : o + 11] = np.repeat(_day_heads(days[starts]), lengths, axis=0)
    buf[:, o + 11 : o + 19] = _CLOCK[second_of_day]
    closing = (b'"' if quoted else b"") + suffix
    if not subsecond:  # whole seconds: fixed width, no padding
        buf[:, o + 19] = ord("Z")
        if closing:
            buf[:, o + 20 :] = np.frombuffer(closing, dtype=np.uint8)
        return buf, np.full(n, width, dtype=np.int64)
    buf[:, o + 20 : o + 24] = _QUADS[frac // 1000]
    buf[:, o + 24 : o + 27] = _TRIPLES[frac % 1000]
    # significant fraction digits (0 = a whole second: no fraction at all)
    digits = np.full(n, 7, dtype=np.int64)
    for k in range(1, 8):
        digits[frac % (10**k) == 0] = 7 - k
    has_frac = digits > 0
    buf[:, o + 19] = np.where(has_frac, ord("."), ord("Z"))
    rows = np.arange(n)
    buf[rows[has_frac], o + 20 + digits[has_frac]] = ord("Z")
    end = np.where(has_frac, o + 21 + digits, o + 20)  # one past the Z
    for k, byte in enumerate(closing):
        buf[rows, end + k] = byte
    lengths = end + len(closing)
    buf[np.arange(width)[None, :] >= lengths[:, None]] = 0  # NUL padding: an S view strips it
    return buf, lengths


def _day_heads(days: np.ndarray) -> np.ndarray:
    """`YYYY-MM-DDT` for days since the epoch, as rows of 11 ASCII bytes."""
    # civil-from-days (H. Hinnant), valid for the proleptic Gregorian calendar
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    head = np.empty((len(days), 11), dtype=np.uint8)
    century, year_in_century = np.divmod(year, 100)
    head[:, 0:2] = _PAIRS[century]
    head[:, 2:4] = _PAIRS[year_in_century]
    head[:, 5:7] = _PAIRS[month]
    head[:, 8:10] = _PAIRS[day]
    head[:, [4, 7]] = ord("-")
    head[:, 10] = ord("T")
    return head


def value_fragments(point: Point, events: Events) -> list[bytes]:
    """Each event's `Value` as JSON: number, digital state object, string, or system state object."""
    ptype = point.point_type
    if ptype == "Digital":
        states = point.digital_set.states if point.digital_set else ("0", "1")
        table = [orjson.dumps({"Name": s, "Value": i, "IsSystem": False}) for i, s in enumerate(states)]
        out = [table[int(v)] for v in events.value.tolist()]
    elif ptype == "String":
        out = [orjson.dumps(string_value(point, int(v))) for v in events.value.tolist()]
    elif len(events) == 0:
        out = []
    else:
        column = events.value.astype(np.int64).tolist() if ptype == "Int32" else events.value.tolist()
        out = orjson.dumps(column)[1:-1].split(b",")
    if events.system.any():
        for i in np.flatnonzero(events.system).tolist():
            out[i] = _SYSTEM_FRAGMENTS[int(events.system[i])]
    return out


def string_value(point: Point, serial: int) -> str:
    """A String point's value for a slot serial (edited values carry a +1,000,000 marker)."""
    edited, serial = divmod(serial, 1_000_000)
    text = f"{point.name.split('.')[0]}-{serial:07d}"
    return text + "-rev2" if edited else text


@functools.lru_cache(maxsize=256)
def selected_item_fields(spec: str | None, prefix: str = "Items") -> tuple[str, ...]:
    """Which TimedValue members `selectedFields` keeps (all when the spec does not narrow them)."""
    if not spec:
        return TIMED_VALUE_FIELDS
    paths = [p.strip().lower() for p in spec.split(";") if p.strip()]
    lower_prefix = prefix.lower()
    if lower_prefix in paths or any(lower_prefix.startswith(p + ".") for p in paths):
        return TIMED_VALUE_FIELDS
    wanted = {p[len(lower_prefix) + 1 :] for p in paths if p.startswith(lower_prefix + ".")}
    return tuple(f for f in TIMED_VALUE_FIELDS if f.lower() in wanted)


def flag_combos(events: Events) -> np.ndarray:
    """Each event's quality flags as one number: Good 8, Questionable 4, Substituted 2, Annotated 1."""
    return (
        (events.system == 0).astype(np.int64) * 8
        + events.questionable.astype(np.int64) * 4
        + events.substituted.astype(np.int64) * 2
        + events.annotated.astype(np.int64)
    )


def encode_items(point: Point, events: Events, fields: tuple[str, ...] = TIMED_VALUE_FIELDS) -> bytes:
    """The JSON array of TimedValue objects for `events`, with only `fields`, as bytes.

    Per item only the timestamp and the value vary freely; units are constant per point and the four
    quality flags take one of 16 combinations. An item is therefore T0 V1 T1 V2 T2, where the T pieces
    are precomputed per flag combination, which keeps it to a handful of joins per value.
    """
    n = len(events)
    if n == 0:
        return b"[]"
    if _as_rows(point, events, fields):
        return encode_body(point, events, fields, True) + b"]"
    combo = flag_combos(events)
    if fields[:2] == ("Timestamp", "Value"):
        return _encode_timestamp_value_first(point, events, fields, combo.tolist())
    tables: list[list[bytes]] = []
    columns: list[list[bytes]] = []
    table = [b"{"] * 16
    for position, field in enumerate(fields):
        key = (b"," if position else b"") + b'"' + field.encode() + b'":'
        if field == "Timestamp":
            tables.append([t + key for t in table])
            columns.append(format_timestamps(events.ticks, quoted=True))
            table = [b""] * 16
        elif field == "Value":
            tables.append([t + key for t in table])
            columns.append(value_fragments(point, events))
            table = [b""] * 16
        else:
            table = _constant_member(table, point, field, key)
    last = [t + b"}" for t in table]
    combos = combo.tolist()
    if not columns:
        return b"[" + b",".join(_lookup(last, combos)) + b"]"
    # the piece between item i-1 and item i: last[c(i-1)] + "," + first[c(i)], from a 16x16 table
    first = tables[0]
    joint = [a + b"," + b for a in last for b in first]
    between = (combo[:-1] * 16 + combo[1:]).tolist()
    width = 2 * len(columns)
    parts: list[bytes] = [b""] * (width * n)
    parts[0::width] = [first[combos[0]], *_lookup(joint, between)]
    for j, column in enumerate(columns):
        parts[2 * j + 1 :: width] = column
        if j + 1 < len(columns):
            parts[2 * j + 2 :: width] = _lookup(tables[j + 1], combos)
    return b"".join([b"[", *parts, last[combos[-1]], b"]"])


def _encode_timestamp_value_first(point: Point, events: Events, fields: tuple[str, ...], combos: list[int]) -> bytes:
    """The common layout (all fields, or `Items.Timestamp;Items.Value`): three pieces per item.

    `{"Timestamp":"...","Value":` comes whole from the timestamp formatter, then the value, then the
    constant members for the item's flag combination with the closing `},`."""
    n = len(events)
    table = [b""] * 16
    for field in fields[2:]:
        table = _constant_member(table, point, field, b',"' + field.encode() + b'":')
    ends = [t + b"}," for t in table]
    parts: list[bytes] = [b""] * (3 * n + 2)
    parts[0] = b"["
    parts[1 : 3 * n : 3] = format_timestamps(events.ticks, quoted=True, prefix=b'{"Timestamp":', suffix=b',"Value":')
    parts[2 : 3 * n : 3] = value_fragments(point, events)
    parts[3 : 3 * n + 1 : 3] = _lookup(ends, combos)
    parts[3 * n] = parts[3 * n][:-1]  # no comma after the last item
    parts[3 * n + 1] = b"]"
    return b"".join(parts)


def _constant_member(table: list[bytes], point: Point, field: str, key: bytes) -> list[bytes]:
    """`table` (one piece per flag combination) extended by a member that is constant per point
    (UnitsAbbreviation) or per combination (Good, Questionable, Substituted, Annotated)."""
    if field == "UnitsAbbreviation":
        member = key + orjson.dumps(point.units)
        return [t + member for t in table]
    bit = _FLAG_BITS[field]
    return [t + key + _TRUE_FALSE[1 if c & bit else 0] for c, t in enumerate(table)]


def _lookup(table: list[bytes], indices: list[int]) -> list[bytes] | tuple[bytes, ...]:
    """table[i] for every i, at C speed (itemgetter returns a bare item for a single index)."""
    if len(indices) < 2:
        return [table[i] for i in indices]
    return operator.itemgetter(*indices)(table)


_FLAG_BITS = {"Good": 8, "Questionable": 4, "Substituted": 2, "Annotated": 1}


def _as_rows(point: Point, events: Events, fields: tuple[str, ...]) -> bool:
    """Whether `jsonrows` encodes these items (many numbers, the usual layouts)."""
    return len(events) >= ROWS_MIN and fields[:2] == ("Timestamp", "Value") and point.point_type in NUMERIC_TYPES


def encode_body(point: Point, events: Events, fields: tuple[str, ...], first: bool) -> bytes:
    """The items of a non-empty `events` as JSON array text, opened with `[` when `first`, else
    continuing an array with `,`; never closed. Many numbers in a layout that starts with Timestamp,
    Value are built as rows of one byte matrix (`jsonrows`), the rest by the per-value path."""
    if _as_rows(point, events, fields):
        from osipi_connector.simulator import jsonrows  # it imports this module

        return jsonrows.encode_rows(point, events, fields, flag_combos(events), first)
    items = encode_items(point, events, fields)
    return items[:-1] if first else b"," + items[1:-1]


def encode_parts(
    point: Point, parts: Iterable[Events], fields: tuple[str, ...] = TIMED_VALUE_FIELDS, chunk: int = 16_384
) -> Iterator[bytes]:
    """One JSON array over events that arrive in parts (as they are generated), in pieces of at most
    `chunk` values."""
    first = True
    for events in parts:
        for start in range(0, len(events), chunk):
            yield encode_body(point, events.take(slice(start, start + chunk)), fields, first)
            first = False
    yield b"[]" if first else b"]"


def encode_items_chunked(
    point: Point, events: Events, fields: tuple[str, ...] = TIMED_VALUE_FIELDS, chunk: int = 16_384
) -> Iterator[bytes]:
    """`encode_items` in pieces of `chunk` values (concatenated, they are the same bytes)."""
    if len(events) <= chunk:
        yield encode_items(point, events, fields)
        return
    yield from encode_parts(point, [events], fields, chunk)

"""Recorded values as JSON built in one NumPy byte matrix, with no Python object per value.

Serving recorded values was a third of the CPU of the PI benchmark (simulator and connector share the
cores), and most of it went into a bytes object per timestamp, per number and per item tail plus
their join. Here each item `,{"Timestamp":"...","Value":V,<members>}` is one row of a uint8 matrix:

- the row starts as a template (every constant byte, and the members of the usual flag combination);
- the date, the time of day, the fraction of a second and the number's digits are copied in by
  `np.take` from small digit tables, straight into column views of the matrix;
- parts are left-aligned nowhere: unused columns hold NULs, and one `bytes.translate` deletes every
  NUL at the end (JSON text never contains one: orjson escapes control characters). So a sign, a
  number's leading zeros or a trimmed fraction is just a NUL where a digit would be.

Values that are not plain decimals (system states, digital states, strings, numbers orjson writes with
an exponent) are orjson fragments spliced in between the text of the rows around them.
Byte-identical to `jsonfast`'s per-value path (tests/simulator/test_jsonrows.py), which still serves
tiny answers and layouts that do not start with Timestamp, Value.
"""

from __future__ import annotations

import numpy as np
import orjson

from osipi_connector.piwebapi.pitime import TICKS_PER_SECOND
from osipi_connector.simulator import jsonfast
from osipi_connector.simulator.points import Point
from osipi_connector.simulator.values import Events

# `np.round(x, d)` leaves the double nearest to a d-digit decimal, whose shortest repr is that decimal.
DECIMALS = {"Float32": 3, "Float64": 6, "Int32": 0}
_HEAD = b'{"Timestamp":"'
_VALUE = b'Z","Value":'


def _digits(width: int, strip: str, zero: str) -> np.ndarray:
    """`width`-digit numbers as ASCII rows with leading (strip "l") or trailing ("r") zeros as NULs,
    and 0 as `zero` (NUL-padded)."""
    rows = []
    for i in range(10**width):
        text = f"{i:0{width}d}"
        text = (text.lstrip("0") if strip == "l" else text.rstrip("0")) or zero
        rows.append(text.rjust(width, "\0") if strip == "l" else text.ljust(width, "\0"))
    return np.frombuffer("".join(rows).encode(), dtype=np.uint8).reshape(10**width, width)


# Two-level tables: index + 10**width * (more digits follow / precede) picks the full-digit row.
_INT_LOW = np.concatenate([_digits(4, "l", "0"), jsonfast._QUADS])  # + 10_000 when the upper part is > 0
_INT_HIGH = _digits(4, "l", "")
_FRAC3_FIRST = np.concatenate([_digits(3, "r", "0"), jsonfast._TRIPLES])  # + 1000 when more digits follow
_FRAC3_LAST = _digits(3, "r", "")
_FRAC3_ONLY = _digits(3, "r", "0")
_TICK4_FIRST = np.concatenate([_digits(4, "r", ""), jsonfast._QUADS])  # 100-ns fraction: 4 + 3 digits


class _Layout:
    """Column offsets of one row: the timestamp, then the value, then the members after it."""

    def __init__(self, subsecond: bool, decimals: int | None, value_width: int, tail_width: int):
        self.clock = 1 + len(_HEAD) + 11
        self.fraction = self.clock + 8
        self.value = self.fraction + (8 if subsecond else 0) + len(_VALUE)
        self.value_width = value_width
        self.tail = self.value + value_width
        self.width = self.tail + tail_width
        self.decimals = decimals


def _template(layout: _Layout, tail: bytes) -> np.ndarray:
    row = np.zeros(layout.width, dtype=np.uint8)
    row[: 1 + len(_HEAD)] = np.frombuffer(b"," + _HEAD, dtype=np.uint8)
    row[layout.value - len(_VALUE) : layout.value] = np.frombuffer(_VALUE, dtype=np.uint8)
    if layout.decimals:
        row[layout.value + 9] = ord(".")
    row[layout.tail : layout.tail + len(tail)] = np.frombuffer(tail, dtype=np.uint8)
    return row


def _take(table: np.ndarray, index: np.ndarray, out: np.ndarray) -> None:
    np.take(table, index, axis=0, out=out, mode="clip")  # "clip": no buffering; indices are in range


def _write_timestamps(rows: np.ndarray, ticks: np.ndarray, layout: _Layout, subsecond: bool) -> None:
    seconds, fraction = np.divmod(ticks, TICKS_PER_SECOND)
    days, second_of_day = np.divmod(seconds, 86_400)
    first_day = int(days.min())
    heads = jsonfast._day_heads(np.arange(first_day, int(days.max()) + 1))
    _take(heads, days - first_day, rows[:, layout.clock - 11 : layout.clock])
    _take(jsonfast._CLOCK, second_of_day, rows[:, layout.clock : layout.clock + 8])
    if subsecond:
        high, low = np.divmod(fraction, 1000)
        rows[:, layout.fraction] = np.where(fraction > 0, ord("."), 0)
        _take(_TICK4_FIRST, high + 10_000 * (low > 0), rows[:, layout.fraction + 1 : layout.fraction + 5])
        _take(_FRAC3_LAST, low, rows[:, layout.fraction + 5 : layout.fraction + 8])


def _write_numbers(rows: np.ndarray, values: np.ndarray, layout: _Layout) -> np.ndarray:
    """Write numbers that are exact `decimals`-digit decimals in (1e-3, 1e8) or 0 as orjson does
    (integers for decimals 0); the mask of the rows done (the rest is left to orjson)."""
    decimals = layout.decimals or 0
    scale = 10**decimals
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.rint(values * scale)
        magnitude = np.abs(values)
        done = (magnitude < 1e8) & (scaled / scale == values)
        if decimals:
            done &= (magnitude >= 1e-3) | (values == 0)  # orjson writes 1e-6 for 0.000001
    integer, fraction = np.divmod(np.where(done, np.abs(scaled), 0).astype(np.int64), scale)
    high, low = np.divmod(integer, 10_000)
    v = layout.value
    negative = np.signbit(values) if decimals else scaled < 0  # -0.0 is "-0.0", an int 0 is "0"
    rows[:, v] = negative * ord("-")
    _take(_INT_HIGH, high, rows[:, v + 1 : v + 5])
    _take(_INT_LOW, low + 10_000 * (high > 0), rows[:, v + 5 : v + 9])
    if decimals == 3:
        _take(_FRAC3_ONLY, fraction, rows[:, v + 10 : v + 13])
    elif decimals == 6:
        first, last = np.divmod(fraction, 1000)
        _take(_FRAC3_FIRST, first + 1000 * (last > 0), rows[:, v + 10 : v + 13])
        _take(_FRAC3_LAST, last, rows[:, v + 13 : v + 16])
    return done


def _tails(point: Point, fields: tuple[str, ...]) -> list[bytes]:
    """The members after `Value` and the closing `}` for each of the 16 flag combinations."""
    table = [b""] * 16
    for field in fields[2:]:
        table = jsonfast._constant_member(table, point, field, b',"' + field.encode() + b'":')
    return [t + b"}" for t in table]


def encode_rows(point: Point, events: Events, fields: tuple[str, ...], combo: np.ndarray, first: bool) -> bytes:
    """The items of `events` (with `fields`, which start with Timestamp, Value) as JSON array text:
    opened with `[` when `first`, else continuing one with `,`; never closed. `combo` is each item's
    flag combination (Good 8, Questionable 4, Substituted 2, Annotated 1)."""
    n = len(events)
    decimals = DECIMALS.get(point.point_type)
    subsecond = bool((events.ticks % TICKS_PER_SECOND).any())
    tails = _tails(point, fields)
    tail_width = max(map(len, tails))
    value_width = {None: 1, 0: 9, 3: 13, 6: 16}[decimals]
    layout = _Layout(subsecond, decimals, value_width, tail_width)
    rows = np.empty((n, layout.width), dtype=np.uint8)
    usual = 8  # Good, no other flag
    rows[:] = _template(layout, tails[usual])
    if first:
        rows[0, 0] = ord("[")
    _write_timestamps(rows, events.ticks, layout, subsecond)
    unusual = np.flatnonzero(combo != usual)
    if len(unusual):
        table = np.zeros((16, tail_width), dtype=np.uint8)
        for c, tail in enumerate(tails):
            table[c, : len(tail)] = np.frombuffer(tail, dtype=np.uint8)
        rows[unusual, layout.tail :] = table[combo[unusual]]
    if decimals is None:  # Digital, String: every value is a fragment
        special = np.arange(n)
    else:
        done = _write_numbers(rows, events.value, layout)
        special = np.flatnonzero(~done | (events.system != 0))
    if len(special) == 0:
        return _text(rows)
    fragments = _fragments(point, events, special, decimals)
    pieces: list[bytes] = []
    start = 0
    for row, fragment in zip(special.tolist(), fragments):  # rows before, this row around its value
        pieces += (_text(rows[start:row]), _text(rows[row, : layout.value]), fragment, _text(rows[row, layout.tail :]))
        start = row + 1
    pieces.append(_text(rows[start:]))
    return b"".join(pieces)


def _text(rows: np.ndarray) -> bytes:
    return rows.tobytes().translate(None, b"\x00")


def _fragments(point: Point, events: Events, rows: np.ndarray, decimals: int | None) -> list[bytes]:
    """The `Value` JSON of events `rows`, each on its own."""
    if decimals is None:
        return jsonfast.value_fragments(point, events.take(rows))
    values = events.value[rows]
    with np.errstate(invalid="ignore"):  # as jsonfast does (an Int32 NaN never comes from the model)
        column = values.astype(np.int64).tolist() if decimals == 0 else values.tolist()
    return [
        jsonfast._SYSTEM_FRAGMENTS[code] if code else orjson.dumps(v)
        for code, v in zip(events.system[rows].tolist(), column)
    ]

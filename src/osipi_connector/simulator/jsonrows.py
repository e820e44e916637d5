"""Recorded values as JSON built in one NumPy byte matrix, with no Python object per value.

Serving recorded values was a third of the CPU of the PI benchmark (simulator and connector share the
cores), and most of it went into a bytes object per timestamp, per number and per item tail plus
their join. Here each item `,{"Timestamp":"...","Value":V,<members>}` is one row of a uint8 matrix:

- the row starts as a template (every constant byte, and the members of the usual flag combination);
- the date, the time of day, the fraction of a second and the number's digits are copied in by
  `np.take` from small digit tables, as 4- or 8-byte words straight into word views of the matrix;
- parts are left-aligned nowhere: unused columns hold NULs, and one `bytes.translate` deletes every
  NUL at the end (JSON text never contains one: orjson escapes control characters). So a sign, a
  number's leading zeros or a trimmed fraction is just a NUL where a digit would be.

Values that are not plain decimals (system states, numbers orjson writes with an exponent) are orjson
fragments spliced in between the text of the rows around them. Output is byte-identical to `jsonfast`'s
per-value path (tests/simulator/test_jsonrows.py), which still serves answers under `ROWS_MIN` values,
Digital and String points (few values) and layouts that do not start with Timestamp, Value.
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
    """`width`-digit numbers as 4-byte words of ASCII (uint32) with leading (strip "l") or trailing
    ("r") zeros as NULs, and 0 as `zero`; NULs fill the word."""
    rows = []
    for i in range(10**width):
        text = f"{i:0{width}d}"
        text = (text.lstrip("0") if strip == "l" else text.rstrip("0")) or zero
        rows.append(text.rjust(4, "\0") if strip == "l" else text.ljust(4, "\0"))
    return np.frombuffer("".join(rows).encode(), dtype=np.uint32)


def _full(width: int) -> np.ndarray:
    """`width`-digit numbers with all their zeros, as 4-byte words."""
    return np.frombuffer("".join(f"{i:0{width}d}".ljust(4, "\0") for i in range(10**width)).encode(), np.uint32)


# Two-level tables: index + 10**width * (more digits follow / precede) picks the all-digit word.
_INT_HIGH = _digits(4, "l", "")
_INT_LOW = np.concatenate([_digits(4, "l", "0"), _full(4)])  # + 10_000 when the upper part is > 0
_FRAC3_FIRST = np.concatenate([_digits(3, "r", "0"), _full(3)])  # + 1000 when more digits follow
_FRAC3_LAST = _digits(3, "r", "")
_FRAC3_ONLY = _digits(3, "r", "0")
_TICK4_FIRST = np.concatenate([_digits(4, "r", ""), _full(4)])  # 100-ns fraction: 4 + 3 digits
_CLOCK = np.frombuffer(jsonfast._CLOCK.tobytes(), dtype=np.uint64)  # HH:MM:SS, one 8-byte word a second


class _Layout:
    """Byte columns of one row. Every part that comes from a table is a whole 4- or 8-byte word of
    the row (NULs pad it), so `np.take` copies words, not bytes: `,{"Timestamp":"` in bytes 1-15, the
    date in 16-31, the time of day in 32-39, then the fraction of a second, `Z","Value":`, the sign,
    the integer part (two words), the fraction (one or two words) and the members after the value."""

    def __init__(self, subsecond: bool, decimals: int, tail_width: int):
        self.decimals = decimals
        at = 40
        if subsecond:  # "." then 4 + 3 digits
            self.tick_dot, self.tick_first, self.tick_last = 40, 44, 48
            at = 52
        self.value_text = at
        self.sign = at + len(_VALUE)
        self.high = _align(self.sign + 1, 4)
        self.low = self.high + 4
        at = self.low + 4
        if decimals:
            self.dot = at
            self.fraction = _align(at + 1, 4)
            at = self.fraction + (8 if decimals == 6 else 4)
        self.tail = at
        self.width = _align(at + tail_width, 8)


def _align(column: int, size: int) -> int:
    return -(-column // size) * size


def _template(layout: _Layout, tail: bytes) -> np.ndarray:
    row = np.zeros(layout.width, dtype=np.uint8)
    row[1:16] = np.frombuffer(b"," + _HEAD, dtype=np.uint8)
    row[layout.value_text : layout.sign] = np.frombuffer(_VALUE, dtype=np.uint8)
    if layout.decimals:
        row[layout.dot] = ord(".")
    row[layout.tail : layout.tail + len(tail)] = np.frombuffer(tail, dtype=np.uint8)
    return row


def _take(table: np.ndarray, index: np.ndarray, words: np.ndarray, column: int) -> None:
    """Copy table[index] into the row word at byte `column` of `words` (a uint32/uint64 view)."""
    np.take(table, index, out=words[:, column // table.itemsize], mode="clip")  # "clip": unbuffered


def _write_timestamps(rows: np.ndarray, ticks: np.ndarray, layout: _Layout, subsecond: bool) -> None:
    seconds, fraction = np.divmod(ticks, TICKS_PER_SECOND)
    days, second_of_day = np.divmod(seconds, 86_400)
    first_day = int(days.min())
    heads = np.zeros((int(days.max()) + 1 - first_day, 16), dtype=np.uint8)
    heads[:, 5:] = jsonfast._day_heads(np.arange(first_day, int(days.max()) + 1))
    heads = heads.view(np.uint64)
    day = days - first_day
    words = rows.view(np.uint64)
    _take(heads[:, 0], day, words, 16)
    _take(heads[:, 1], day, words, 24)
    _take(_CLOCK, second_of_day, words, 32)
    if subsecond:
        high, low = np.divmod(fraction, 1000)
        rows[:, layout.tick_dot] = np.where(fraction > 0, ord("."), 0)
        words = rows.view(np.uint32)
        _take(_TICK4_FIRST, high + 10_000 * (low > 0), words, layout.tick_first)
        _take(_FRAC3_LAST, low, words, layout.tick_last)


def _write_numbers(rows: np.ndarray, values: np.ndarray, layout: _Layout) -> np.ndarray:
    """Write numbers that are exact `decimals`-digit decimals in (1e-3, 1e8) or 0 as orjson does
    (integers for decimals 0); the mask of the rows done (the rest is left to orjson)."""
    decimals = layout.decimals
    scale = 10**decimals
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.rint(values * scale)
        magnitude = np.abs(values)
        done = (magnitude < 1e8) & (scaled / scale == values)
        if decimals:
            done &= (magnitude >= 1e-3) | (values == 0)  # orjson writes 1e-6 for 0.000001
    integer, fraction = np.divmod(np.where(done, np.abs(scaled), 0).astype(np.int64), scale)
    high, low = np.divmod(integer, 10_000)
    negative = np.signbit(values) if decimals else scaled < 0  # -0.0 is "-0.0", an int 0 is "0"
    rows[:, layout.sign] = negative * ord("-")
    words = rows.view(np.uint32)
    _take(_INT_HIGH, high, words, layout.high)
    _take(_INT_LOW, low + 10_000 * (high > 0), words, layout.low)
    if decimals == 3:
        _take(_FRAC3_ONLY, fraction, words, layout.fraction)
    elif decimals == 6:
        first, last = np.divmod(fraction, 1000)
        _take(_FRAC3_FIRST, first + 1000 * (last > 0), words, layout.fraction)
        _take(_FRAC3_LAST, last, words, layout.fraction + 4)
    return done


def _tails(point: Point, fields: tuple[str, ...]) -> list[bytes]:
    """The members after `Value` and the closing `}` for each of the 16 flag combinations."""
    table = [b""] * 16
    for field in fields[2:]:
        table = jsonfast._constant_member(table, point, field, b',"' + field.encode() + b'":')
    return [t + b"}" for t in table]


def encode_rows(point: Point, events: Events, fields: tuple[str, ...], combo: np.ndarray, first: bool) -> bytes:
    """The items of `events` of a numeric point (with `fields`, which start with Timestamp, Value) as
    JSON array text: opened with `[` when `first`, else continuing one with `,`; never closed. `combo`
    is each item's flag combination (Good 8, Questionable 4, Substituted 2, Annotated 1)."""
    n = len(events)
    decimals = DECIMALS[point.point_type]
    subsecond = bool((events.ticks % TICKS_PER_SECOND).any())
    tails = _tails(point, fields)
    tail_width = max(map(len, tails))
    layout = _Layout(subsecond, decimals, tail_width)
    rows = np.empty((n, layout.width), dtype=np.uint8)
    usual = 8  # Good, no other flag
    rows[:] = _template(layout, tails[usual])
    if first:
        rows[0, 1] = ord("[")
    unusual = np.flatnonzero(combo != usual)
    if len(unusual):
        rows[unusual, layout.tail : layout.tail + tail_width] = _tail_table([tails], tail_width)[combo[unusual]]
    done = _fill(rows, events, layout, subsecond)
    special = np.flatnonzero(~done | (events.system != 0))
    fragments = _fragments(events, special, decimals) if len(special) else []
    return _joined(rows, layout, 0, n, special.tolist(), fragments)


def encode_arrays(
    points: list[Point], events: Events, owner: np.ndarray, fields: tuple[str, ...], combo: np.ndarray
) -> list[bytes]:
    """`encode_rows` of many numeric points of one `DECIMALS` at once: the whole JSON array of each point's
    items (`[]` when it has none). `events` holds every point's items in turn, `owner` the position in
    `points` of each item's point."""
    n = len(events)
    counts = np.bincount(owner, minlength=len(points))
    if n == 0:
        return [b"[]"] * len(points)
    decimals = DECIMALS[points[0].point_type]
    subsecond = bool((events.ticks % TICKS_PER_SECOND).any())
    tails, unit = _unit_tails(points, fields)
    tail_width = max(len(t) for unit_tails in tails for t in unit_tails)
    layout = _Layout(subsecond, decimals, tail_width)
    rows = np.empty((n, layout.width), dtype=np.uint8)
    rows[:] = _template(layout, b"")
    rows[:, layout.tail : layout.tail + tail_width] = _tail_table(tails, tail_width)[unit[owner] * 16 + combo]
    ends = np.cumsum(counts)
    starts = ends - counts
    rows[starts[counts > 0], 1] = ord("[")
    done = _fill(rows, events, layout, subsecond)
    special = np.flatnonzero(~done | (events.system != 0))
    fragments = _fragments(events, special, decimals) if len(special) else []
    cuts = np.searchsorted(special, ends).tolist()  # specials of point i: cuts[i-1]..cuts[i]
    special_rows = special.tolist()
    out = []
    lo = 0
    for start, end, hi in zip(starts.tolist(), ends.tolist(), cuts):
        if start == end:
            out.append(b"[]")
        else:
            out.append(_joined(rows, layout, start, end, special_rows[lo:hi], fragments[lo:hi]) + b"]")
        lo = hi
    return out


def _unit_tails(points: list[Point], fields: tuple[str, ...]) -> tuple[list[list[bytes]], np.ndarray]:
    """`_tails` of each units string among `points` (tails differ by units only), and each point's entry."""
    by_units: dict[str, int] = {}
    tails: list[list[bytes]] = []
    unit = np.empty(len(points), dtype=np.int64)
    for i, point in enumerate(points):
        if point.units not in by_units:
            by_units[point.units] = len(tails)
            tails.append(_tails(point, fields))
        unit[i] = by_units[point.units]
    return tails, unit


def _tail_table(tails: list[list[bytes]], width: int) -> np.ndarray:
    """Rows of `width` bytes: the tail of flag combination c of point i in row 16 i + c (NUL-padded)."""
    table = np.zeros((16 * len(tails), width), dtype=np.uint8)
    for i, point_tails in enumerate(tails):
        for c, tail in enumerate(point_tails):
            table[16 * i + c, : len(tail)] = np.frombuffer(tail, dtype=np.uint8)
    return table


def _fill(rows: np.ndarray, events: Events, layout: _Layout, subsecond: bool) -> np.ndarray:
    """Timestamps and numbers into `rows`; the mask of the numbers written (`_write_numbers`)."""
    _write_timestamps(rows, events.ticks, layout, subsecond)
    return _write_numbers(rows, events.value, layout)


def _joined(rows: np.ndarray, layout: _Layout, start: int, stop: int, special: list[int], fragments: list) -> bytes:
    """The text of rows start..stop-1, each row in `special` with its value replaced by its fragment."""
    if not special:
        return _text(rows[start:stop])
    pieces: list[bytes] = []
    for row, fragment in zip(special, fragments):  # rows before, this row around its value
        pieces += (_text(rows[start:row]), _text(rows[row, : layout.sign]), fragment, _text(rows[row, layout.tail :]))
        start = row + 1
    pieces.append(_text(rows[start:stop]))
    return b"".join(pieces)


def _text(rows: np.ndarray) -> bytes:
    return rows.tobytes().translate(None, b"\x00")


def _fragments(events: Events, rows: np.ndarray, decimals: int) -> list[bytes]:
    """The `Value` JSON of events `rows`, each on its own: a system state, or a number by orjson."""
    values = events.value[rows]
    with np.errstate(invalid="ignore"):  # as jsonfast does (an Int32 NaN never comes from the model)
        column = values.astype(np.int64).tolist() if decimals == 0 else values.tolist()
    return [
        jsonfast._SYSTEM_FRAGMENTS[code] if code else orjson.dumps(v)
        for code, v in zip(events.system[rows].tolist(), column)
    ]

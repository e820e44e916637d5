"""A /batch answer of recorded values, from its bytes straight to columns: no Python object per value.

`orjson.loads` makes one dict per value, and turning those dicts into columns costs as much again. PI's
recorded layout is regular (compact JSON, `{"Timestamp":"..","Value":..,"Good":..,"Questionable":..,
"Substituted":..,"Annotated":..}` per item), so NumPy can read it at fixed byte offsets from anchors:

* items start at the literal `{"Timestamp":"`, which cannot occur inside a JSON string (a quote inside a
  string is escaped), so finding it is structurally exact;
* each item is read with a few gathers of whole records (a strided view typed `V<n>`: gathering 80 bytes
  costs about what gathering one 8-byte word does) and checked byte for byte: the stamp and the `Value`
  key after it, the value's text, and the tail from `,"Good":` to `}` against the one text its four
  flags give. Checks and conversions work eight bytes at a time (SWAR) where they can: number syntax,
  fraction digits. Timestamps are converted by digit arithmetic, only for rows whose minute differs from
  the row before (the others are equal to such a row byte for byte); plain numbers by Arrow's string ->
  float64 cast (correctly rounded, as orjson is); every other value (digital states, strings, errors,
  exotic numbers) is decoded by orjson once per distinct text, and classified by the same rule as the
  dict path (`odd_value`);
* what lies between the Items arrays (statuses, headers, units, errors) is parsed by orjson with a marker
  in place of each array, which proves the arrays sit at `<key>.Content.Items`.

Anything else (whitespace, another key order, extra item fields, timestamps not in PI's `...Z` form) makes
`scan_batch` return `orjson.loads(body)`: exactly what the client parsed before. Correctness first
(`tests/extract/test_recorded_scan*.py` compare both on real, hand-made and random bodies).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

_HEAD = b'{"Timestamp":"'
_VALUE_KEY = b'","Value":'  # the timestamp's closing quote, then the Value key
_FLAG_KEYS = (b',"Annotated":', b',"Substituted":', b',"Questionable":', b',"Good":')  # right to left
_PAD = 128  # zero bytes after the body when an item lies this close to its end (word reads stay in bounds)
_SLICE = 1 << 20
_ITEMS = 16_384
# {"Timestamp":"<20>","Value":<1>,"Good":true,"Questionable":true,"Substituted":true,"Annotated":true}
_SHORTEST_ITEM = 14 + 20 + 10 + 1 + 69
_MAX_NUMBER = 24  # longer numbers take the orjson path
_DIGITS_EXACT = 15  # integers of at most 15 digits are exact in a double whatever the parser
# the value columns of `pi_timeseries`, as `odd_value` returns them
VALUE_COLUMNS = {
    "value": pa.float64(),
    "value_string": pa.string(),
    "digital_state_name": pa.string(),
    "digital_state_code": pa.int32(),
    "digital_state_is_system": pa.bool_(),
}


class NotRecorded(Exception):
    """The body is not in the layout this scanner reads; the caller parses it with orjson."""


def odd_value(v: Any) -> tuple[Any, str | None, str | None, int | None, bool | None]:
    """(value, value_string, digital state name, code, is_system) of a `Value` that is not a plain number.

    Digital states (`{"Name","Value","IsSystem"}`) keep name and code (code also in `value`); strings go
    to `value_string`; `{"Errors":[...]}` keeps its messages there; bools count as 0/1."""
    if isinstance(v, dict):
        if "Errors" in v:
            return None, "; ".join(str(e) for e in v["Errors"]), None, None, None
        code = v.get("Value")
        return code, None, v.get("Name"), code, v.get("IsSystem")
    if isinstance(v, bool):
        return float(v), None, None, None, None
    if isinstance(v, (int, float)):
        return v, None, None, None, None
    if isinstance(v, str):
        return None, v, None, None, None
    if v is None:
        return None, None, None, None, None
    return None, orjson.dumps(v).decode(), None, None, None


@dataclass
class ScannedAnswer:
    """Columns of every item of one /batch answer, in body order."""

    body: bytes
    ts_ns: np.ndarray  # int64 ns since the epoch
    ts_start: np.ndarray  # where each timestamp's text starts in `body`
    ts_len: np.ndarray
    flags: dict[str, np.ndarray]  # Good / Questionable / Substituted / Annotated, bool
    number: np.ndarray  # float64 of plain numbers (NaN elsewhere)
    odd: np.ndarray  # int32: row of `odd_columns` for values that are not plain numbers, -1 elsewhere
    odd_columns: dict[str, pa.Array]  # VALUE_COLUMNS of each distinct odd value text


@dataclass
class ScannedItems:
    """The `Items` of one sub-response: rows [start, stop) of a ScannedAnswer. Sized and sliced like the
    list it replaces; `timestamp(i)` is PI's own text of item i."""

    answer: ScannedAnswer
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    def timestamp(self, i: int) -> str:
        row = self.start + (i if i >= 0 else len(self) + i)
        a = int(self.answer.ts_start[row])
        return self.answer.body[a : a + int(self.answer.ts_len[row])].decode("ascii")

    def ticks(self, i: int) -> int:
        """100-ns ticks of item i (exact: the scanner takes at most 7 fraction digits)."""
        row = self.start + (i if i >= 0 else len(self) + i)
        return int(self.answer.ts_ns[row]) // 100

    def head(self, count: int) -> ScannedItems:
        return ScannedItems(self.answer, self.start, self.start + max(0, min(count, len(self))))


def scan_batch(body: bytes) -> Any:
    """The 207 body as `orjson.loads` would return it, except that each recorded-values `Items` array is
    a ScannedItems. Falls back to `orjson.loads(body)` for any layout it does not prove."""
    try:
        return _scan(body)
    except NotRecorded:
        return orjson.loads(body)


def numpy_view(array: pa.Array) -> np.ndarray:
    """The values of a primitive Arrow array without nulls, as NumPy, zero-copy. Not `Array.to_numpy()`:
    pyarrow imports pandas for it (~1 CPU-s and ~60 MB once per process, i.e. per hourly run)."""
    if array.null_count:
        raise pa.ArrowInvalid("nulls have no NumPy view")  # as to_numpy(zero_copy_only=True) says
    kind = array.type.to_pandas_dtype()
    return np.frombuffer(
        array.buffers()[1], dtype=kind, count=len(array), offset=array.offset * np.dtype(kind).itemsize
    )


# --- byte access --------------------------------------------------------------------------------------------
def _records(body: bytes, width: int) -> np.ndarray:
    """The `width` bytes starting at every byte offset, as one opaque record each (a strided view, no copy):
    gathering them costs about what gathering one 8-byte word does."""
    return np.ndarray(shape=(len(body) - width + 1,), dtype=f"V{width}", buffer=body, strides=(1,))


def _require(ok: np.ndarray | bool) -> None:
    if not np.all(ok):
        raise NotRecorded


# --- the scan -------------------------------------------------------------------------------------------------
def _scan(body: bytes) -> Any:
    b = np.frombuffer(body, dtype=np.uint8)
    starts = _item_starts(b, body)
    if len(starts) == 0:
        raise NotRecorded
    ends, inner = _item_ends(body, b, starts)
    _require(ends - starts >= _SHORTEST_ITEM - 1)  # so reading right to left never leaves the item
    padded = body
    if len(body) - int(starts[-1]) < _PAD or len(body) - int(ends[-1]) < _PAD:  # reads past the end: pad
        padded = body + bytes(_PAD)
    n = len(starts)
    ts_ns, ts_len, value_start, value_end = (np.empty(n, dtype=np.int64) for _ in range(4))
    number, plain = np.empty(n), np.empty(n, dtype=bool)
    flags = {key[2:-2].decode(): np.empty(n, dtype=bool) for key in _FLAG_KEYS}
    for lo in range(0, n, _ITEMS):  # a slice of items at a time: the temporaries stay in cache
        part = slice(lo, lo + _ITEMS)
        ts_ns[part], ts_len[part] = _timestamps(padded, starts[part] + len(_HEAD))
        value_start[part] = starts[part] + (len(_HEAD) + len(_VALUE_KEY)) + ts_len[part]
        value_end[part] = _flags(body, ends[part], {name: flag[part] for name, flag in flags.items()})
        _require(value_end[part] > value_start[part])
        number[part], plain[part] = _numbers(padded, value_start[part], value_end[part])
    odd = np.full(n, -1, dtype=np.int32)
    odd_rows = np.flatnonzero(~plain)
    odd_columns = {name: pa.array([], kind) for name, kind in VALUE_COLUMNS.items()}
    if len(odd_rows):
        odd[odd_rows], odd_columns = _distinct_odd_values(b, value_start[odd_rows], (value_end - value_start)[odd_rows])
    answer = ScannedAnswer(body, ts_ns, starts + len(_HEAD), ts_len, flags, number, odd, odd_columns)
    return _skeleton(body, starts, ends, inner, answer)


def _item_starts(b: np.ndarray, body: bytes) -> np.ndarray:
    """Positions of `{"Timestamp":"`: every `{` (found a slice at a time, to keep temporaries in cache)
    whose next 13 bytes match."""
    found = [np.flatnonzero(b[lo : lo + _SLICE] == ord("{")) + lo for lo in range(0, len(b), _SLICE)]
    braces = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    braces = braces[braces <= len(b) - 16]
    words = _records(body, 16)[braces].view("<u8").reshape(len(braces), 2)
    return braces[
        (words[:, 0] == np.uint64(_HEAD_WORDS[0])) & ((words[:, 1] & np.uint64(_HEAD_MASK)) == _HEAD_WORDS[1])
    ]


_HEAD_WORDS = np.frombuffer(_HEAD + bytes(2), dtype="<u8")
_HEAD_MASK = (1 << 8 * (len(_HEAD) - 8)) - 1


def _item_ends(body: bytes, b: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each item's closing `}`, and whether the next item follows it at once (`},{`). Otherwise
    (the last item of an array) the end is the first `}]` up to which the item parses (JSON objects are
    self-delimiting: no shorter prefix of one is a complete object)."""
    following = np.append(starts[1:], len(body))
    ends = following - 2
    inner = (b[following - 1] == ord(",")) & (b[ends] == ord("}"))
    inner[-1] = False
    for i in np.flatnonzero(~inner).tolist():
        start, stop = int(starts[i]), int(following[i])
        at = body.find(b"}]", start, stop)
        while at >= 0:
            try:
                orjson.loads(body[start : at + 1])
                break
            except orjson.JSONDecodeError:
                at = body.find(b"}]", at + 1, stop)
        _require(at >= 0)
        ends[i] = at
    return ends, inner


def _timestamps(body: bytes, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`YYYY-MM-DDTHH:MM:SS[.f{1,7}]Z` at `pos` -> (ns since the epoch, text length); exact to the tick.

    One gather per row of the stamp and what follows it (from 4 bytes before the stamp, so that the fraction
    is one 8-byte word). Consecutive items mostly share their minute (`YYYY-MM-DDTHH:MM`): only the rows
    whose minute differs from the row before are read digit by digit; the others are equal byte for byte
    to such a row, so they take its value. Seconds, fraction and what follows are read eight bytes at a time."""
    record = _records(body, _STAMP)[pos - 4].view(np.uint8).reshape(len(pos), _STAMP)
    words = record.view("<u8")
    # words: 0 `p":"YYYY`, 1 `-MM-DDTH`, 2 `H:MM:SS` + mark, 3 `","Value` or the fraction, 4 `":..`, 5
    head, middle, tail, after = words[:, 0], words[:, 1], words[:, 2], words[:, 3]
    new = np.empty(len(pos), dtype=bool)
    new[:1] = True
    np.not_equal(head[1:], head[:-1], out=new[1:])
    new[1:] |= middle[1:] != middle[:-1]
    new[1:] |= ((tail[1:] ^ tail[:-1]) & np.uint64(0xFFFFFFFF)) != 0
    minute = _minutes(record[new, 4:20])[np.cumsum(new) - 1]
    colon, tens, units, mark = ((tail >> np.uint64(8 * k)) & np.uint64(0xFF) for k in (4, 5, 6, 7))
    ok = colon == np.uint64(ord(":"))
    ok &= (tens >= np.uint64(ord("0"))) & (tens <= np.uint64(ord("5")))
    ok &= (units >= np.uint64(ord("0"))) & (units <= np.uint64(ord("9")))
    whole = (mark == np.uint64(ord("Z"))) & (after == _VALUE_KEY_WORD)
    whole &= (words[:, 4] & np.uint64(0xFFFF)) == _VALUE_KEY_END
    ok &= whole | (mark == np.uint64(ord(".")))
    _require(ok)
    second = (tens * np.uint64(10) + units).astype(np.int64) - 11 * ord("0")
    ns = minute + second * 1_000_000_000
    length = np.full(len(pos), 20, dtype=np.int64)
    dot = np.flatnonzero(~whole)
    if len(dot):  # '.', 1..7 digits, 'Z', then `","Value":`
        fraction = after[dot]
        x = fraction ^ _ZEROS  # digits become 0..9
        other = (((x & _LOW7) + _NINES) | x) & _HIGHS  # high bit of each byte that is not a digit
        count = (np.bitwise_count((other & (~other + np.uint64(1))) - np.uint64(1)) // 8).astype(np.int64)
        shift = (8 * count).astype(np.uint64)  # the first byte that is not a digit: 0..7 (all digits: 7)
        _require((other != 0) & (count >= 1) & (((fraction >> shift) & np.uint64(0xFF)) == np.uint64(ord("Z"))))
        digits = x & ((np.uint64(1) << shift) - np.uint64(1))  # the fraction's digits, zeros after them
        ns[dot] += (_eight_digits(digits) * np.uint64(10)).astype(np.int64)  # as 8 digits: 10 ns units
        length[dot] = 21 + count
        rest = shift + np.uint64(8)  # bits of word 3 up to and including the `Z`
        key = (fraction >> rest) | (words[dot, 4] << (np.uint64(64) - rest))
        end = (words[dot, 4] >> rest) | (words[dot, 5] << (np.uint64(64) - rest))
        _require((key == _VALUE_KEY_WORD) & ((end & np.uint64(0xFFFF)) == _VALUE_KEY_END))
    return ns, length


def _eight_digits(v: np.ndarray) -> np.ndarray:
    """Eight digit bytes (0..9, the first in the lowest byte) -> their decimal value, SWAR."""
    v = ((v * np.uint64(10)) + (v >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    v = ((v * np.uint64(100)) + (v >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    return ((v * np.uint64(10000)) + (v >> np.uint64(32))) & np.uint64(0xFFFFFFFF)


def _minutes(t: np.ndarray) -> np.ndarray:
    """`YYYY-MM-DDTHH:MM` (rows of 16 bytes) -> ns since the epoch of that minute, every field checked."""
    t = t ^ np.uint8(0x30)  # digits become 0..9
    ok = ((t >= _TS_LOW) & (t <= _TS_HIGH)).all(axis=1)  # digits, and `-`, `T`, `:` where they belong

    def number(*cols: int) -> np.ndarray:
        out = t[:, cols[0]].astype(np.int64)
        for col in cols[1:]:
            out = out * 10 + t[:, col]
        return out

    year, month, day = number(0, 1, 2, 3), number(5, 6), number(8, 9)
    hour, minute = number(11, 12), number(14, 15)
    # int64 ns holds 1677-09-21 .. 2262-04-11: other years go the orjson way (and fail there as before)
    ok &= (year >= _FIRST_YEAR) & (year <= _LAST_YEAR) & (month >= 1) & (month <= 12)
    ok &= (hour <= 23) & (minute <= 59)
    index = np.clip((year - _FIRST_YEAR) * 12 + month - 1, 0, len(_MONTH_START) - 1)
    ok &= (day >= 1) & (day <= _MONTH_DAYS[index])
    _require(ok)
    return ((_MONTH_START[index] + day - 1) * 86_400 + hour * 3600 + minute * 60) * 1_000_000_000


_STAMP = 48  # bytes read per stamp: 4 before it, the longest (28) and the `","Value":` after it (10), to 8
_VALUE_KEY_WORD = np.uint64(int.from_bytes(_VALUE_KEY[:8], "little"))
_VALUE_KEY_END = np.uint64(int.from_bytes(_VALUE_KEY[8:], "little"))
_HIGHS = np.uint64(0x8080808080808080)
_TS_SHAPE = np.frombuffer(b"0000-00-00T00:00", dtype=np.uint8) ^ np.uint8(0x30)  # 0 where a digit goes
_TS_LOW, _TS_HIGH = _TS_SHAPE, np.where(_TS_SHAPE == 0, 9, _TS_SHAPE).astype(np.uint8)
_FIRST_YEAR, _LAST_YEAR = 1678, 2261


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray | int) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


_MONTHS = np.arange((_LAST_YEAR - _FIRST_YEAR + 1) * 12 + 1)
_MONTH_START = _days_from_civil(_FIRST_YEAR + _MONTHS // 12, _MONTHS % 12 + 1, 1)  # days since the epoch
_MONTH_DAYS = np.diff(_MONTH_START)
_MONTH_START = _MONTH_START[:-1]


def _flags(body: bytes, ends: np.ndarray, out: dict[str, np.ndarray]) -> np.ndarray:
    """The four quality flags (into `out`) and where the Value ends, from the last `_TAIL` bytes of each item
    (one gather): each flag's `true`/`false` is read right to left (its position depends on the flags after
    it), then the bytes are compared with the one tail text those four flags give, byte for byte."""
    tail = _records(body, _TAIL)[ends - (_TAIL - 1)].view(np.uint8).reshape(len(ends), _TAIL)
    flat = tail.reshape(-1)
    row = np.arange(len(ends)) * _TAIL
    variant = np.zeros(len(ends), dtype=np.int64)
    length = np.ones(len(ends), dtype=np.int64)  # of the tail so far, from its right end: `}`
    for bit, key in zip((8, 4, 2, 1), _FLAG_KEYS, strict=True):  # Annotated ... Good
        true = flat[row + (_TAIL - 1 - length - 4)] == ord(":")  # `:true` or `false`, ending before `length`
        out[key[2:-2].decode()][:] = true
        variant += bit * true
        length += 5 - true + len(key)
    words = tail.view("<u8")
    common = int(np.bincount(variant, minlength=16).argmax())  # most items share their flags: no gather
    masks, texts = _TAIL_MASKS[common], _TAIL_TEXTS[common]
    ok = (words[:, 0] & masks[0]) == texts[0]
    for k in range(1, _TAIL // 8):
        ok &= (words[:, k] & masks[k]) == texts[k]
    ok &= variant == common
    others = np.flatnonzero(variant != common)
    if len(others):
        rows = variant[others]
        ok[others] = ((words[others] & _TAIL_MASKS[rows]) == _TAIL_TEXTS[rows]).all(axis=1)
    _require(ok)
    return ends + 1 - length


def _tail_texts() -> tuple[np.ndarray, np.ndarray]:
    """Per flag combination (bit 8 Annotated .. bit 1 Good): the item's tail text right-aligned in _TAIL
    bytes, and the mask of its bytes, as 8-byte words."""
    texts, masks = [], []
    for variant in range(16):
        text = (
            b"".join(
                key + (b"true" if variant & bit else b"false")
                for bit, key in zip((1, 2, 4, 8), _FLAG_KEYS[::-1], strict=True)
            )
            + b"}"
        )
        texts.append(bytes(_TAIL - len(text)) + text)
        masks.append(bytes(_TAIL - len(text)) + b"\xff" * len(text))
    return (
        np.frombuffer(b"".join(masks), dtype="<u8").reshape(16, -1),
        np.frombuffer(b"".join(texts), dtype="<u8").reshape(16, -1),
    )


_TAIL = 80  # >= the longest tail (73 bytes: four `false`) and a multiple of 8
_TAIL_MASKS, _TAIL_TEXTS = _tail_texts()


def _numbers(body: bytes, start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float64, is_plain) of each value: plain JSON numbers through Arrow's string -> float64 cast (correctly
    rounded, as orjson); NaN and False for every other value (the orjson way, `_distinct_odd_values`)."""
    length = stop - start
    texts = _records(body, _MAX_NUMBER)[start].view(np.uint8).reshape(len(start), _MAX_NUMBER)
    first = texts[:, 0]
    plain = (((first >= ord("0")) & (first <= ord("9"))) | (first == ord("-"))) & (length <= _MAX_NUMBER)
    number = np.full(len(start), np.nan)
    rows = np.flatnonzero(plain)
    if not len(rows):
        return number, plain
    lengths = length[rows]
    width = -(-int(lengths.max()) // 8) * 8
    texts = np.ascontiguousarray(texts[rows, :width] if len(rows) < len(start) else texts[:, :width])
    valid = _plain_numbers(texts, lengths)
    if not valid.all():
        rows, lengths, texts = rows[valid], lengths[valid], texts[valid]
        plain[:] = False
        plain[rows] = True
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = pa.py_buffer(texts[_INSIDE[lengths, :width]])
    strings = pa.Array.from_buffers(pa.string(), len(rows), [None, pa.py_buffer(offsets), data])
    parsed = numpy_view(strings.cast(pa.float64()))
    negative_zero = (lengths == 2) & (texts[:, 0] == ord("-")) & (texts[:, 1] == ord("0"))  # orjson: -0 is 0
    number[rows] = np.where(negative_zero, 0.0, parsed)
    return number, plain


def _plain_numbers(texts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Which texts are `-?(0|[1-9][0-9]*)(\\.[0-9]+)?` (integers of at most 15 digits): the JSON numbers whose
    double is the same from any correct parser; the others (exponents, long integers) go to orjson.

    `texts` holds one text per row (bytes past `lengths` are ignored); bytes are classified eight at a time
    (SWAR): the high bit of each byte says "not a digit", "a dot"."""
    width = texts.shape[1]
    flat, at = texts.reshape(-1), np.arange(len(lengths)) * width
    sign = (texts[:, 0] == ord("-")).astype(np.int64)
    ok = lengths > sign
    dots = np.zeros(len(lengths), dtype=np.uint64)
    for k, word in enumerate(texts.view("<u8").T):
        inside = _HIGH_BITS[np.clip(lengths - 8 * k, 0, 8)]
        x = word ^ _ZEROS  # digits become 0..9
        other = (((x & _LOW7) + _NINES) | x) & inside  # high bit: the byte is not a digit
        dot = _zero_bytes(x ^ _DOT) & inside
        if k == 0:
            other ^= sign.astype(np.uint64) << np.uint64(7)  # the minus sign in front
        ok &= other == dot  # nothing but digits and dots (and the sign)
        dots += np.bitwise_count(dot)
    first, last = flat[at + sign], flat[at + np.maximum(lengths - 1, 0)]
    second = flat[at + np.minimum(sign + 1, width - 1)]
    ok &= (dots <= 1) & (first - np.uint8(ord("0")) <= 9) & (last - np.uint8(ord("0")) <= 9)  # digits around dots
    ok &= ~((first == ord("0")) & (lengths > sign + 1) & (second != ord(".")))  # no leading zero
    ok &= (dots == 1) | (lengths - sign <= _DIGITS_EXACT)
    return ok


def _zero_bytes(x: np.ndarray) -> np.ndarray:
    """The high bit of each byte of `x` that is zero (exact: no carries between bytes)."""
    return ~(((x & _LOW7) + _LOW7) | x | _LOW7)


_ZEROS, _NINES, _DOT = (np.uint64(0x0101010101010101 * byte) for byte in (ord("0"), 0x76, ord(".") ^ ord("0")))
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH_BITS = np.array([(1 << (8 * k)) - 1 & 0x8080808080808080 for k in range(9)], dtype=np.uint64)
_INSIDE = np.arange(_MAX_NUMBER) < np.arange(_MAX_NUMBER + 1)[:, None]  # [length, byte]: byte < length


def _distinct_odd_values(
    b: np.ndarray, start: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """Row of each value in a table of its distinct texts, decoded by orjson and split by `odd_value`."""
    offsets = np.zeros(len(start) + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    gather = np.repeat(start - offsets[:-1], length) + np.arange(offsets[-1])
    data = pa.py_buffer(b[gather].tobytes())
    texts = pa.Array.from_buffers(pa.large_binary(), len(start), [None, pa.py_buffer(offsets), data])
    encoded = texts.dictionary_encode()
    try:
        decoded = [odd_value(orjson.loads(text)) for text in encoded.dictionary.to_pylist()]
    except orjson.JSONDecodeError:
        raise NotRecorded from None
    columns = {
        name: pa.array(list(column), kind)
        for (name, kind), column in zip(VALUE_COLUMNS.items(), zip(*decoded, strict=True), strict=True)
    }
    return numpy_view(encoded.indices).astype(np.int32), columns


def _skeleton(body: bytes, starts: np.ndarray, ends: np.ndarray, inner: np.ndarray, answer: ScannedAnswer) -> Any:
    """orjson parses the body with each run of items replaced by a marker; each marker must then be the
    whole `Items` of one entry (`{"<key>":{"Status":..,"Content":{"Items":["<marker>"],..}}}`), once.
    Markers carry a random nonce, so no text the server sent can pass for one."""
    run_last = np.flatnonzero(~inner)  # the last item of each run (array)
    run_first = np.insert(run_last[:-1] + 1, 0, 0)
    nonce = secrets.token_hex(16).encode()
    pieces = [body[: int(starts[0])]]
    for run, stop in enumerate(run_last.tolist()):
        tail_end = int(starts[stop + 1]) if stop + 1 < len(starts) else len(body)
        tail = body[int(ends[stop]) + 1 : tail_end]
        _require(tail.startswith(b"]"))
        pieces += [b'"%s:%d"' % (nonce, run), tail]
    try:
        document = orjson.loads(b"".join(pieces))
    except orjson.JSONDecodeError:
        raise NotRecorded from None
    _require(isinstance(document, dict))
    prefix = nonce.decode() + ":"
    found: list[int] = []
    for entry in document.values():
        content = entry.get("Content") if isinstance(entry, dict) else None
        if not isinstance(content, dict):
            continue
        items = content.get("Items")
        if isinstance(items, list) and len(items) == 1 and isinstance(items[0], str) and items[0].startswith(prefix):
            run = int(items[0][len(prefix) :])
            content["Items"] = ScannedItems(answer, int(run_first[run]), int(run_last[run]) + 1)
            found.append(run)
    _require(sorted(found) == list(range(len(run_first))))  # every run at an entry's Items, once
    return document

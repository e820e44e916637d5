"""Recorded values of many tags per /batch request, parsed straight into Arrow (`pi_timeseries` rows).

Correctness first (see shared/reference/piwebapi.md §1.3): PI silently truncates at `maxCount`, so a tag
that returns exactly `maxCount` values is paged by time. The next page starts AT the last timestamp and the
values at that timestamp are dropped from this page and re-read (kukur's pattern): nothing lost at a page
edge, nothing duplicated, and all values sharing a timestamp stay on one page, so `value_seq` (their ordinal)
is the same however the window was paged.

7-digit precision: PI stamps to 100 ns, Delta's timestamp holds microseconds. Request parameters and page
cursors are PI's own 7-digit text (never rounded), the stored `timestamp` drops the 7th digit, and
`value_seq` numbers the values sharing a stored microsecond, so two values 100 ns apart are two rows in PI's
order. A page edge is cut at a stored microsecond, never inside one; window edges are whole microseconds. A window that is not the last one of a tag leaves the values at
its end to the next window (`include_end=False`), so adjacent windows never overlap either.

Speed: /batch answers are read by `recorded_scan` straight from their bytes into NumPy columns (no Python
object per value); a round's table is one `take` over them. Answers the scanner does not prove (and the
sequential fallback) arrive as orjson dicts, which become column lists with C-level `map`, timestamps
(7-digit fractions included) parsed by Arrow's ISO-8601 cast. Both give the same table.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from osipi_connector.extract.recorded_scan import VALUE_COLUMNS, ScannedItems, numpy_view, odd_value, scan_batch
from osipi_connector.lake.schemas import TIMESERIES, TS
from osipi_connector.piwebapi.client import PIClient, PIWebAPIError, SubRequest, SubResponse
from osipi_connector.piwebapi.pitime import format_datetime, parse_pi_timestamp_ticks

SELECTED_FIELDS = (
    "Items.Timestamp;Items.Value;Items.Good;Items.Questionable;Items.Substituted;Items.Annotated;UnitsAbbreviation"
)
_FIELDS = ("Timestamp", "Value", "Good", "Questionable", "Substituted", "Annotated")
_GETTERS = [(name, itemgetter(name)) for name in _FIELDS]
_NUMERIC = (float, int)
_NS = pa.timestamp("ns", tz="UTC")
_NS_PER_DAY = 86_400 * 1_000_000_000
_FLAGS = ("Good", "Questionable", "Substituted", "Annotated")
Items = Union[list[dict], ScannedItems]  # noqa: UP007 (a runtime alias)


@dataclass(frozen=True)
class TagWindow:
    """One tag over one time window; `include_end=False` leaves the values at `end` to the next window."""

    webid: str
    name: str | None
    start: datetime
    end: datetime
    include_end: bool = True


@dataclass
class FetchResult:
    table: pa.Table  # TIMESERIES rows, no duplicate keys
    failed: dict[str, str] = field(default_factory=dict)  # webid -> why (after the client's retries)
    rows: dict[str, int] = field(default_factory=dict)  # webid -> rows
    requests: int = 0  # HTTP requests sent for these rows (each retry and batch POST counted)


@dataclass
class _Rows:
    """Item columns of some tags: tag index and ns timestamp per row, the five value columns, the flags."""

    tag_idx: np.ndarray
    ts_ns: np.ndarray
    values: tuple[pa.Array, ...]  # value, value_string, digital_state_name, digital_state_code, .._is_system
    flags: tuple[pa.Array, ...]  # _FLAGS order


class _Columns:
    """The values parsed so far; rows of one tag are contiguous and in time order."""

    def __init__(self) -> None:
        self.tags: list[tuple[str, str | None, str]] = []  # (webid, name, units) per tag index
        self.tag_index: dict[str, int] = {}
        self.counts: list[int] = []
        self.fields: dict[str, list[Any]] = {name: [] for name in _FIELDS}  # PI's item fields, as columns
        self.timestamps = self.fields["Timestamp"]
        self.rows_tag: list[int] = []
        self.scanned: list[tuple[ScannedItems, int]] = []  # (items, tag index) in order

    def add(self, window: TagWindow, units: str, items: Items) -> None:
        if window.webid not in self.tag_index:
            self.tag_index[window.webid] = len(self.tags)
            self.tags.append((window.webid, window.name, units))
            self.counts.append(0)
        if not len(items):
            return
        index = self.tag_index[window.webid]
        self.counts[index] += len(items)
        if isinstance(items, ScannedItems):
            self.scanned.append((items, index))
            return
        for name, get in _GETTERS:
            try:
                column = list(map(get, items))
            except KeyError:  # a field left out (an error value, another server): the slower, tolerant path
                column = [item.get(name) for item in items]
            self.fields[name].extend(column)
        self.rows_tag.extend([index] * len(items))

    def _listed(self) -> _Rows:
        return _Rows(
            np.asarray(self.rows_tag, dtype=np.int32),
            _timestamps_ns(self.timestamps),
            _split_values(self.fields["Value"]),
            tuple(pa.array(self.fields[name], pa.bool_()) for name in _FLAGS),
        )

    def _rows(self) -> _Rows:
        parts = [self._listed()] if self.rows_tag or not self.scanned else []
        by_answer: dict[int, list[tuple[ScannedItems, int]]] = {}
        for items, index in self.scanned:
            by_answer.setdefault(id(items.answer), []).append((items, index))
        parts += [_scanned_rows(group) for group in by_answer.values()]
        if len(parts) == 1:
            return parts[0]
        # a round mixes answers only after a retry or a fallback: put each tag's rows back in tag order
        tag_idx = np.concatenate([p.tag_idx for p in parts])
        order = pa.array(np.argsort(tag_idx, kind="stable"))
        return _Rows(
            tag_idx[numpy_view(order)],
            np.concatenate([p.ts_ns for p in parts])[numpy_view(order)],
            tuple(pa.concat_arrays([p.values[i] for p in parts]).take(order) for i in range(5)),
            tuple(pa.concat_arrays([p.flags[i] for p in parts]).take(order) for i in range(4)),
        )

    def table(self, run_id: str, ingested_at: datetime) -> pa.Table:
        rows = self._rows()
        n = len(rows.ts_ns)
        micros = rows.ts_ns // 1000
        timestamp = pa.array(micros, pa.int64()).cast(TS)
        idx = pa.array(rows.tag_idx)
        webids, names, units = (pa.array([tag[i] for tag in self.tags], pa.string()) for i in range(3))
        value, value_string, state_name, state_code, state_system = rows.values
        columns = {
            "tag_webid": webids.take(idx),
            "tag_name": names.take(idx),
            "timestamp": timestamp,
            # numbered per stored (microsecond) timestamp: two values 100 ns apart are two keys, in PI's order
            "value_seq": pa.array(_value_seq(rows.tag_idx, micros), pa.int32()),
            "value": value,
            "value_string": value_string,
            "digital_state_name": state_name,
            "digital_state_code": state_code,
            "digital_state_is_system": state_system,
            **{name.lower(): flag for name, flag in zip(_FLAGS, rows.flags, strict=True)},
            "units": units.take(idx),
            "partition_date": pa.array((rows.ts_ns // _NS_PER_DAY).astype(np.int32), pa.date32()),  # floor: UTC day
            "ingested_at": pa.repeat(pa.scalar(ingested_at, TS), n),
            "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
        }
        return pa.Table.from_pydict(columns, schema=TIMESERIES.schema)


def _scanned_rows(parts: list[tuple[ScannedItems, int]]) -> _Rows:
    """The rows of some sub-responses of one scanned answer: one gather per column, or none when they are
    the whole answer in body order (the usual round: every tag answered, no page cut short)."""
    answer = parts[0][0].answer
    starts = np.array([items.start for items, _ in parts], dtype=np.int64)
    stops = np.array([items.stop for items, _ in parts], dtype=np.int64)
    lengths = stops - starts
    tag_idx = np.repeat(np.array([index for _, index in parts], dtype=np.int32), lengths)
    whole = starts[0] == 0 and stops[-1] == len(answer.ts_ns) and bool((starts[1:] == stops[:-1]).all())
    if whole:
        rows: slice | np.ndarray = slice(None)
    else:
        offsets = np.cumsum(lengths) - lengths
        rows = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
    odd = answer.odd[rows]
    is_odd = odd >= 0
    numbers = pa.array(answer.number[rows])
    if not is_odd.any():  # as `_split_values` for all-numeric pages
        nulls = pa.nulls(len(odd))
        values = (numbers, *(nulls.cast(kind) for kind in list(VALUE_COLUMNS.values())[1:]))
    else:
        pick = pa.array(odd, mask=~is_odd)
        taken = [answer.odd_columns[name].take(pick) for name in VALUE_COLUMNS]
        values = (pc.if_else(pa.array(is_odd), taken[0], numbers), *taken[1:])
    flags = tuple(pa.array(answer.flags[name][rows]) for name in _FLAGS)
    return _Rows(tag_idx, answer.ts_ns[rows], values, flags)


def _timestamps_ns(texts: list[str]) -> np.ndarray:
    """PI timestamps to int64 ns since the epoch; Arrow parses the 7-digit fractions, Python the rare rest."""
    strings = pa.array(texts, pa.string())
    try:
        return numpy_view(strings.cast(_NS).cast(pa.int64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return np.asarray([parse_pi_timestamp_ticks(t) * 100 for t in texts], dtype=np.int64)


def _value_seq(tag_idx: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Ordinal of each value among the values of its tag sharing its timestamp (0, 1, 2...), vectorised."""
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (ts[1:] != ts[:-1]) | (tag_idx[1:] != tag_idx[:-1])
    positions = np.arange(n)
    run_start = np.maximum.accumulate(np.where(new_run, positions, 0))
    return (positions - run_start).astype(np.int32)


def _split_values(values: list[Any]) -> tuple[pa.Array, ...]:
    """`Value` as PI sends it -> value, value_string, digital state name/code/is_system.

    Numbers go to `value` untouched; digital states (`{"Name","Value","IsSystem"}`) keep their name and
    code (code also in `value`); strings (String/Timestamp points) go to `value_string`; an `{"Errors":[]}`
    value keeps its messages in `value_string`. Only the non-numeric values are visited in Python."""
    n = len(values)
    try:  # the usual page: numbers only (None and bools convert as below too), no Python loop at all
        numbers = pa.array(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        numbers = None
    if numbers is not None:
        nulls = pa.nulls(n)
        return (
            numbers,
            nulls.cast(pa.string()),
            nulls.cast(pa.string()),
            nulls.cast(pa.int32()),
            nulls.cast(pa.bool_()),
        )
    odd = [i for i, v in enumerate(values) if type(v) not in _NUMERIC]
    numeric = list(values)
    text: list[str | None] = [None] * n
    name: list[str | None] = [None] * n
    code: list[int | None] = [None] * n
    system: list[bool | None] = [None] * n
    for i in odd:
        numeric[i], text[i], name[i], code[i], system[i] = odd_value(values[i])
    return (
        pa.array(numeric, pa.float64()),
        pa.array(text, pa.string()),
        pa.array(name, pa.string()),
        pa.array(code, pa.int32()),
        pa.array(system, pa.bool_()),
    )


def _error_text(response: SubResponse, count: int) -> str:
    content = response.content
    errors = content.get("Errors") if isinstance(content, dict) else None
    detail = "; ".join(str(e) for e in errors) if errors else str(content)[:200]
    if response.status == 400 and "maxcount" in detail.lower():  # above the server's MaxReturnedItemsPerCall
        detail += (
            f" — this run asked for maxCount={count}: lower extraction.max_count_per_tag (or "
            "performance.max_values_per_request) to at most the server's MaxReturnedItemsPerCall"
        )
    return f"HTTP {response.status}: {detail}"


def _timestamp(items: Items, i: int) -> str:
    return items.timestamp(i) if isinstance(items, ScannedItems) else items[i]["Timestamp"]


def _micros(items: Items, i: int) -> int:
    """Item i's time as stored (`pi_timeseries.timestamp`: whole microseconds, the 7th digit dropped)."""
    ticks = items.ticks(i) if isinstance(items, ScannedItems) else parse_pi_timestamp_ticks(items[i]["Timestamp"])
    return ticks // 10


def _head(items: Items, count: int) -> Items:
    return items.head(count) if isinstance(items, ScannedItems) else items[:count]


def _ends_at(items: Items, end_ticks: int) -> int:
    """How many trailing items are stamped exactly `end_ticks` (they belong to the next window)."""
    k = len(items)
    while k and parse_pi_timestamp_ticks(_timestamp(items, k - 1)) == end_ticks:
        k -= 1
    return len(items) - k


@functools.lru_cache(maxsize=16)
def _takes_decode(batch: Callable[..., object]) -> bool:
    return "decode" in inspect.signature(batch).parameters


def _batch(client: PIClient, requests: dict[str, SubRequest]) -> dict[str, SubResponse]:
    """`client.batch` with the answer scanned into columns (`recorded_scan`); a client subclass whose
    `batch` takes no `decode` (a wrapper, a test double) gets today's orjson parse, same rows."""
    if _takes_decode(type(client).batch):
        return client.batch(requests, decode=scan_batch)
    return client.batch(requests)


def page_size(max_count: int, max_values: int | None, tags: int) -> int:
    """maxCount of one sub-request: `max_count`, lowered so one /batch answer holds at most `max_values`
    values (memory), but never below 100 (progress) unless `max_count` itself is."""
    if not max_values:
        return max_count
    return min(max_count, max(max_values // max(tags, 1), 100))


def fetch_recorded(
    client: PIClient,
    windows: list[TagWindow],
    *,
    max_count: int,
    run_id: str,
    ingested_at: datetime,
    max_values: int | None = None,
) -> FetchResult:
    """All recorded values of `windows` (one sub-request per tag and page), as one TIMESERIES table.

    Each round's answer becomes Arrow before the next request, so at most one answer's Python objects are
    alive per call. A tag whose request fails for good is listed in `failed` (its rows so far are kept:
    they are correct, and re-writing them later is a no-op); the other tags are unaffected."""
    # not `schema.empty_table()`: pyarrow imports pandas for it (~1 CPU-s and ~60 MB once per process)
    result = FetchResult(table=pa.Table.from_batches([], schema=TIMESERIES.schema))
    sent_before = client.requests_sent()
    tables: list[pa.Table] = []
    # key -> (window, startTime text); the text of a continuation is PI's own timestamp (100-ns exact)
    text = functools.lru_cache(maxsize=64)(format_datetime)  # a unit's windows share a few start and end times
    pending = {str(i): (w, text(w.start)) for i, w in enumerate(windows)}
    while pending:
        count = page_size(max_count, max_values, len(pending))
        requests = {
            key: SubRequest(
                f"streams/{w.webid}/recorded",
                params={
                    "startTime": start,
                    "endTime": text(w.end),
                    "maxCount": count,
                    "selectedFields": SELECTED_FIELDS,
                },
            )
            for key, (w, start) in pending.items()
        }
        try:
            answers = _batch(client, requests)
        except PIWebAPIError as exc:
            for w, _ in pending.values():
                result.failed[w.webid] = f"batch request failed: {exc}"
            break
        finally:
            result.requests = client.requests_sent() - sent_before
        columns = _Columns()
        pending = _read_round(pending, answers, count, columns, result.failed)
        del answers
        tables.append(columns.table(run_id, ingested_at))
        for webid, i in columns.tag_index.items():
            result.rows[webid] = result.rows.get(webid, 0) + columns.counts[i]
    if tables:
        result.table = pa.concat_tables(tables)
    return result


def _read_round(
    pending: dict[str, tuple[TagWindow, str]],
    answers: dict[str, SubResponse],
    count: int,
    columns: _Columns,
    failed: dict[str, str],
) -> dict[str, tuple[TagWindow, str]]:
    """Add one round's values to `columns`; return the tags to continue (full pages) and where."""
    following: dict[str, tuple[TagWindow, str]] = {}
    for key, (w, _start) in pending.items():
        answer = answers.get(key)
        if answer is None or not answer.ok or not isinstance(answer.content, dict):
            failed[w.webid] = _error_text(answer, count) if answer is not None else "no answer in the batch"
            continue
        items = answer.content.get("Items") or []
        units = answer.content.get("UnitsAbbreviation") or ""
        if len(items) >= count:
            # the values of the last stored timestamp (its microsecond: Delta keeps no finer) go to the next
            # page, which starts at the first of them, in PI's own 7-digit text: one page holds them all
            last = _micros(items, -1)
            keep = len(items) - 1
            while keep >= 0 and _micros(items, keep) == last:
                keep -= 1
            if keep < 0:
                failed[w.webid] = (
                    f"more than {count} values at {_timestamp(items, -1)}: raise extraction.max_count_per_tag "
                    "(at most the server's MaxReturnedItemsPerCall)"
                )
                continue
            columns.add(w, units, _head(items, keep + 1))
            following[key] = (w, _timestamp(items, keep + 1))
            continue
        if not w.include_end and items:
            items = _head(items, len(items) - _ends_at(items, parse_pi_timestamp_ticks(format_datetime(w.end))))
        columns.add(w, units, items)
    return following

"""Recorded values of many tags per /batch request, parsed straight into Arrow (`pi_timeseries` rows).

Correctness first (see shared/reference/piwebapi.md §1.3): PI silently truncates at `maxCount`, so a tag
that returns exactly `maxCount` values is paged by time. The next page starts AT the last timestamp and the
values at that timestamp are dropped from this page and re-read (kukur's pattern): nothing lost at a page
edge, nothing duplicated, and all values sharing a timestamp stay on one page, so `value_seq` (their ordinal)
is the same however the window was paged. A window that is not the last one of a tag leaves the values at
its end to the next window (`include_end=False`), so adjacent windows never overlap either.

Speed: no per-value dicts are kept; each page's items become column lists with C-level `map`/`zip`, and
timestamps (7-digit fractions included) are parsed by Arrow's ISO-8601 cast, not by Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from osipi_connector.lake.schemas import TIMESERIES, TS
from osipi_connector.piwebapi.client import PIWebAPIClient, PIWebAPIError, SubRequest, SubResponse
from osipi_connector.piwebapi.pitime import format_datetime, parse_pi_timestamp_ticks

SELECTED_FIELDS = (
    "Items.Timestamp;Items.Value;Items.Good;Items.Questionable;Items.Substituted;Items.Annotated;UnitsAbbreviation"
)
_FIELDS = ("Timestamp", "Value", "Good", "Questionable", "Substituted", "Annotated")
_GETTERS = [(name, itemgetter(name)) for name in _FIELDS]
_NUMERIC = (float, int)
_NS = pa.timestamp("ns", tz="UTC")


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
    requests: int = 0


class _Columns:
    """Column lists of the values parsed so far; rows of one tag are contiguous and in time order."""

    def __init__(self) -> None:
        self.tags: list[tuple[str, str | None, str]] = []  # (webid, name, units) per tag index
        self.tag_index: dict[str, int] = {}
        self.counts: list[int] = []
        self.fields: dict[str, list[Any]] = {name: [] for name in _FIELDS}  # PI's item fields, as columns
        self.timestamps = self.fields["Timestamp"]
        self.rows_tag: list[int] = []

    def add(self, window: TagWindow, units: str, items: list[dict]) -> None:
        if window.webid not in self.tag_index:
            self.tag_index[window.webid] = len(self.tags)
            self.tags.append((window.webid, window.name, units))
            self.counts.append(0)
        if not items:
            return
        index = self.tag_index[window.webid]
        for name, get in _GETTERS:
            try:
                column = list(map(get, items))
            except KeyError:  # a field left out (an error value, another server): the slower, tolerant path
                column = [item.get(name) for item in items]
            self.fields[name].extend(column)
        self.rows_tag.extend([index] * len(items))
        self.counts[index] += len(items)

    def table(self, run_id: str, ingested_at: datetime) -> pa.Table:
        n = len(self.timestamps)
        tag_idx = np.asarray(self.rows_tag, dtype=np.int32)
        ts_ns = _timestamps_ns(self.timestamps)
        value, value_string, state_name, state_code, state_system = _split_values(self.fields["Value"])
        timestamp = pa.array(ts_ns // 1000, pa.int64()).cast(TS)
        idx = pa.array(tag_idx)
        webids, names, units = (pa.array([tag[i] for tag in self.tags], pa.string()) for i in range(3))
        columns = {
            "tag_webid": webids.take(idx),
            "tag_name": names.take(idx),
            "timestamp": timestamp,
            "value_seq": pa.array(_value_seq(tag_idx, ts_ns), pa.int32()),
            "value": value,
            "value_string": value_string,
            "digital_state_name": state_name,
            "digital_state_code": state_code,
            "digital_state_is_system": state_system,
            "good": pa.array(self.fields["Good"], pa.bool_()),
            "questionable": pa.array(self.fields["Questionable"], pa.bool_()),
            "substituted": pa.array(self.fields["Substituted"], pa.bool_()),
            "annotated": pa.array(self.fields["Annotated"], pa.bool_()),
            "units": units.take(idx),
            "partition_date": timestamp.cast(pa.date32()),
            "ingested_at": pa.repeat(pa.scalar(ingested_at, TS), n),
            "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
        }
        return pa.Table.from_pydict(columns, schema=TIMESERIES.schema)


def _timestamps_ns(texts: list[str]) -> np.ndarray:
    """PI timestamps to int64 ns since the epoch; Arrow parses the 7-digit fractions, Python the rare rest."""
    strings = pa.array(texts, pa.string())
    try:
        return strings.cast(_NS).cast(pa.int64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return np.asarray([parse_pi_timestamp_ticks(t) * 100 for t in texts], dtype=np.int64)


def _value_seq(tag_idx: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
    """Ordinal of each value among the values of its tag sharing its timestamp (0, 1, 2...), vectorised."""
    n = len(ts_ns)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (ts_ns[1:] != ts_ns[:-1]) | (tag_idx[1:] != tag_idx[:-1])
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
        v = values[i]
        numeric[i] = None
        if isinstance(v, dict):
            if "Errors" in v:
                text[i] = "; ".join(str(e) for e in v["Errors"])
                continue
            name[i], code[i], system[i] = v.get("Name"), v.get("Value"), v.get("IsSystem")
            numeric[i] = code[i]
        elif isinstance(v, bool):
            numeric[i] = float(v)
        elif isinstance(v, str):
            text[i] = v
        elif v is not None:
            text[i] = orjson.dumps(v).decode()
    return (
        pa.array(numeric, pa.float64()),
        pa.array(text, pa.string()),
        pa.array(name, pa.string()),
        pa.array(code, pa.int32()),
        pa.array(system, pa.bool_()),
    )


def _error_text(response: SubResponse) -> str:
    content = response.content
    errors = content.get("Errors") if isinstance(content, dict) else None
    detail = "; ".join(str(e) for e in errors) if errors else str(content)[:200]
    return f"HTTP {response.status}: {detail}"


def _ends_at(items: list[dict], end_ticks: int) -> int:
    """How many trailing items are stamped exactly `end_ticks` (they belong to the next window)."""
    k = len(items)
    while k and parse_pi_timestamp_ticks(items[k - 1]["Timestamp"]) == end_ticks:
        k -= 1
    return len(items) - k


def page_size(max_count: int, max_values: int | None, tags: int) -> int:
    """maxCount of one sub-request: `max_count`, lowered so one /batch answer holds at most `max_values`
    values (memory), but never below 100 (progress) unless `max_count` itself is."""
    if not max_values:
        return max_count
    return min(max_count, max(max_values // max(tags, 1), 100))


def fetch_recorded(
    client: PIWebAPIClient,
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
    result = FetchResult(table=TIMESERIES.schema.empty_table())
    tables: list[pa.Table] = []
    # key -> (window, startTime text); the text of a continuation is PI's own timestamp (100-ns exact)
    pending = {str(i): (w, format_datetime(w.start)) for i, w in enumerate(windows)}
    while pending:
        count = page_size(max_count, max_values, len(pending))
        requests = {
            key: SubRequest(
                f"streams/{w.webid}/recorded",
                params={
                    "startTime": start,
                    "endTime": format_datetime(w.end),
                    "maxCount": count,
                    "selectedFields": SELECTED_FIELDS,
                },
            )
            for key, (w, start) in pending.items()
        }
        result.requests += 1
        try:
            answers = client.batch(requests)
        except PIWebAPIError as exc:
            for w, _ in pending.values():
                result.failed[w.webid] = f"batch request failed: {exc}"
            break
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
            failed[w.webid] = _error_text(answer) if answer is not None else "no answer in the batch"
            continue
        items = answer.content.get("Items") or []
        units = answer.content.get("UnitsAbbreviation") or ""
        if len(items) >= count:
            last = items[-1]["Timestamp"]
            keep = len(items) - 1
            while keep >= 0 and items[keep]["Timestamp"] == last:
                keep -= 1
            if keep < 0:
                failed[w.webid] = (
                    f"more than {count} values at {last}: raise extraction.max_count_per_tag "
                    "(at most the server's MaxReturnedItemsPerCall)"
                )
                continue
            columns.add(w, units, items[: keep + 1])
            following[key] = (w, last)
            continue
        if not w.include_end and items:
            items = items[: len(items) - _ends_at(items, parse_pi_timestamp_ticks(format_datetime(w.end)))]
        columns.add(w, units, items)
    return following

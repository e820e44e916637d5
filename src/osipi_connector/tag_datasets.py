"""The run steps of the per-tag datasets besides recorded values: `interpolated` and `summary` (computed by PI
per time window, incremental by watermark like `timeseries`), `current_value` and `point_attributes`
(snapshots). The extractors live in `extract/`; this module is the order of writes around them. Their
requests go through the run's client on this thread, which counts them for `pi_run_metrics.requests`.

The same rule as for recorded values: rows are MERGEd first and a tag's watermark (dataset `interpolated` /
`summary`) is written after, so a run that dies in between leaves the watermark behind and the next run
re-reads a window whose MERGE changes nothing. Windows are aligned to the grid (the interval, the summary
duration) before they are asked for and before the watermark moves, so runs never disagree on grid points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from osipi_connector import watermarks
from osipi_connector.extract.timeseries import FetchResult
from osipi_connector.lake.schemas import CURRENT_VALUE, INTERPOLATED, POINT_ATTRIBUTES, SUMMARY, WATERMARKS, TableSpec
from osipi_connector.piwebapi.client import PIClient
from osipi_connector.piwebapi.pitime import UTC
from osipi_connector.plan import Tag

if TYPE_CHECKING:
    from osipi_connector.runner import _Run

Window = tuple[Tag, datetime, datetime]
Align = Callable[[datetime, datetime], "tuple[datetime, datetime] | None"]
Fetch = Callable[[list[Window]], FetchResult]


def interpolated(run: _Run, client: PIClient) -> None:
    from osipi_connector.extract.interpolated import fetch_interpolated, grid_window

    ext = run.config.extraction
    interval = ext.interpolated.interval

    def fetch(windows: list[Window]) -> FetchResult:
        return fetch_interpolated(
            client,
            windows,
            interval=interval,
            max_points=ext.max_count_per_tag,
            run_id=run.run_id,
            ingested_at=run.ingested_at,
        )

    _windowed(run, "interpolated", INTERPOLATED, lambda a, b: grid_window(a, b, interval), fetch)


def summary(run: _Run, client: PIClient) -> None:
    from osipi_connector.extract.summaries import fetch_summaries, interval_window

    ext = run.config.extraction
    settings = ext.summary

    def fetch(windows: list[Window]) -> FetchResult:
        return fetch_summaries(
            client,
            windows,
            duration=settings.duration,
            types=settings.types,
            calculation_basis=settings.calculation_basis,
            max_values=ext.max_count_per_tag,
            point_types=run.point_types,
            run_id=run.run_id,
            ingested_at=run.ingested_at,
        )

    _windowed(run, "summary", SUMMARY, lambda a, b: interval_window(a, b, settings.duration), fetch)


def current_value(run: _Run, client: PIClient) -> None:
    from osipi_connector.extract.current_values import fetch_current_values

    _snapshot(run, "current_value", CURRENT_VALUE, lambda tags: fetch_current_values(client, tags, **_lineage(run)))


def point_attributes(run: _Run, client: PIClient) -> None:
    from osipi_connector.extract.point_attributes import fetch_point_attributes

    _snapshot(
        run, "point_attributes", POINT_ATTRIBUTES, lambda tags: fetch_point_attributes(client, tags, **_lineage(run))
    )


# --- the two shapes -----------------------------------------------------------------------------------------
def _lineage(run: _Run) -> dict:
    return {"run_id": run.run_id, "ingested_at": run.ingested_at}


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _snapshot(run: _Run, dataset: str, spec: TableSpec, fetch: Callable[[list[Tag]], FetchResult]) -> None:
    """`batch_size` tags per fetch, one MERGE every `commit_rows` rows and at the end; no watermark (a
    snapshot has no window)."""
    tags = sorted(run.tags, key=lambda t: t.webid)
    groups = list(_chunks(tags, run.config.extraction.batch_size))
    buffer = _Buffer(run, spec)
    failed: dict[str, str] = {}
    run.connector._report(dataset, 0, len(groups))
    for done, group in enumerate(groups, 1):
        result = fetch(group)
        failed.update(result.failed)
        buffer.add(result.table)
        run.connector._report(dataset, done, len(groups), buffer.rows)
    buffer.flush()
    _errors(run, dataset, failed)


class _Buffer:
    """Rows waiting for their MERGE: one commit per `performance.commit_rows` rows, not one per request."""

    def __init__(self, run: _Run, spec: TableSpec, **hints: object) -> None:
        self.run, self.spec, self.hints = run, spec, hints
        self.tables: list[pa.Table] = []
        self.buffered = 0
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self.tables.append(table)
            self.buffered += table.num_rows
            self.rows += table.num_rows
        if self.buffered >= self.run.config.performance.commit_rows:
            self.flush()

    def flush(self) -> None:
        if self.tables:
            self.run._merge(self.spec, pa.concat_tables(self.tables), **self.hints)
            self.tables, self.buffered = [], 0


def _windowed(run: _Run, dataset: str, spec: TableSpec, align: Align, fetch: Fetch) -> None:
    """Each tag's watermark window, aligned; `batch_size` tags per fetch; MERGE every `commit_rows` rows and
    at the end; then the watermarks of the tags whose every request succeeded (failed ones keep theirs)."""
    ext = run.config.extraction
    marks = watermarks.load(run.sink, dataset)
    if watermarks.past(marks, run.now) and spec.time_column:  # safe point: each tag's latest row in the table
        marks = run._repair(marks, run.sink.latest(spec, spec.time_column, "tag_webid"), dataset)
    wins = watermarks.windows(run.mode, run.tags, marks, start=run.start, end=run.end, lookback=ext.lookback)
    aligned = [(tag, *span) for tag, a, b in wins if (span := align(a, b)) is not None]
    aligned.sort(key=lambda w: w[0].webid)
    groups = list(_chunks(aligned, ext.batch_size))
    buffer = _Buffer(run, spec, reread_from=run.end - ext.lookback)
    failed: dict[str, str] = {}
    counts: dict[str, int] = {}
    run.connector._report(dataset, 0, len(groups))
    for done, group in enumerate(groups, 1):
        result = fetch(group)
        failed.update(result.failed)
        for webid, n in result.rows.items():
            counts[webid] = counts.get(webid, 0) + n
        buffer.add(result.table)
        run.connector._report(dataset, done, len(groups), buffer.rows)
    buffer.flush()
    updates = []
    for tag, start, end in aligned:
        mark = marks.get(tag.webid)
        update: dict[str, object] = {"item_id": tag.webid, "item_name": tag.name, "rows": counts.get(tag.webid, 0)}
        if tag.webid in failed:
            low, high = (mark.low, mark.high) if mark else (None, None)
            update |= {"low": low, "high": high, "status": "failed", "error": failed[tag.webid][:1000]}
        else:
            low, high = watermarks.advanced(run.mode, mark, start, end, run.now)
            update |= {"low": low, "high": high, "status": "ok"}
        updates.append(update)
    if updates:
        stamp = datetime.now(UTC)
        run.sink.merge(WATERMARKS, watermarks.rows(updates, run_id=run.run_id, updated_at=stamp, dataset=dataset))
    _errors(run, dataset, failed)


def _errors(run: _Run, dataset: str, failed: dict[str, str]) -> None:
    """One error line per failed tag, like the timeseries dataset's: the run ends `partial`."""
    names = {tag.webid: tag.name for tag in run.tags}
    run.result.errors.extend(f"{dataset} {names.get(w) or w} ({w}): {e}" for w, e in sorted(failed.items()))

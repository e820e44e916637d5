"""One connector run: tags, AF, timeseries, event frames, then watermarks and a run-metrics row.

The order of writes is the correctness argument: data is MERGEd first, watermarks after, so a run that dies
anywhere leaves watermarks that are behind the data, never ahead of it; the next run re-reads and the MERGE
keys make the re-read a no-op. A tag or dataset that fails is reported (run metrics `errors`, watermark
`last_status=failed`) and left for the next run while everything else commits: status `partial`.

Watermarks never pass the server's clock; one found past it (an older version, a job clock ahead of PI) is
moved back to the data committed, logged and counted (`watermarks_repaired`). A run's metrics row is written
`running` when it starts and completed when it ends, so a run that dies leaves a trace: the next run of the
same mode and datasets marks it `died` and says so.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from osipi_connector import af_datasets, tag_datasets, watermarks
from osipi_connector.committer import Committer
from osipi_connector.config import (
    AF_CATALOG_DATASETS,
    DATASETS,
    OPTIONAL_DATASETS,
    TAG_DATASETS,
    ConfigError,
    ConnectorConfig,
    resolve_time,
)
from osipi_connector.executor import Fetched, FetchJob
from osipi_connector.extract.change_feed import ChangeFeed
from osipi_connector.extract.clock import server_now
from osipi_connector.extract.timeseries import FetchResult
from osipi_connector.lake.conflict_retry import ConflictRetry, Retry
from osipi_connector.lake.schemas import (
    ASSET_HIERARCHY,
    ELEMENT_ATTRIBUTES,
    EVENT_FRAMES,
    RUN_METRICS,
    TAGS,
    TIMESERIES,
    WATERMARKS,
    TableSpec,
)
from osipi_connector.lake.sink import Location, Sink
from osipi_connector.piwebapi.client import PIClient
from osipi_connector.piwebapi.pitime import UTC
from osipi_connector.plan import CommitGrid, Plan, Tag

log = logging.getLogger(__name__)
EVENT_FRAMES_DATASET = "event_frames"
NEEDS_AF_DATABASE = (
    "extraction.af_database: needed for the af, event_frames and AF catalogue (templates, categories, ...) datasets"
    " — set it"
)


@dataclass(frozen=True)
class Progress:
    """Passed to the `progress` callback: `stage` is a dataset; `done`/`total` count its steps (work units
    for timeseries); `rows` are the rows fetched so far in this stage."""

    stage: str
    done: int
    total: int
    rows: int = 0


ProgressCallback = Callable[[Progress], None]


@dataclass
class RunResult:
    run_id: str
    mode: str
    status: str  # success | partial | failed
    rows: dict[str, int] = field(default_factory=dict)  # table name -> rows written
    errors: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0
    window_start: datetime | None = None
    window_end: datetime | None = None
    tags_requested: int = 0
    tags_failed: int = 0
    retries: list[Retry] = field(default_factory=list)  # commits re-run after a concurrent writer won the race
    watermarks_repaired: int = 0  # watermarks found past the server's clock and moved back (see watermarks.past)
    died: list[str] = field(default_factory=list)  # earlier runs of the same kind that never finished
    change_feed_fallbacks: int = 0  # tags whose Stream Updates marker had expired (extract/change_feed.py)

    @property
    def conflict_retries(self) -> int:
        return len(self.retries)

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0 success, 1 partial, 2 failed."""
        return {"success": 0, "partial": 1}.get(self.status, 2)


def default_sink(config: ConnectorConfig) -> Sink:
    """On Databricks (DATABRICKS_RUNTIME_VERSION set): Unity Catalog tables through the active SparkSession;
    elsewhere: delta-rs tables under `local.lakehouse_root`. Both implement the same Sink interface."""
    from osipi_connector.secrets import on_databricks

    uc = config.unity_catalog
    location = Location(uc.catalog, uc.schema_, uc.checkpoint_schema)
    if on_databricks():
        from pyspark.sql import SparkSession

        from osipi_connector.lake.spark_sink import SparkSink

        return SparkSink(SparkSession.builder.getOrCreate(), location)
    from osipi_connector.lake.delta_sink import DeltaSink

    return DeltaSink(config.local.lakehouse_root, location)


class PILakeflowConnector:
    """PI Web API -> Delta. `config` is a ConnectorConfig, a nested dict (the YAML's shape) or the guide's
    flat dict; `sink` and `client` default to the configured ones."""

    def __init__(
        self,
        config: dict | ConnectorConfig,
        sink: Sink | None = None,
        client: PIClient | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.config = config if isinstance(config, ConnectorConfig) else ConnectorConfig.from_flat(config)
        self.sink = sink if sink is not None else default_sink(self.config)
        self.client = client
        self.progress = progress

    # --- public ---------------------------------------------------------------------------------------
    def run(
        self,
        mode: str | None = None,
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        datasets: Iterable[str] | None = None,
    ) -> RunResult:
        chosen = self._datasets(datasets)
        mode = mode or self.config.extraction.mode
        if mode not in ("incremental", "full", "backfill"):
            raise ConfigError(f"mode: {mode!r} is not incremental, full or backfill")
        run = _Run(self, mode, chosen)
        client = self.client if self.client is not None else self._make_client()
        try:
            run.execute(client, start, end)
        finally:
            if self.client is None:  # ours: made for this run
                client.close()
        return run.result

    # --- helpers --------------------------------------------------------------------------------------
    def _datasets(self, datasets: Iterable[str] | None) -> list[str]:
        ext = self.config.extraction
        if datasets is None:
            wanted = {"tags", "timeseries"}
            if ext.af_database and ext.include_af:
                wanted.add("af")
            if ext.af_database and ext.include_event_frames:
                wanted.add("event_frames")
            wanted |= {d for d in OPTIONAL_DATASETS if getattr(ext, f"include_{d}")}
            if wanted & set(AF_CATALOG_DATASETS) and not ext.af_database:
                raise ConfigError(NEEDS_AF_DATABASE)
        else:
            wanted = set(datasets)
            unknown = wanted - set(DATASETS)
            if unknown:
                raise ConfigError(f"datasets: unknown {sorted(unknown)} — choose from {', '.join(DATASETS)}")
            if wanted & {"af", "event_frames", *AF_CATALOG_DATASETS} and not ext.af_database:
                raise ConfigError(NEEDS_AF_DATABASE)
        return [d for d in DATASETS if d in wanted]

    def _make_client(self) -> PIClient:
        from osipi_connector.piwebapi.client import PIWebAPIClient
        from osipi_connector.secrets import resolve_credentials

        return PIWebAPIClient(self.config.client_settings(), resolve_credentials(self.config))

    def _report(self, stage: str, done: int, total: int, rows: int = 0) -> None:
        if self.progress is not None:
            self.progress(Progress(stage, done, total, rows))


class _Run:
    """The state of one run; `execute` fills `result`."""

    def __init__(self, connector: PILakeflowConnector, mode: str, datasets: list[str]) -> None:
        self.connector = connector
        self.config = connector.config
        # Every write re-runs when a concurrent writer (the other hourly task, a backfill, OPTIMIZE) won the
        # commit; the retries are counted in the result and the run-metrics row.
        self.sink = ConflictRetry(connector.sink)
        self.mode = mode
        self.datasets = datasets
        self.run_id = uuid.uuid4().hex
        self.started = datetime.now(UTC)
        self.ingested_at = self.started
        self.result = RunResult(self.run_id, mode, "failed")
        self.requests = 0  # HTTP requests sent by clients of their own (Spark executors); the run's client: sent_before
        self.client: PIClient | None = None
        self.sent_before = 0
        self.now: datetime = self.started  # the server's clock once `execute` asked it
        self.tags: list[Tag] = []
        self.point_types: dict[str, str | None] = {}  # tag WebID -> PI point type (summaries ask by type)
        self.tags_ok = 0
        self._count_lock = threading.Lock()

    def execute(self, client: PIClient, start: str | datetime | None, end: str | datetime | None) -> None:
        clock = time.monotonic()
        ext = self.config.extraction
        self.client, self.sent_before = client, client.requests_sent()
        try:
            self._begin()
            now = server_now(client) if ext.clock == "server" else _now()
            self.now = now
            self.end = resolve_time(end if end is not None else (ext.end_date or now), now)
            self.start = resolve_time(start if start is not None else ext.start_date, now)
            if self.start >= self.end:
                raise ConfigError(
                    f"extraction.start_date: {self.start} is not before the end {self.end} — fix the window"
                )
            self.result.window_start, self.result.window_end = self.start, self.end
            steps = {
                "tags": self._tags,
                "af": self._af,
                "timeseries": self._timeseries,
                "event_frames": self._frames,
                "interpolated": lambda c: tag_datasets.interpolated(self, c),
                "summary": lambda c: tag_datasets.summary(self, c),
                "current_value": lambda c: tag_datasets.current_value(self, c),
                "point_attributes": lambda c: tag_datasets.point_attributes(self, c),
                **{name: af_datasets.step(self, name) for name in AF_CATALOG_DATASETS},
            }
            if set(self.datasets) & set(TAG_DATASETS) and "tags" not in self.datasets:
                self._select_tags(client, write=False)
            for name in self.datasets:
                try:
                    steps[name](client)
                except ConfigError:
                    raise
                except Exception as exc:  # one dataset failing must not stop the others
                    log.exception("dataset %s failed", name)
                    self.result.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        except Exception as exc:
            self.result.errors.append(f"run: {type(exc).__name__}: {exc}")
            self._finish(clock, failed=True)
            raise
        self._finish(clock)

    # --- datasets -------------------------------------------------------------------------------------
    def _select_tags(self, client: PIClient, write: bool) -> None:
        from osipi_connector.extract.points import PointsNotFoundError, resolve_points

        ext = self.config.extraction
        try:
            table = resolve_points(
                client,
                data_server=ext.data_server,
                webids=ext.tags,
                names=ext.tag_names,
                name_filter=ext.name_filter,
                run_id=self.run_id,
                ingested_at=self.ingested_at,
            )
        except PointsNotFoundError as exc:
            self.result.errors.append(f"tags: {exc}")
            self.result.tags_failed += len(exc.missing)
            self.result.tags_requested += len(exc.missing)
            table = exc.table
        self.tags = [
            Tag(w, n) for w, n in zip(table["tag_webid"].to_pylist(), table["tag_name"].to_pylist(), strict=True)
        ]
        self.point_types = dict(zip(table["tag_webid"].to_pylist(), table["point_type"].to_pylist(), strict=True))
        self.result.tags_requested += len(self.tags)
        if write:
            self._merge(TAGS, table)

    def _tags(self, client: PIClient) -> None:
        self.connector._report("tags", 0, 1)
        self._select_tags(client, write=True)
        self.connector._report("tags", 1, 1, len(self.tags))

    def _af_database(self) -> str:
        """The AF database of the af / event_frames datasets (`PILakeflowConnector._datasets` checked it is set)."""
        if not self.config.extraction.af_database:
            raise ConfigError(NEEDS_AF_DATABASE)
        return self.config.extraction.af_database

    def _af(self, client: PIClient) -> None:
        from osipi_connector.extract.af import fetch_af

        self.connector._report("af", 0, 1)
        hierarchy, attributes = fetch_af(
            client, af_database=self._af_database(), run_id=self.run_id, ingested_at=self.ingested_at
        )
        self._merge(ASSET_HIERARCHY, hierarchy)
        self._merge(ELEMENT_ATTRIBUTES, attributes)
        self.connector._report("af", 1, 1, hierarchy.num_rows + attributes.num_rows)

    def _frames(self, client: PIClient) -> None:
        from osipi_connector.extract.af import find_database
        from osipi_connector.extract.event_frames import PENDING_COLUMNS, fetch_event_frames

        ext = self.config.extraction
        database = self._af_database()
        marks = watermarks.load(self.sink, EVENT_FRAMES_DATASET)
        if watermarks.past(marks, self.now):  # safe point: the latest frame start stored for this database
            webid = find_database(client, database)["WebId"]
            latest = self.sink.latest(EVENT_FRAMES, "start_time", "af_database_webid")
            marks = self._repair(marks, {database: latest[webid]} if webid in latest else {}, EVENT_FRAMES_DATASET)
        mark = marks.get(database)
        wins = watermarks.windows(
            self.mode,
            [Tag(database)],
            {database: mark} if mark else {},
            start=self.start,
            end=self.end,
            lookback=ext.lookback,
        )
        self.connector._report("event_frames", 0, 1)
        if not wins:
            return
        _, start, end = wins[0]
        table = fetch_event_frames(
            client,
            af_database=database,
            start=start,
            end=end,
            run_id=self.run_id,
            ingested_at=self.ingested_at,
            stored=self.sink.read(EVENT_FRAMES, columns=PENDING_COLUMNS),
            recheck_after=self.now - ext.event_frame_recheck,
        )
        self._merge(EVENT_FRAMES, table)
        low, high = watermarks.advanced(self.mode, mark, start, end, self.now)
        update = {"item_id": database, "low": low, "high": high, "status": "ok", "rows": table.num_rows}
        self.sink.merge(
            WATERMARKS, watermarks.rows([update], run_id=self.run_id, updated_at=_now(), dataset=EVENT_FRAMES_DATASET)
        )
        self.connector._report("event_frames", 1, 1, table.num_rows)

    def _timeseries(self, client: PIClient) -> None:
        ext, perf = self.config.extraction, self.config.performance
        feed = ChangeFeed.start(self, client) if ext.change_feed and self.mode == "incremental" else None
        marks = watermarks.load(self.sink)
        if watermarks.past(marks, self.now):  # safe point: each tag's latest value in the table
            marks = self._repair(marks, self.sink.latest(TIMESERIES, "timestamp", "tag_webid"))
        wins = watermarks.windows(self.mode, self.tags, marks, start=self.start, end=self.end, lookback=ext.lookback)
        plan = Plan.build(self.tags, wins, batch_size=ext.batch_size, max_window=perf.max_window)
        units = plan.units
        remaining = Counter(webid for unit in units for webid in unit.webids)
        spans = plan.spans()
        state = _TimeseriesState(self, marks, spans)
        job = FetchJob(ext.max_count_per_tag, perf.max_values_per_request, self.run_id, self.ingested_at)
        executor = self.sink.executor(self.config)  # the thread pool, or Spark's executors: chosen with the sink

        grid = CommitGrid(units, perf.commit_rows)  # the same commit boundaries every run: see plan.py
        self.connector._report("timeseries", 0, len(units))
        with state.committer:  # commits on a thread of their own (committer.py)
            self._fetch_and_commit(executor.fetch(units, job, client), len(units), state, grid, remaining)
        self.tags_ok = len(spans) - len(state.failed)
        self.result.tags_failed += len(state.failed)
        self.result.errors.extend(f"timeseries {state.label(w)}: {e}" for w, e in sorted(state.failed.items()))
        if feed is not None:  # after the windowed read: see extract/change_feed.py for the order of writes
            feed.finish(client)

    def _fetch_and_commit(
        self, fetches: Iterable[Fetched], total: int, state: _TimeseriesState, grid: CommitGrid, remaining: Counter
    ) -> None:
        """Buffer the fetched units' rows and hand them over a commit at a time (on the grid, one slot each)."""
        done = 0
        for fetched in fetches:
            if fetched.slot != state.slot:  # one time slot per commit: tight file statistics, see plan.py
                state.flush()
                state.slot = fetched.slot
            elif fetched.units and grid.starts_commit(fetched.units[0]):
                state.flush()
            state.add(fetched.result)
            grid.observe(len(fetched.units), fetched.result.table.num_rows)
            if fetched.committed:  # MERGEd by the executor itself (Spark): count it like a commit of ours
                self._count(TIMESERIES, fetched.committed)
                state.rows_total += fetched.committed
            for unit in fetched.units:
                for webid in unit.webids:
                    remaining[webid] -= 1
                    if remaining[webid] == 0:
                        state.finished.append(webid)
            if grid.must_commit(state.buffered):
                state.flush()
            done += len(fetched.units)
            self.connector._report("timeseries", done, total, state.rows_total)
        state.flush()

    def _repair(
        self,
        marks: dict[str, watermarks.Watermark],
        latest: dict[str, datetime],
        dataset: str = watermarks.TIMESERIES_DATASET,
    ) -> dict[str, watermarks.Watermark]:
        """Watermarks past the server's clock moved back to the data committed, written at once (REPAIR spec:
        the one write that may lower a high watermark), logged and counted in the run-metrics row."""
        items = watermarks.past(marks, self.now)
        fixed = watermarks.repaired(marks, items, latest, self.start, self.now)
        example = marks[items[0]]
        log.warning(
            "%d %s watermark(s) are past the PI server's time %s (e.g. %s at %s): written by an older version or "
            "with a job clock ahead of PI. Moved back to the data committed; this run re-reads from there.",
            len(items),
            dataset,
            self.now.isoformat(),
            example.item_name or example.item_id,
            example.high.isoformat() if example.high else None,
        )
        updates = [
            {"item_id": m.item_id, "item_name": m.item_name, "low": m.low, "high": m.high}
            | {"status": m.last_status or "ok", "error": m.last_error}
            for m in fixed.values()
        ]
        self.sink.merge(
            watermarks.REPAIR, watermarks.rows(updates, run_id=self.run_id, updated_at=_now(), dataset=dataset)
        )
        self.result.watermarks_repaired += len(items)
        return {**marks, **fixed}

    # --- writing --------------------------------------------------------------------------------------
    def _merge(self, spec: TableSpec, table: pa.Table, **hints: Any) -> None:
        self.sink.merge(spec, table, **hints)
        self._count(spec, table.num_rows)

    def _count(self, spec: TableSpec, rows: int) -> None:
        with self._count_lock:  # the commit thread and the main thread (Spark's own commits) both count
            self.result.rows[spec.name] = self.result.rows.get(spec.name, 0) + rows

    def _begin(self) -> None:
        """Mark the runs of the same mode and datasets that never finished as `died` (they stopped before their
        final row: killed, out of memory, cluster lost) and say so; then write this run's `running` row."""
        lane = sorted(self.datasets)
        self.sink.ensure(RUN_METRICS)  # a table of an older version: the error names `upgrade-tables`
        stale = [
            row
            for row in self.sink.read(RUN_METRICS).to_pylist()
            if row["status"] == "running" and row["mode"] == self.mode and sorted(row["datasets"] or []) == lane
        ]
        for row in stale:
            message = (
                f"run {row['run_id']} ({self.mode} {','.join(lane)}, started {row['started_at']:%Y-%m-%d %H:%M:%S} "
                "UTC) died: it stopped (killed, out of memory, cluster lost) before writing its outcome. What it "
                "committed stays; this run re-reads from the watermarks it left"
            )
            log.warning(message)
            self.result.died.append(message)
            row |= {"status": "died", "errors": [*(row["errors"] or []), f"died (found by run {self.run_id})"]}
        if stale:
            self.sink.merge(RUN_METRICS, pa.Table.from_pylist(stale, schema=RUN_METRICS.schema))
        # a blind append: the parallel hourly tasks start together, and appends never conflict in Delta
        running = self._metrics_row("running", finished=False)
        self.sink.append(RUN_METRICS, pa.Table.from_pylist([running], schema=RUN_METRICS.schema))

    def _metrics_row(self, status: str, finished: bool = True) -> dict[str, Any]:
        result = self.result
        requests = self.requests
        if self.client is not None:
            requests += self.client.requests_sent() - self.sent_before
        return {
            "run_id": self.run_id,
            "mode": self.mode,
            "engine": getattr(self.sink, "engine", None),
            "started_at": self.started,
            "finished_at": _now() if finished else None,
            "duration_seconds": result.duration_seconds if finished else None,
            "window_start": result.window_start,
            "window_end": result.window_end,
            "tags_requested": result.tags_requested,
            "tags_succeeded": result.tags_requested - result.tags_failed,
            "tags_failed": result.tags_failed,
            "rows_timeseries": result.rows.get(TIMESERIES.name, 0),
            "rows_tags": result.rows.get(TAGS.name, 0),
            "rows_asset_hierarchy": result.rows.get(ASSET_HIERARCHY.name, 0),
            "rows_element_attributes": result.rows.get(ELEMENT_ATTRIBUTES.name, 0),
            "rows_event_frames": result.rows.get(EVENT_FRAMES.name, 0),
            "requests": requests,
            "status": status,
            "errors": result.errors,
            "conflict_retries": len(self.sink.retries),
            "datasets": self.datasets,
            "watermarks_repaired": result.watermarks_repaired,
            "change_feed_fallbacks": result.change_feed_fallbacks,
        }

    def _finish(self, clock: float, failed: bool = False) -> None:
        result = self.result
        result.duration_seconds = time.monotonic() - clock
        if failed:
            result.status = "failed"
        elif not result.errors:
            result.status = "success"
        else:
            wrote = any(result.rows.values()) or self.tags_ok > 0
            result.status = "partial" if wrote else "failed"
        row = self._metrics_row(result.status)
        try:  # completes the `running` row of `_begin` (a MERGE on run_id: one row per run)
            self.sink.merge(RUN_METRICS, pa.Table.from_pylist([row], schema=RUN_METRICS.schema))
        except Exception as exc:  # the metrics row must never hide the run's own outcome
            log.error("could not write the run-metrics row: %s", exc)
            result.errors.append(f"run_metrics: {type(exc).__name__}: {exc}")
        result.retries = list(self.sink.retries)


class _TimeseriesState:
    """Buffered rows and per-tag outcomes; `flush` merges the rows, THEN the finished tags' watermarks."""

    def __init__(self, run: _Run, marks: dict[str, watermarks.Watermark], spans: dict) -> None:
        self.run = run
        self.marks = marks
        self.spans = spans
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.rows_total = 0
        self.rows: Counter[str] = Counter()
        self.failed: dict[str, str] = {}
        self.finished: list[str] = []
        self.slot: int | None = None  # grid slot of the buffered units
        self.committer = Committer()

    def label(self, webid: str) -> str:
        tag = self.spans[webid][0] if webid in self.spans else None
        return f"{tag.name} ({webid})" if tag is not None and tag.name else webid

    def add(self, fetched: FetchResult) -> None:
        self.run.requests += fetched.requests
        if fetched.table.num_rows:
            self.buffer.append(fetched.table)
            self.buffered += fetched.table.num_rows
            self.rows_total += fetched.table.num_rows
        self.rows.update(fetched.rows)
        self.failed.update(fetched.failed)

    def flush(self) -> None:
        """Hand the buffered rows and the finished tags' watermarks to the commit thread (committer.py)."""
        rows = pa.concat_tables(self.buffer) if self.buffer else None
        self.buffer, self.buffered = [], 0
        updates = self._watermark_updates()
        if rows is not None or updates:
            self.committer.submit(self._commit, rows, updates)

    def _commit(self, rows: pa.Table | None, updates: list[dict[str, Any]]) -> None:
        """On the commit thread: the rows first, then the watermarks of the tags they finish."""
        if rows is not None:
            # the next incremental run re-reads from (its high watermark = this run's end) - lookback: the sink
            # keeps those rows in files of their own, so that run's MERGE rewrites only them (lake/delta_sink.py)
            reread_from = self.run.end - self.run.config.extraction.lookback
            self.run._merge(TIMESERIES, rows, reread_from=reread_from)
        if updates:
            self.run.sink.merge(WATERMARKS, watermarks.rows(updates, run_id=self.run.run_id, updated_at=_now()))

    def _watermark_updates(self) -> list[dict[str, Any]]:
        """Watermark rows of the tags finished since the last hand-over (failed tags keep theirs)."""
        updates = []
        for webid in self.finished:
            tag, start, end = self.spans[webid]
            mark = self.marks.get(webid)
            update = {"item_id": webid, "item_name": tag.name, "rows": self.rows.get(webid, 0)}
            if webid in self.failed:
                low, high = (mark.low, mark.high) if mark else (None, None)
                update |= {"low": low, "high": high, "status": "failed", "error": self.failed[webid][:1000]}
            else:
                low, high = watermarks.advanced(self.run.mode, mark, start, end, self.run.now)
                update |= {"low": low, "high": high, "status": "ok"}
            updates.append(update)
        self.finished = []
        return updates


def _now() -> datetime:
    return datetime.now(UTC)

"""`PILakeflowConnect`: this connector behind the Lakeflow Community Connectors `LakeflowConnect` contract, so a
pipeline of that framework can read PI through our client, paging and parsing instead of its own source.

Tables and schemas are the ones the connector's own runs write (`lake/schemas.py`, converted to Spark types).
Metadata, catalogues and snapshots (`pi_tags`, `pi_point_attributes`, `pi_current_value`, the AF hierarchy and
its catalogue — templates, categories, analyses, AF tables, units of measure —, the event frames and their
annotations active since `start_date`) are read whole in one batch (offset None). The time series
(`pi_timeseries`, `pi_interpolated`, `pi_summary`) are `cdc` tables read window by window: the offset is
`{"cursor": ISO time}`, each call reads [cursor, cursor + window) — interpolated grid points and completed
summary intervals aligned to the epoch, so windows never share a row — and the cursor stops at the PI server's
clock as read when the source was made (the framework's end-of-data signal: the same offset comes back).
Unlike the connector's own runs there is no lookback: values PI receives late for a window already read are
not read again by this face.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
from pyspark.sql.types import StructType

from osipi_connector.community.lakeflow_connect import LakeflowConnect
from osipi_connector.config import ConfigError, ConnectorConfig, parse_duration, resolve_time
from osipi_connector.extract.timed_values import grid_ceil, grid_floor
from osipi_connector.lake import schemas
from osipi_connector.lake.schemas import TableSpec
from osipi_connector.lake.spark_schema import spark_schema
from osipi_connector.piwebapi.client import PIClient
from osipi_connector.piwebapi.pitime import UTC
from osipi_connector.plan import Tag

# option -> dotted key of ConnectorConfig; values are text (lists comma-separated), validated by the config
OPTIONS = {
    "pi_web_api_url": "pi_web_api.url",
    "pi_auth_type": "pi_web_api.auth_type",
    "pi_username": "pi_web_api.username",
    "pi_password": "pi_web_api.password",
    "verify_ssl": "pi_web_api.verify_ssl",
    "tags": "extraction.tags",
    "tag_names": "extraction.tag_names",
    "name_filter": "extraction.name_filter",
    "data_server": "extraction.data_server",
    "af_database": "extraction.af_database",
    "start_date": "extraction.start_date",
    "batch_size": "extraction.batch_size",
    "max_count_per_tag": "extraction.max_count_per_tag",
    "clock": "extraction.clock",
    "interpolated_interval": "extraction.interpolated.interval",
    "summary_duration": "extraction.summary.duration",
    "summary_types": "extraction.summary.types",
    "summary_calculation_basis": "extraction.summary.calculation_basis",
}
LIST_OPTIONS = ("tags", "tag_names", "summary_types")
WINDOW_OPTION, DEFAULT_WINDOW = "window", "1h"  # time read per `read_table` call of the time series


@dataclass(frozen=True)
class _Table:
    spec: TableSpec
    cursor_field: str | None = None  # None: a snapshot, read whole
    needs_af: bool = False


TABLES = {
    t.spec.name: t
    for t in (
        _Table(schemas.TAGS),
        _Table(schemas.POINT_ATTRIBUTES),
        _Table(schemas.CURRENT_VALUE),
        _Table(schemas.TIMESERIES, "timestamp"),
        _Table(schemas.INTERPOLATED, "timestamp"),
        _Table(schemas.SUMMARY, "interval_start"),
        _Table(schemas.ASSET_HIERARCHY, needs_af=True),
        _Table(schemas.ELEMENT_ATTRIBUTES, needs_af=True),
        _Table(schemas.EVENT_FRAMES, needs_af=True),
        *(_Table(spec, needs_af=True) for spec in schemas.AF_CATALOG_TABLES),
    )
}


def connector_config(options: dict[str, str]) -> ConnectorConfig:
    """The options as a validated ConnectorConfig; other keys (the framework adds its own) are not ours."""
    nested: dict[str, Any] = {"pi_web_api": {}, "extraction": {}}
    for option, key in OPTIONS.items():
        if options.get(option) in (None, ""):
            continue
        value: Any = options[option]
        if option in LIST_OPTIONS and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        target = nested
        *parents, last = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return ConnectorConfig.from_dict(nested, source="LakeflowConnect options")


class PILakeflowConnect(LakeflowConnect):
    """PI Web API tables for the Lakeflow Community Connectors framework (options: see `OPTIONS`, `window`)."""

    def __init__(self, options: dict[str, str], client: PIClient | None = None) -> None:
        super().__init__(options)
        self.config = connector_config(options)
        try:
            self.window = parse_duration(options.get(WINDOW_OPTION) or DEFAULT_WINDOW)
        except ValueError as exc:
            raise ConfigError(f"option {WINDOW_OPTION}: {exc}") from None
        if self.window <= timedelta(0):
            raise ConfigError(f"option {WINDOW_OPTION}: must be positive — e.g. 1h")
        self.client = client if client is not None else _client(self.config)
        self.run_id = uuid.uuid4().hex
        self.ingested_at = datetime.now(UTC)
        from osipi_connector.extract.clock import server_now

        # where reading stops: fixed once, so a read that keeps up with PI still ends (AvailableNow)
        self.cap = server_now(self.client) if self.config.extraction.clock == "server" else self.ingested_at
        self.start = resolve_time(self.config.extraction.start_date, self.cap)
        self._tags: pa.Table | None = None
        self._database: dict[str, Any] | None = None

    # --- the contract -----------------------------------------------------------------------------------
    def list_tables(self) -> list[str]:
        with_af = bool(self.config.extraction.af_database)
        return [name for name, t in TABLES.items() if with_af or not t.needs_af]

    def get_table_schema(self, table_name: str, table_options: dict[str, str]) -> StructType:
        return spark_schema(self._table(table_name).spec.schema)

    def read_table_metadata(self, table_name: str, table_options: dict[str, str]) -> dict:
        table = self._table(table_name)
        meta: dict[str, Any] = {"primary_keys": list(table.spec.keys)}
        if table.cursor_field is None:
            return meta | {"ingestion_type": "snapshot"}
        return meta | {"cursor_field": table.cursor_field, "ingestion_type": "cdc"}

    def read_table(
        self, table_name: str, start_offset: dict | None, table_options: dict[str, str]
    ) -> tuple[Iterator[dict], dict | None]:
        table = self._table(table_name)
        if table.cursor_field is None:
            return _records(self._snapshot(table.spec)), None
        return self._window(table.spec, start_offset or {})

    # --- reading ----------------------------------------------------------------------------------------
    def _table(self, name: str) -> _Table:
        if name not in self.list_tables():
            hint = " (AF tables need the af_database option)" if name in TABLES else ""
            raise ValueError(f"unknown table {name!r}{hint} — choose from {', '.join(self.list_tables())}")
        return TABLES[name]

    def _lineage(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "ingested_at": self.ingested_at}

    def tags(self) -> list[Tag]:
        return [
            Tag(w, n)
            for w, n in zip(self._tag_table()["tag_webid"].to_pylist(), self._tag_table()["tag_name"].to_pylist())
        ]

    def _tag_table(self) -> pa.Table:
        if self._tags is None:
            from osipi_connector.extract.points import resolve_points

            ext = self.config.extraction
            self._tags = resolve_points(
                self.client,
                data_server=ext.data_server,
                webids=ext.tags,
                names=ext.tag_names,
                name_filter=ext.name_filter,
                **self._lineage(),
            )
        return self._tags

    def _snapshot(self, spec: TableSpec) -> pa.Table:
        from osipi_connector.extract.af import fetch_af
        from osipi_connector.extract.current_values import fetch_current_values
        from osipi_connector.extract.event_frames import fetch_event_frames
        from osipi_connector.extract.point_attributes import fetch_point_attributes

        ext = self.config.extraction
        if spec is schemas.TAGS:
            return self._tag_table()
        if spec is schemas.POINT_ATTRIBUTES:
            return _checked(spec, fetch_point_attributes(self.client, self.tags(), **self._lineage()))
        if spec is schemas.CURRENT_VALUE:
            return _checked(spec, fetch_current_values(self.client, self.tags(), **self._lineage()))
        database = ext.af_database or ""
        if spec in schemas.AF_CATALOG_TABLES:
            return self._catalog(spec)
        if spec is schemas.EVENT_FRAMES:
            return fetch_event_frames(
                self.client, af_database=database, start=self.start, end=self.cap, **self._lineage()
            )
        hierarchy, attributes = fetch_af(self.client, af_database=database, **self._lineage())
        return hierarchy if spec is schemas.ASSET_HIERARCHY else attributes

    def _catalog(self, spec: TableSpec) -> pa.Table:
        """One table of the AF catalogue (af_datasets.py's extractors); annotations of the frames since start."""
        from osipi_connector.af_datasets import snapshot_extractors
        from osipi_connector.extract.af import find_database
        from osipi_connector.extract.annotations import fetch_annotations

        if self._database is None:
            self._database = find_database(self.client, self.config.extraction.af_database or "")
        if spec is schemas.EVENT_FRAME_ANNOTATIONS:
            return fetch_annotations(self.client, self._database, start=self.start, end=self.cap, **self._lineage())
        fetch, specs = next(entry for entry in snapshot_extractors().values() if spec in entry[1])
        tables = fetch(self.client, self._database, **self._lineage())
        return (tables if isinstance(tables, tuple) else (tables,))[specs.index(spec)]

    def _window(self, spec: TableSpec, offset: dict) -> tuple[Iterator[dict], dict]:
        ext = self.config.extraction
        if spec is schemas.INTERPOLATED:
            step = ext.interpolated.interval
            cursor = _cursor(offset) or grid_ceil(self.start, step)
        elif spec is schemas.SUMMARY:
            step = ext.summary.duration
            cursor = _cursor(offset) or grid_floor(self.start, step)
        else:
            step = timedelta(0)
            cursor = _cursor(offset) or self.start
        end = min(cursor + max(self.window, step), self.cap)
        if spec is schemas.SUMMARY:
            end = max(grid_floor(end, step), cursor)  # completed intervals only
        here = {"cursor": cursor.isoformat()}
        if end <= cursor:  # nothing new before the cap: the same offset ends the read
            return iter(()), offset or here
        data = self._read_window(spec, cursor, end)
        return _records(data), {"cursor": end.isoformat()}

    def _read_window(self, spec: TableSpec, start: datetime, end: datetime) -> pa.Table:
        from osipi_connector.extract.interpolated import fetch_interpolated
        from osipi_connector.extract.summaries import fetch_summaries
        from osipi_connector.extract.timeseries import TagWindow, fetch_recorded

        ext = self.config.extraction
        tags = self.tags()
        point_types = dict(
            zip(self._tag_table()["tag_webid"].to_pylist(), self._tag_table()["point_type"].to_pylist(), strict=True)
        )
        parts = []
        for i in range(0, len(tags), ext.batch_size):
            group = tags[i : i + ext.batch_size]
            if spec is schemas.TIMESERIES:
                # values at `end` belong to the next window: adjacent windows never share a value
                windows = [TagWindow(t.webid, t.name, start, end, include_end=False) for t in group]
                result = fetch_recorded(self.client, windows, max_count=ext.max_count_per_tag, **self._lineage())
            elif spec is schemas.INTERPOLATED:
                last = end - timedelta(microseconds=1)  # [start, end): the grid point at `end` is the next window's
                result = fetch_interpolated(
                    self.client,
                    [(t, start, last) for t in group],
                    interval=ext.interpolated.interval,
                    max_points=ext.max_count_per_tag,
                    **self._lineage(),
                )
            else:
                result = fetch_summaries(
                    self.client,
                    [(t, start, end) for t in group],
                    duration=ext.summary.duration,
                    types=ext.summary.types,
                    calculation_basis=ext.summary.calculation_basis,
                    max_values=ext.max_count_per_tag,
                    point_types=point_types,
                    **self._lineage(),
                )
            parts.append(_checked(spec, result))
        return pa.concat_tables(parts) if parts else spec.schema.empty_table()


def _client(config: ConnectorConfig) -> PIClient:
    from osipi_connector.piwebapi.client import PIWebAPIClient
    from osipi_connector.secrets import resolve_credentials

    return PIWebAPIClient(config.client_settings(), resolve_credentials(config))


def _cursor(offset: dict) -> datetime | None:
    text = offset.get("cursor")
    return datetime.fromisoformat(text) if text else None


def _checked(spec: TableSpec, result: Any) -> pa.Table:
    """The rows; tags that failed fail the read (the framework retries the batch from the same offset)."""
    if result.failed:
        shown = "; ".join(f"{w}: {e}" for w, e in sorted(result.failed.items())[:3])
        raise RuntimeError(f"{spec.name}: {len(result.failed)} tag(s) failed — {shown}")
    return result.table


def _records(table: pa.Table) -> Iterator[dict]:
    """JSON-compatible rows: times as ISO-8601 text with their UTC offset, dates as YYYY-MM-DD."""
    for row in table.to_pylist():
        yield {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in row.items()}

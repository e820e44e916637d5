"""Every table the PI connector writes: Arrow schema, merge keys, partitioning, z-order — in one place.

Both sinks (delta-rs locally, Spark/Unity Catalog on Databricks) derive their DDL and MERGE statements from
these specs, so the local and the Databricks tables cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
STRINGS = pa.list_(pa.string())

Layer = Literal["bronze", "checkpoints"]


@dataclass(frozen=True)
class TableSpec:
    """A table: `layer` picks the configured schema (bronze data or checkpoints), `keys` make MERGE idempotent."""

    name: str
    layer: Layer
    schema: pa.Schema
    keys: tuple[str, ...]
    partition_by: tuple[str, ...] = ()
    zorder_by: tuple[str, ...] = ()
    comment: str = ""
    column_comments: dict[str, str] = field(default_factory=dict)
    # Parquet writer hints (the local sink's `writer_properties`); the defaults suit small tables.
    # stats_columns: with the keys, the only columns whose files keep min/max (data skipping); () keeps all.
    stats_columns: tuple[str, ...] = ()
    # plain_columns: values that rarely repeat (measurements, timestamps), written without a dictionary.
    plain_columns: tuple[str, ...] = ()
    # monotonic: columns a matched MERGE sets to greatest(old, new) or least(old, new) instead of the new value,
    # so a writer that read an older row (a backfill beside the hourly run) can never move them backwards.
    monotonic: dict[str, Literal["greatest", "least"]] = field(default_factory=dict)
    # time_column: the key incremental runs window on; rows the next run re-reads (its lookback) are kept in
    # files of their own by the local sink, so that run's MERGE rewrites only those (see `Sink.merge`).
    time_column: str | None = None


def _schema(*fields: tuple[str, pa.DataType, bool]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype, nullable=nullable) for name, dtype, nullable in fields])


TIMESERIES = TableSpec(
    name="pi_timeseries",
    layer="bronze",
    schema=_schema(
        ("tag_webid", pa.string(), False),
        ("tag_name", pa.string(), True),
        ("timestamp", TS, False),  # microseconds: PI's 7th fraction digit (100 ns) is dropped, see value_seq
        # 0 for the first value PI returned at this (microsecond) timestamp, 1 for the next...: the key survives
        # duplicate timestamps and values 100 ns apart, in PI's order (extract/timeseries.py)
        ("value_seq", pa.int32(), False),
        ("value", pa.float64(), True),  # numeric projection: Float*, Int* (exact up to 2^53), digital code
        ("value_string", pa.string(), True),  # String points; text of other non-numeric values
        ("digital_state_name", pa.string(), True),
        ("digital_state_code", pa.int32(), True),
        ("digital_state_is_system", pa.bool_(), True),  # True: a system state (I/O Timeout, Shutdown...), not data
        ("good", pa.bool_(), True),
        ("questionable", pa.bool_(), True),
        ("substituted", pa.bool_(), True),
        ("annotated", pa.bool_(), True),
        ("units", pa.string(), True),
        ("partition_date", pa.date32(), False),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("tag_webid", "timestamp", "value_seq"),
    partition_by=("partition_date",),
    zorder_by=("tag_webid", "timestamp"),
    stats_columns=("tag_name", "ingested_at"),
    plain_columns=("timestamp", "value"),
    time_column="timestamp",
    comment="PI recorded values, one row per value PI stored (duplicate timestamps kept, ordered by value_seq).",
)

TAGS = TableSpec(
    name="pi_tags",
    layer="bronze",
    schema=_schema(
        ("tag_webid", pa.string(), False),
        ("tag_id", pa.int64(), True),
        ("tag_name", pa.string(), False),
        ("path", pa.string(), True),
        ("descriptor", pa.string(), True),
        ("point_class", pa.string(), True),
        ("point_type", pa.string(), True),
        ("engineering_units", pa.string(), True),
        ("digital_set_name", pa.string(), True),
        ("span", pa.float64(), True),
        ("zero", pa.float64(), True),
        ("step", pa.bool_(), True),
        ("future", pa.bool_(), True),
        ("data_server_webid", pa.string(), True),
        ("data_server_name", pa.string(), True),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("tag_webid",),
    comment="PI point metadata, one row per point (latest seen).",
)

ASSET_HIERARCHY = TableSpec(
    name="pi_asset_hierarchy",
    layer="bronze",
    schema=_schema(
        ("element_id", pa.string(), False),  # AF GUID: survives renames and moves
        ("element_webid", pa.string(), False),
        ("element_name", pa.string(), False),
        ("element_path", pa.string(), False),
        ("parent_path", pa.string(), True),  # null at the top level
        ("parent_webid", pa.string(), True),
        ("depth", pa.int32(), False),  # 1 for the database's top-level elements
        ("template_name", pa.string(), True),
        ("categories", STRINGS, True),
        ("description", pa.string(), True),
        ("has_children", pa.bool_(), True),
        ("af_database_webid", pa.string(), False),
        ("af_database_path", pa.string(), True),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("element_id",),
    comment="AF elements of the configured database (full hierarchy, latest snapshot).",
)

ELEMENT_ATTRIBUTES = TableSpec(
    name="pi_element_attributes",
    layer="bronze",
    schema=_schema(
        ("attribute_id", pa.string(), False),
        ("attribute_webid", pa.string(), False),
        ("element_id", pa.string(), False),
        ("element_webid", pa.string(), False),
        ("element_path", pa.string(), True),
        ("attribute_name", pa.string(), False),
        ("attribute_path", pa.string(), True),
        ("description", pa.string(), True),
        ("type", pa.string(), True),
        ("default_units", pa.string(), True),
        ("data_reference", pa.string(), True),  # "PI Point", "Formula", "" (static)...
        ("config_string", pa.string(), True),
        ("point_webid", pa.string(), True),  # the referenced PI point's WebID: joins to pi_timeseries.tag_webid
        ("point_name", pa.string(), True),
        ("categories", STRINGS, True),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("attribute_id",),
    comment="AF element attributes; point_webid joins to pi_timeseries.tag_webid.",
)

EVENT_FRAMES = TableSpec(
    name="pi_event_frames",
    layer="bronze",
    schema=_schema(
        ("event_frame_id", pa.string(), False),
        ("event_frame_webid", pa.string(), False),
        ("event_name", pa.string(), False),
        ("template_name", pa.string(), True),
        ("description", pa.string(), True),
        ("start_time", TS, False),
        ("end_time", TS, True),  # null while the frame is in progress (PI's 9999-12-31 open end)
        ("is_in_progress", pa.bool_(), False),
        ("primary_element_webid", pa.string(), True),
        ("referenced_element_webids", STRINGS, True),
        ("severity", pa.string(), True),
        ("can_be_acknowledged", pa.bool_(), True),
        ("is_acknowledged", pa.bool_(), True),
        ("acknowledged_by", pa.string(), True),
        ("acknowledged_date", TS, True),
        ("are_values_captured", pa.bool_(), True),
        ("categories", STRINGS, True),
        ("attributes", pa.string(), True),  # JSON object {attribute name: value}; Databricks SQL: attributes:Phase
        ("af_database_webid", pa.string(), False),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("event_frame_id",),
    comment="AF event frames; open frames are updated in place when they close.",
)

# The value columns of one PI TimedValue, as pi_timeseries has them (extract/timed_values.py fills them).
_TIMED_VALUE = (
    ("value", pa.float64(), True),
    ("value_string", pa.string(), True),
    ("digital_state_name", pa.string(), True),
    ("digital_state_code", pa.int32(), True),
    ("digital_state_is_system", pa.bool_(), True),
    ("good", pa.bool_(), True),
    ("questionable", pa.bool_(), True),
    ("substituted", pa.bool_(), True),
    ("annotated", pa.bool_(), True),
    ("units", pa.string(), True),
)
TIMED_VALUE_COLUMNS = tuple(name for name, _, _ in _TIMED_VALUE)

INTERPOLATED = TableSpec(
    name="pi_interpolated",
    layer="bronze",
    schema=_schema(
        ("tag_webid", pa.string(), False),
        ("tag_name", pa.string(), True),
        ("timestamp", TS, False),  # a point of the grid: a multiple of `interval_seconds` since the epoch
        *_TIMED_VALUE,
        ("interval_seconds", pa.int64(), False),
        ("partition_date", pa.date32(), False),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("tag_webid", "timestamp"),
    partition_by=("partition_date",),
    zorder_by=("tag_webid", "timestamp"),
    time_column="timestamp",
    comment="PI interpolated values on a regular grid, computed by the PI server (streams/{webId}/interpolated).",
)

SUMMARY = TableSpec(
    name="pi_summary",
    layer="bronze",
    schema=_schema(
        ("tag_webid", pa.string(), False),
        ("tag_name", pa.string(), True),
        ("summary_type", pa.string(), False),  # Average, Minimum, Maximum, Total, Count, ...
        ("calculation_basis", pa.string(), False),  # TimeWeighted | EventWeighted
        ("interval_start", TS, False),
        ("interval_end", TS, False),  # the interval is [interval_start, interval_end)
        ("timestamp", TS, True),  # PI's time of the value: of the extreme for Minimum/Maximum, else the start
        ("value", pa.float64(), True),  # null when PI had no good data (see `error`)
        ("good", pa.bool_(), True),
        ("questionable", pa.bool_(), True),
        ("substituted", pa.bool_(), True),
        ("annotated", pa.bool_(), True),
        ("units", pa.string(), True),
        ("error", pa.string(), True),  # PI's message when it could not compute this value
        ("partition_date", pa.date32(), False),  # of interval_start
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("tag_webid", "summary_type", "calculation_basis", "interval_start", "interval_end"),
    partition_by=("partition_date",),
    zorder_by=("tag_webid", "interval_start"),
    time_column="interval_start",
    comment="PI summaries (Average, Minimum, Maximum, ...) per completed interval, computed by the PI server.",
)

CURRENT_VALUE = TableSpec(
    name="pi_current_value",
    layer="bronze",
    schema=_schema(
        ("tag_webid", pa.string(), False),
        ("tag_name", pa.string(), True),
        ("timestamp", TS, True),
        *_TIMED_VALUE,
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("tag_webid",),
    comment="PI snapshot (current value) per point, as of the latest run.",
)

POINT_ATTRIBUTES = TableSpec(
    name="pi_point_attributes",
    layer="bronze",
    schema=_schema(
        ("tag_webid", pa.string(), False),
        ("tag_name", pa.string(), True),
        ("attribute_name", pa.string(), False),  # PI's lower-case name: descriptor, engunits, compdev, ...
        ("value", pa.string(), True),  # as text, whatever PI's type
        ("value_number", pa.float64(), True),  # the same value when it is a number
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("tag_webid", "attribute_name"),
    comment="Every PI point attribute (points/{webId}/attributes), one row per point and attribute.",
)

# --- the AF catalogue around the hierarchy: snapshots of one AF database (units: of its AF server) ----------
ELEMENT_TEMPLATES = TableSpec(
    name="pi_element_templates",
    layer="bronze",
    schema=_schema(
        ("template_id", pa.string(), False),
        ("template_webid", pa.string(), False),
        ("template_name", pa.string(), False),
        ("instance_type", pa.string(), True),  # Element | EventFrame (event-frame templates are here too)
        ("path", pa.string(), True),
        ("description", pa.string(), True),
        ("base_template", pa.string(), True),
        ("naming_pattern", pa.string(), True),
        ("allow_element_to_extend", pa.bool_(), True),
        ("severity", pa.string(), True),
        ("can_be_acknowledged", pa.bool_(), True),
        ("categories", STRINGS, True),
        ("af_database_webid", pa.string(), False),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("template_id",),
    comment="AF element and event-frame templates of the configured database (latest snapshot).",
)

ATTRIBUTE_TEMPLATES = TableSpec(
    name="pi_attribute_templates",
    layer="bronze",
    schema=_schema(
        ("attribute_template_id", pa.string(), False),
        ("attribute_template_webid", pa.string(), False),
        ("template_id", pa.string(), False),  # joins to pi_element_templates
        ("template_name", pa.string(), True),
        ("attribute_name", pa.string(), False),
        ("path", pa.string(), True),
        ("description", pa.string(), True),
        ("type", pa.string(), True),
        ("type_qualifier", pa.string(), True),
        ("default_units", pa.string(), True),
        ("default_value", pa.string(), True),  # JSON: whatever type the template's default has
        ("data_reference", pa.string(), True),
        ("config_string", pa.string(), True),
        ("is_configuration_item", pa.bool_(), True),
        ("is_excluded", pa.bool_(), True),
        ("is_hidden", pa.bool_(), True),
        ("categories", STRINGS, True),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("attribute_template_id",),
    comment="Attribute templates of every element and event-frame template in pi_element_templates.",
)

CATEGORIES = TableSpec(
    name="pi_categories",
    layer="bronze",
    schema=_schema(
        ("category_type", pa.string(), False),  # Element | Attribute | Analysis | Table
        ("category_id", pa.string(), False),
        ("category_webid", pa.string(), False),
        ("category_name", pa.string(), False),
        ("description", pa.string(), True),
        ("path", pa.string(), True),
        ("af_database_webid", pa.string(), False),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("category_type", "category_id"),
    comment="AF element, attribute, analysis and table categories of the configured database.",
)

ANALYSES = TableSpec(
    name="pi_analyses",
    layer="bronze",
    schema=_schema(
        ("analysis_id", pa.string(), False),
        ("analysis_webid", pa.string(), False),
        ("analysis_name", pa.string(), False),
        ("path", pa.string(), True),
        ("description", pa.string(), True),
        ("target_webid", pa.string(), True),  # the element it runs on: joins to pi_asset_hierarchy.element_webid
        ("template_name", pa.string(), True),  # null when it has no analysis template
        ("analysis_rule", pa.string(), True),  # PerformanceEquation, Rollup, EventFrame, SQC...
        ("time_rule", pa.string(), True),  # Periodic | Natural
        ("status", pa.string(), True),  # Enabled | Disabled | Error
        ("priority", pa.string(), True),
        ("output_time", pa.string(), True),
        ("group_id", pa.int32(), True),
        ("auto_created", pa.bool_(), True),
        ("is_configured", pa.bool_(), True),
        ("publish_results", pa.bool_(), True),
        ("categories", STRINGS, True),
        ("af_database_webid", pa.string(), False),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("analysis_id",),
    comment="AF analyses of the configured database (assetdatabases/{webId}/analyses).",
)

ANALYSIS_TEMPLATES = TableSpec(
    name="pi_analysis_templates",
    layer="bronze",
    schema=_schema(
        ("analysis_template_id", pa.string(), False),
        ("analysis_template_webid", pa.string(), False),
        ("analysis_template_name", pa.string(), False),
        ("path", pa.string(), True),
        ("description", pa.string(), True),
        ("target_template_name", pa.string(), True),  # the element template its analyses run on
        ("analysis_rule", pa.string(), True),
        ("time_rule", pa.string(), True),
        ("output_time", pa.string(), True),
        ("create_enabled", pa.bool_(), True),
        ("group_id", pa.int32(), True),
        ("categories", STRINGS, True),
        ("af_database_webid", pa.string(), False),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("analysis_template_id",),
    comment="AF analysis templates of the configured database.",
)

AF_TABLES = TableSpec(
    name="pi_af_tables",
    layer="bronze",
    schema=_schema(
        ("table_id", pa.string(), False),
        ("table_webid", pa.string(), False),
        ("table_name", pa.string(), False),
        ("path", pa.string(), True),
        ("description", pa.string(), True),
        ("columns", pa.string(), True),  # JSON {column name: .NET type}, as PI's TableData has them
        ("row_count", pa.int64(), False),  # rows now: pi_af_table_rows keeps row_index < row_count current
        ("time_zone", pa.string(), True),
        ("convert_to_local_time", pa.bool_(), True),
        ("categories", STRINGS, True),
        ("af_database_webid", pa.string(), False),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("table_id",),
    comment="AF tables (lookup tables) of the configured database.",
)

AF_TABLE_ROWS = TableSpec(
    name="pi_af_table_rows",
    layer="bronze",
    schema=_schema(
        ("table_id", pa.string(), False),
        ("row_index", pa.int64(), False),  # position in PI's answer: AF tables need no primary key
        ("table_name", pa.string(), True),
        ("row", pa.string(), False),  # JSON {column: value}; Databricks SQL: row:Density
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("table_id", "row_index"),
    comment="Rows of the AF tables in pi_af_tables; a row_index at or past the table's row_count is gone in PI.",
)

EVENT_FRAME_ANNOTATIONS = TableSpec(
    name="pi_eventframe_annotations",
    layer="bronze",
    schema=_schema(
        ("event_frame_id", pa.string(), False),
        ("annotation_id", pa.string(), False),
        ("event_frame_webid", pa.string(), False),
        ("event_name", pa.string(), True),
        ("name", pa.string(), True),
        ("description", pa.string(), True),
        ("value", pa.string(), True),  # text; other value types as JSON
        ("creator", pa.string(), True),
        ("creation_date", TS, True),
        ("modifier", pa.string(), True),
        ("modify_date", TS, True),
        ("af_database_webid", pa.string(), False),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("event_frame_id", "annotation_id"),
    comment="Annotations of the event frames active in each run's window (eventframes/{webId}/annotations).",
)

UNITS_OF_MEASURE = TableSpec(
    name="pi_units_of_measure",
    layer="bronze",
    schema=_schema(
        ("uom_id", pa.string(), False),
        ("uom_webid", pa.string(), False),
        ("uom_name", pa.string(), False),
        ("abbreviation", pa.string(), True),
        ("description", pa.string(), True),
        ("path", pa.string(), True),
        ("class_id", pa.string(), False),
        ("class_name", pa.string(), False),  # Temperature, Pressure, ...
        ("canonical_unit_name", pa.string(), True),
        ("canonical_unit_abbreviation", pa.string(), True),
        ("is_canonical", pa.bool_(), False),
        ("factor", pa.float64(), True),  # canonical value = value * factor + offset
        ("offset", pa.float64(), True),
        ("reference_factor", pa.float64(), True),
        ("reference_offset", pa.float64(), True),
        ("reference_unit_abbreviation", pa.string(), True),
        ("asset_server_webid", pa.string(), False),
        ("ingested_at", TS, False),
        ("run_id", pa.string(), True),
    ),
    keys=("uom_id",),
    comment="Units of measure of the AF server's UOM database, one row per unit with its class.",
)

AF_CATALOG_TABLES = (
    ELEMENT_TEMPLATES,
    ATTRIBUTE_TEMPLATES,
    CATEGORIES,
    ANALYSES,
    ANALYSIS_TEMPLATES,
    AF_TABLES,
    AF_TABLE_ROWS,
    EVENT_FRAME_ANNOTATIONS,
    UNITS_OF_MEASURE,
)

WATERMARKS = TableSpec(
    name="pi_watermarks",
    layer="checkpoints",
    schema=_schema(
        ("dataset", pa.string(), False),  # timeseries | event_frames | interpolated | summary | annotations
        ("item_id", pa.string(), False),  # tag WebID, or the AF database WebID
        ("item_name", pa.string(), True),
        ("low_watermark", TS, True),  # earliest time covered (only ever moves back: backfills widen it)
        ("high_watermark", TS, True),  # data up to here is committed (only ever moves forward)
        ("last_run_id", pa.string(), True),
        ("last_status", pa.string(), True),  # ok | failed
        ("last_error", pa.string(), True),
        ("rows_last_run", pa.int64(), True),
        ("updated_at", TS, False),
    ),
    keys=("dataset", "item_id"),
    # One partition per dataset: the parallel timeseries and event_frames tasks MERGE disjoint files, so
    # Delta's conflict detection (which compares partitions) never makes one of them retry.
    partition_by=("dataset",),
    monotonic={"low_watermark": "least", "high_watermark": "greatest"},
    comment="Per-tag / per-dataset progress; advanced only after the data it covers is committed.",
)

RUN_METRICS = TableSpec(
    name="pi_run_metrics",
    layer="checkpoints",
    schema=_schema(
        ("run_id", pa.string(), False),
        ("mode", pa.string(), False),  # incremental | full | backfill
        ("engine", pa.string(), True),  # delta-rs | spark
        ("started_at", TS, False),
        ("finished_at", TS, True),
        ("duration_seconds", pa.float64(), True),
        ("window_start", TS, True),
        ("window_end", TS, True),
        ("tags_requested", pa.int64(), True),
        ("tags_succeeded", pa.int64(), True),
        ("tags_failed", pa.int64(), True),
        ("rows_timeseries", pa.int64(), True),
        ("rows_tags", pa.int64(), True),
        ("rows_asset_hierarchy", pa.int64(), True),
        ("rows_element_attributes", pa.int64(), True),
        ("rows_event_frames", pa.int64(), True),
        ("requests", pa.int64(), True),  # HTTP requests sent (each retry and /batch POST counted)
        # running (written when the run starts) | success | partial | failed | died (the run stopped without
        # its final row; the next run of the same mode and datasets marks it so and says so)
        ("status", pa.string(), False),
        ("errors", STRINGS, True),  # one line per failed tag/dataset: what failed and why
        # the run's Delta commits re-run after losing to a concurrent writer (lake/conflict_retry.py), up to
        # this row's own final MERGE; last, so an older table takes it with ALTER TABLE ... ADD COLUMNS
        ("conflict_retries", pa.int64(), True),
        # added later still (osipi-connector upgrade-tables adds them to an older table):
        ("datasets", STRINGS, True),  # the datasets the run was asked for: with `mode`, which runs follow each other
        # watermarks found past the server's clock and moved back to the data committed (reported, then repaired)
        ("watermarks_repaired", pa.int64(), True),
        # tags whose Stream Updates marker had expired (or was unknown to the server): their change feed fell
        # back to re-reading the lookback window, so edits older than it during the gap were not seen
        ("change_feed_fallbacks", pa.int64(), True),
    ),
    keys=("run_id",),
    comment="One row per connector run (status running while it runs), for monitoring and alerting.",
)

CHANGE_MARKERS = TableSpec(
    name="pi_change_markers",
    layer="checkpoints",
    schema=_schema(
        ("tag_webid", pa.string(), False),
        ("tag_name", pa.string(), True),
        ("marker", pa.string(), False),  # PI Web API Stream Updates marker: where the next GET continues
        ("marker_time", TS, False),  # about when the server issued it (the fallback re-reads from here)
        ("registered_at", TS, False),  # when the tag was (re-)registered for updates
        ("last_run_id", pa.string(), True),
        ("updated_at", TS, False),
    ),
    keys=("tag_webid",),
    comment="extraction.change_feed: stream_updates — one Stream Updates marker per tag, written after the "
    "changes up to it are in pi_timeseries.",
)

ALL_TABLES: tuple[TableSpec, ...] = (
    TIMESERIES,
    TAGS,
    ASSET_HIERARCHY,
    ELEMENT_ATTRIBUTES,
    EVENT_FRAMES,
    INTERPOLATED,
    SUMMARY,
    CURRENT_VALUE,
    POINT_ATTRIBUTES,
    ELEMENT_TEMPLATES,
    ATTRIBUTE_TEMPLATES,
    CATEGORIES,
    ANALYSES,
    ANALYSIS_TEMPLATES,
    AF_TABLES,
    AF_TABLE_ROWS,
    EVENT_FRAME_ANNOTATIONS,
    UNITS_OF_MEASURE,
    WATERMARKS,
    RUN_METRICS,
    CHANGE_MARKERS,
)
BY_NAME = {spec.name: spec for spec in ALL_TABLES}

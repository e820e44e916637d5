"""The run steps of the AF catalogue datasets: `templates`, `categories`, `analyses`, `af_tables` and
`units_of_measure` are snapshots of the configured AF database (its AF server for units), MERGEd by their
AF GUIDs each run; `annotations` follows the event frames' rule — a watermark per database, frames active
in the window (with lookback) — so it reads only recent frames. The extractors live in `extract/`.

A snapshot step writes each of its tables with one MERGE; a dataset with two tables (templates and their
attribute templates, tables and their rows) writes the parent first, so a run killed in between leaves
parents without children until the next run, never children without a parent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from osipi_connector import watermarks
from osipi_connector.lake.schemas import (
    AF_TABLE_ROWS,
    AF_TABLES,
    ANALYSES,
    ANALYSIS_TEMPLATES,
    ATTRIBUTE_TEMPLATES,
    CATEGORIES,
    ELEMENT_TEMPLATES,
    EVENT_FRAME_ANNOTATIONS,
    UNITS_OF_MEASURE,
    WATERMARKS,
    TableSpec,
)
from osipi_connector.piwebapi.client import PIClient
from osipi_connector.piwebapi.pitime import UTC
from osipi_connector.plan import Tag

if TYPE_CHECKING:
    from osipi_connector.runner import _Run

Snapshot = Callable[..., "pa.Table | tuple[pa.Table, ...]"]


def snapshot_extractors() -> dict[str, tuple[Snapshot, tuple[TableSpec, ...]]]:
    from osipi_connector.extract.af_tables import fetch_af_tables
    from osipi_connector.extract.af_templates import fetch_templates
    from osipi_connector.extract.analyses import fetch_analyses
    from osipi_connector.extract.categories import fetch_categories
    from osipi_connector.extract.units_of_measure import fetch_units_of_measure

    return {  # dataset -> (extractor, the tables it returns, in that order)
        "templates": (fetch_templates, (ELEMENT_TEMPLATES, ATTRIBUTE_TEMPLATES)),
        "categories": (fetch_categories, (CATEGORIES,)),
        "analyses": (fetch_analyses, (ANALYSES, ANALYSIS_TEMPLATES)),
        "af_tables": (fetch_af_tables, (AF_TABLES, AF_TABLE_ROWS)),
        "units_of_measure": (fetch_units_of_measure, (UNITS_OF_MEASURE,)),
    }


def step(run: _Run, dataset: str) -> Callable[[PIClient], None]:
    """The run step of one AF catalogue dataset."""
    if dataset == "annotations":
        return lambda client: frame_annotations(run, client)
    return lambda client: snapshot(run, client, dataset)


def _database(run: _Run, client: PIClient) -> dict[str, Any]:
    from osipi_connector.extract.af import find_database

    return find_database(client, run._af_database())


def snapshot(run: _Run, client: PIClient, dataset: str) -> None:
    fetch, specs = snapshot_extractors()[dataset]
    run.connector._report(dataset, 0, 1)
    database = _database(run, client)
    tables = fetch(client, database, run_id=run.run_id, ingested_at=run.ingested_at)
    tables = tables if isinstance(tables, tuple) else (tables,)
    for spec, table in zip(specs, tables, strict=True):
        run._merge(spec, table)
    run.connector._report(dataset, 1, 1, sum(t.num_rows for t in tables))


def frame_annotations(run: _Run, client: PIClient) -> None:
    """Annotations of the frames active in the database's watermark window; the watermark moves after the MERGE."""
    from osipi_connector.extract.annotations import fetch_annotations

    database = _database(run, client)
    key = run._af_database()
    marks = watermarks.load(run.sink, "annotations")
    if watermarks.past(marks, run.now):  # no per-frame safe point: back to the low watermark or the run's start
        marks = run._repair(marks, {}, "annotations")
    mark = marks.get(key)
    wins = watermarks.windows(
        run.mode,
        [Tag(key)],
        {key: mark} if mark else {},
        start=run.start,
        end=run.end,
        lookback=run.config.extraction.lookback,
    )
    run.connector._report("annotations", 0, 1)
    if not wins:
        return
    _, start, end = wins[0]
    table = fetch_annotations(client, database, start=start, end=end, run_id=run.run_id, ingested_at=run.ingested_at)
    run._merge(EVENT_FRAME_ANNOTATIONS, table)
    low, high = watermarks.advanced(run.mode, mark, start, end, run.now)
    update = {"item_id": key, "low": low, "high": high, "status": "ok", "rows": table.num_rows}
    stamp = datetime.now(UTC)
    run.sink.merge(WATERMARKS, watermarks.rows([update], run_id=run.run_id, updated_at=stamp, dataset="annotations"))
    run.connector._report("annotations", 1, 1, table.num_rows)

"""Small Arrow batches shaped like the extractor's output, built through the specs' own schemas."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from osipi_connector.lake.schemas import RUN_METRICS, TIMESERIES, TableSpec

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


def table(spec: TableSpec, rows: list[dict]) -> pa.Table:
    """Rows as dicts; columns a row leaves out are null."""
    return pa.Table.from_pylist(
        [{name: row.get(name) for name in spec.schema.names} for row in rows], schema=spec.schema
    )


def timeseries(
    tags: int = 2, days: int = 2, per_day: int = 5, value: float = 1.0, seq: int = 0, run_id: str = "run-1"
) -> pa.Table:
    """`per_day` values per tag on each of `days` days; value = tag index + `value` so changes are visible."""
    rows = []
    for tag in range(tags):
        for day in range(days):
            for i in range(per_day):
                ts = T0 + dt.timedelta(days=day, minutes=10 * i)
                rows.append(
                    {
                        "tag_webid": f"W{tag:03d}",
                        "tag_name": f"TAG{tag:03d}",
                        "timestamp": ts,
                        "value_seq": seq,
                        "value": tag + value,
                        "good": True,
                        "units": "degC",
                        "partition_date": ts.date(),
                        "ingested_at": T0 + dt.timedelta(days=10),
                        "run_id": run_id,
                    }
                )
    return table(TIMESERIES, rows)


def watermark(item: str, high: dt.datetime, run_id: str = "run-1") -> dict:
    return {
        "dataset": "timeseries",
        "item_id": item,
        "item_name": f"name-{item}",
        "low_watermark": T0,
        "high_watermark": high,
        "last_run_id": run_id,
        "last_status": "ok",
        "rows_last_run": 5,
        "updated_at": high,
    }


def run_metrics(run_id: str) -> pa.Table:
    return table(
        RUN_METRICS,
        [
            {
                "run_id": run_id,
                "mode": "incremental",
                "engine": "delta-rs",
                "started_at": T0,
                "finished_at": T0 + dt.timedelta(seconds=3),
                "duration_seconds": 3.0,
                "tags_requested": 2,
                "tags_succeeded": 1,
                "tags_failed": 1,
                "rows_timeseries": 10,
                "status": "partial",
                "errors": ["W001: HTTP 502 after 3 retries"],
            }
        ],
    )

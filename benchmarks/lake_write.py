"""CPU per row of one Delta append of `pi_timeseries` with the sink's Parquet writer options vs delta-rs defaults.

Builds a realistic batch (default 1,000,000 rows: 2,000 tags × 500 values, in the order the extractor
produces it: tag by tag, time ascending; PI-style WebIDs and tag names, full-precision values, mostly good
quality, one unit per tag), then appends it to a fresh table with each set of options (and with Snappy instead of ZSTD) in alternating
rounds and keeps the best CPU time of each (process user + system time: delta-rs encodes on its own
threads). Also prints the bytes written and checks that every file keeps the key statistics the append
fast path reads (`lake/new_rows.py`). Baseline, same run: `write_deltalake` with no writer options.

    .venv/bin/python benchmarks/lake_write.py [--rows 1000000] [--tags 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, WriterProperties, write_deltalake

from osipi_connector.lake.delta_sink import writer_properties
from osipi_connector.lake.schemas import TIMESERIES

START_US = 1_740_787_200_000_000  # 2025-03-01T00:00:00Z
DAY_US = 86_400_000_000
_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", np.uint8)


def realistic_batch(rows: int, tags: int, seed: int = 3) -> pa.Table:
    """`rows` values of `tags` tags over one day, laid out as the extractor's round tables are."""
    rng = np.random.default_rng(seed)
    per_tag = max(1, rows // tags)
    n = per_tag * tags
    tag = np.repeat(np.arange(tags), per_tag)
    slot = np.tile(np.arange(per_tag), tags)
    jitter = rng.integers(0, 1_000_000, n)
    ts = START_US + slot * (DAY_US // per_tag) + jitter
    webids = ["F1DP" + bytes(_ALPHABET[rng.integers(0, 64, 51)]).decode() for _ in range(tags)]
    names = [f"PLANT{t % 7}.UNIT{t % 23:02d}.TAG_{t:06d}.PV" for t in range(tags)]
    units = ["degC", "bar", "m3/h", "kW", "%"]
    tag_ix = pa.array(tag)
    good = rng.random(n) > 0.002
    columns = {f.name: pa.nulls(n, f.type) for f in TIMESERIES.schema}
    columns |= {
        "tag_webid": pa.array(webids).take(tag_ix),
        "tag_name": pa.array(names).take(tag_ix),
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "value_seq": pa.array(np.zeros(n, np.int32)),
        "value": pa.array(np.cumsum(rng.normal(0, 0.1, n)) + 50.0),
        "good": pa.array(good),
        "questionable": pa.array(np.zeros(n, bool)),
        "substituted": pa.array(rng.random(n) < 0.01),
        "annotated": pa.array(np.zeros(n, bool)),
        "units": pa.array([units[t % len(units)] for t in range(tags)]).take(tag_ix),
        "partition_date": pa.array((ts // DAY_US).astype(np.int32), pa.date32()),
        "ingested_at": pa.array(np.full(n, START_US + DAY_US), pa.timestamp("us", tz="UTC")),
        "run_id": pa.array(["3f1c2a9e-5b7d-4e0f-9a61-2d8c4b7e1f03"] * n),
    }
    return pa.table(columns, schema=TIMESERIES.schema)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_once(path: Path, data: pa.Table, options: WriterProperties | None) -> float:
    """CPU seconds of one append into a fresh table (created, as the sink does, before the clock starts)."""
    shutil.rmtree(path, ignore_errors=True)
    DeltaTable.create(path, TIMESERIES.schema, partition_by=list(TIMESERIES.partition_by))
    started = cpu()
    write_deltalake(path, data, mode="append", writer_properties=options)
    return cpu() - started


def files_and_stats(path: Path) -> tuple[int, int, bool]:
    """(files, bytes, every file has min/max of every key) of the table at `path`."""
    actions = pa.table(DeltaTable(path).get_add_actions(flatten=True))
    keyed = all(
        f"{side}.{key}" in actions.column_names and actions[f"{side}.{key}"].null_count == 0
        for key in TIMESERIES.keys
        for side in ("min", "max")
    )
    return actions.num_rows, sum(actions["size_bytes"].to_pylist()), keyed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tags", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is kept")
    args = parser.parse_args()
    data = realistic_batch(args.rows, args.tags)
    variants: dict[str, WriterProperties | None] = {
        "delta-rs defaults (baseline)": None,
        "sink's options (writer_properties)": writer_properties(TIMESERIES),
        "sink's options with Snappy": WriterProperties(
            compression="SNAPPY", column_properties=writer_properties(TIMESERIES).column_properties
        ),
    }
    best = dict.fromkeys(variants, float("inf"))
    sizes: dict[str, tuple[int, int, bool]] = {}
    with tempfile.TemporaryDirectory(prefix="lake-write-bench-") as tmp:
        for _ in range(args.rounds):
            for label, options in variants.items():
                path = Path(tmp) / "t"
                best[label] = min(best[label], write_once(path, data, options))
                sizes[label] = files_and_stats(path)
    load = os.getloadavg()[0]
    print(
        f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores, load {load:.1f}; "
        f"pi_timeseries append of {data.num_rows:,} rows ({args.tags:,} tags), best of {args.rounds}"
    )
    baseline = best["delta-rs defaults (baseline)"]
    for label, seconds in best.items():
        files, size, keyed = sizes[label]
        print(
            f"{label:36s} {seconds / data.num_rows * 1e6:6.3f} µs CPU/row  ×{baseline / seconds:5.2f}  "
            f"{size / 1e6:7.1f} MB in {files} file(s)  key statistics: {'yes' if keyed else 'MISSING'}"
        )


if __name__ == "__main__":
    main()

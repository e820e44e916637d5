"""The Spark path beside the embedded one: values/s of `PILakeflowConnector` on local Spark + Delta Lake
(`local[2]` as in the tests; timeseries units fetched on the executors, `performance.distributed: true`) and on delta-rs (units on the
driver's thread pool), for the same simulator window, in one run, with the ratio.

Both read the same simulator (its own process) and write fresh tables; a small warm-up run per engine first
(JVM JIT, imports, table creation paths) so the measured runs compare steady states. Needs the Delta jars
(`bash tools/spark-jars.sh`) and pyspark (`requirements-test.txt`).

    .venv/bin/python benchmarks/spark_extract.py                        # 200 tags × 6 h
    .venv/bin/python benchmarks/spark_extract.py --tags 500 --hours 12
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.sparksession: the one Delta session setup

from osipi_connector import PILakeflowConnector
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.sink import Location, Sink
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.piwebapi.pitime import format_datetime
from pi_extract import NOW, start_simulator


def config(url: str, root: Path, hours: float, args: argparse.Namespace, distributed: bool) -> dict:
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "name_filter": "*",
            "mode": "full",
            "start_date": format_datetime(NOW - timedelta(hours=hours)),
            "end_date": format_datetime(NOW),
            "batch_size": args.batch_size,
            "max_count_per_tag": 150_000,
        },
        "performance": {"workers": args.workers, "max_window": args.max_window, "distributed": distributed},
        "local": {"lakehouse_root": str(root)},
    }


def timed_run(sink: Sink, cfg: dict) -> dict:
    started = time.perf_counter()
    result = PILakeflowConnector(cfg, sink=sink).run(datasets=["tags", "timeseries"])
    seconds = time.perf_counter() - started
    if result.status != "success":
        raise SystemExit(f"{sink.engine} run {result.status}: {result.errors}")
    rows = result.rows.get("pi_timeseries", 0)
    return {"rows": rows, "seconds": seconds, "values_per_s": rows / seconds, "tags": result.tags_requested}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=200)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--batch-size", type=int, default=50, help="extraction.batch_size (tags per unit)")
    parser.add_argument("--workers", type=int, default=2, help="performance.workers of the embedded path")
    parser.add_argument("--max-window", default="3h", help="performance.max_window")
    args = parser.parse_args()

    from tests.sparksession import delta_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    proc, url = start_simulator(args.tags)
    with tempfile.TemporaryDirectory(prefix="spark-extract-bench-") as tmp:
        spark = delta_session(Path(tmp) / "spark")
        load_before = os.getloadavg()[0]
        try:

            def spark_sink() -> SparkSink:
                run = uuid.uuid4().hex[:8]
                return SparkSink(spark, Location("spark_catalog", f"bronze_{run}", f"checkpoints_{run}"))

            def delta_sink() -> DeltaSink:
                return DeltaSink(Path(tmp) / uuid.uuid4().hex)

            for make, distributed in ((spark_sink, True), (delta_sink, False)):  # warm-up: 1 h window
                timed_run(make(), config(url, Path(tmp), 1, args, distributed))
            embedded = timed_run(delta_sink(), config(url, Path(tmp), args.hours, args, False))
            on_spark = timed_run(spark_sink(), config(url, Path(tmp), args.hours, args, True))
        finally:
            spark.stop()
            proc.terminate()
            proc.wait(10)
    if embedded["rows"] != on_spark["rows"]:
        raise SystemExit(f"the engines wrote different row counts: {embedded['rows']} vs {on_spark['rows']}")
    window = f"{embedded['tags']} tags × {args.hours:g} h = {embedded['rows']:,} values"
    print(f"window: {window} (batch_size {args.batch_size}, max_window {args.max_window})")
    print(
        f"embedded (delta-rs, {args.workers} threads): {embedded['seconds']:.1f} s = "
        f"{embedded['values_per_s']:,.0f} values/s"
    )
    print(
        f"spark (local[2] + Delta, distributed units): "
        f"{on_spark['seconds']:.1f} s = {on_spark['values_per_s']:,.0f} values/s"
    )
    print(f"ratio spark / embedded: {on_spark['values_per_s'] / embedded['values_per_s']:.2f}")
    print(f"load average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()

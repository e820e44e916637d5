"""A simulated day of hourly incremental runs (issue 12): what each run costs, its memory, and whether the day
ends where one full run ends.

Users live in the hourly run of every tag into tables that already hold the day. This script runs the
connector once per simulated hour, the simulator's clock (`--now`) advancing 01:00, 02:00, ... 00:00 of the
next day (`--hours`, default 24), config `mode: incremental`, `lookback: 10m`, `workers: 4`, no AF / event
frames, late and edited data on (the simulator's 10 % late tags and 1 % edited values), their delays inside
the lookback (a late value appears 1 min .. 0.9 × lookback after its timestamp, an edit 0.5 × lookback after
it) so that every value the server ends up serving is one an hourly run can see.

Before the day, in the same process: the full-load rate — one `mode: full` run over the whole day at the
final "now" for `--check-tags` tags (a contiguous slice of the WebIDs) into empty tables. Per run: wall
seconds, values, values/s, peak RSS, CPU seconds of the connector and of the simulator (they share the
cores), the 1-minute load average, the cost per value against run 1 and the rate against the full load, and
what the sink's commits did. After the day: the issue's targets (every run ≤ 60 s and ≤ 1.5 GB, the last run
within 1.2× run 2 per value) and the check — the day's table holds, for the checked tags and every timestamp
older than the lookback horizon, exactly the full run's rows (every column but ingested_at / run_id).

    .venv/bin/python benchmarks/pi_hourly.py                          # 3,000 tags, 24 runs (CI-sized)
    .venv/bin/python benchmarks/pi_hourly.py --tags 30000             # the plant-scale target
    .venv/bin/python benchmarks/pi_hourly.py --engine spark --tags 300 --hours 6   # Delta on local Spark
    .venv/bin/python benchmarks/pi_hourly.py --src /tmp/old/src       # the same day with another source tree
    .venv/bin/python benchmarks/pi_hourly.py --profile 3              # cProfile of run 3 (main thread, top 25)
    .venv/bin/python benchmarks/pi_hourly.py --tracemalloc 3          # Python allocations of run 3
    .venv/bin/python benchmarks/pi_hourly.py --py-spy 3               # py-spy of run 3: connector and simulator

delta engine (delta-rs): each run is its own connector process, as an hourly job is, so its peak RSS is its
own. spark engine: the real local Delta-on-Spark session (`local[2]`, tests/sparksession.py; jars from
`bash tools/spark-jars.sh`), units fetched on the executors (`performance.distributed: true`), MERGE in
Spark SQL; the runs share the session as a cluster's job runs do, and peak RSS is summed over the driver,
its JVM and the Python workers, reset before each run. Each run starts its own simulator on 127.0.0.1 (same
seed, so the hours agree); its start-up is not counted.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import requests

from osipi_connector.config import PerformanceConfig, parse_duration
from osipi_connector.lake.schemas import TIMESERIES
from pi_extract import cpu_seconds, start_simulator

DAY = datetime(2025, 3, 1, tzinfo=timezone.utc)
HERE = Path(__file__).resolve()
TARGET_SECONDS, TARGET_MB, TARGET_DRIFT = 60.0, 1536.0, 1.2  # issue 12, 30,000 tags on this 2-core machine
COMPARED = [name for name in TIMESERIES.schema.names if name not in ("ingested_at", "run_id")]
CHECK_CHUNK = 100  # tags compared at a time: memory bounded whatever --check-tags is


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def peak_rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def simulator_options(lookback: timedelta) -> list[str]:
    """Late values and edits inside the lookback: an hourly run can see every value the server serves."""
    seconds = lookback.total_seconds()
    late = (min(60.0, 0.5 * seconds), 0.9 * seconds)
    return ["--late-delay", f"{late[0]:g}", f"{late[1]:g}", "--edit-delay", f"{0.5 * seconds:g}"]


def connector_config(url: str, root: Path, args: argparse.Namespace, full: dict | None = None) -> dict:
    """The hourly job's config; `full` = {"tags": WebIDs, "until": ISO time}: one full run over the day instead."""
    extraction: dict[str, Any] = {
        "mode": "incremental",
        "start_date": iso(DAY),  # a tag seen for the first time starts at midnight
        "lookback": args.lookback,
        "batch_size": args.batch_size,
        "max_count_per_tag": 150_000,
    }
    if full:
        extraction |= {"mode": "full", "tags": full["tags"], "end_date": full["until"]}
    else:
        extraction["name_filter"] = "*"
    performance: dict[str, Any] = {"workers": args.workers, "commit_rows": args.commit_rows}
    if args.engine == "spark":
        performance["distributed"] = True
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": extraction,
        "performance": performance,
        "local": {"lakehouse_root": str(root)},
    }


# --- delta engine: one run per child process ------------------------------------------------------------------
def one_run(url: str, root: Path, args: argparse.Namespace, full: dict | None) -> dict:
    """One run of the connector (the hourly job, or the full reference run); the sink is timed, not changed."""
    from osipi_connector import PILakeflowConnector, executor
    from osipi_connector.lake.delta_sink import DeltaSink

    counts = {"sink_seconds": 0.0, "watermark_seconds": 0.0, "fetch_wait": 0.0}

    class TimedSink(DeltaSink):
        def merge(self, spec, data, *more, **options):  # forwards whatever the sink's signature is
            started = time.perf_counter()
            try:
                return super().merge(spec, data, *more, **options)
            finally:
                counts["sink_seconds"] += time.perf_counter() - started
                if spec.name == "pi_watermarks":
                    counts["watermark_seconds"] += time.perf_counter() - started

    def timed_wait(*a, **k):  # the run's main thread waiting for the next fetched unit
        started = time.perf_counter()
        try:
            return wait(*a, **k)
        finally:
            counts["fetch_wait"] += time.perf_counter() - started

    wait, executor.wait = executor.wait, timed_wait

    before = table_version(root)
    profiler = cProfile.Profile() if args.child_profile == "cprofile" else None
    if args.child_profile == "tracemalloc":
        tracemalloc.start(25)
    cpu, started = cpu_seconds(), time.perf_counter()
    if profiler:
        profiler.enable()
    datasets = ["timeseries"] if full else ["tags", "timeseries"]
    result = PILakeflowConnector(connector_config(url, root, args, full), sink=TimedSink(root)).run(datasets=datasets)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    assert result.status == "success", result.errors
    out = {
        "values": result.rows.get("pi_timeseries", 0),
        "seconds": seconds,
        "peak_mb": peak_rss_mb(),
        "cpu": cpu_seconds() - cpu,
        **counts,
    }
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        out["profile"] = text.getvalue()
    if args.child_profile == "tracemalloc":
        current, peak = tracemalloc.get_traced_memory()
        top = tracemalloc.take_snapshot().statistics("lineno")[:10]
        out["profile"] = (
            f"tracemalloc: peak {peak / 2**20:,.0f} MiB, still held {current / 2**20:,.0f} MiB\n"
            + "\n".join(str(s) for s in top)
        )
    out |= table_shape(root, before)
    out["shape"] += (
        f"; main thread waited {counts['fetch_wait']:.1f} s for fetches, watermarks {counts['watermark_seconds']:.1f} s"
    )
    return out


def timeseries_path(root: Path) -> Path:
    return root / "main" / "bronze" / "pi_timeseries"


def table_version(root: Path) -> int:
    from deltalake import DeltaTable

    return DeltaTable(timeseries_path(root)).version() if DeltaTable.is_deltatable(str(timeseries_path(root))) else -1


def table_shape(root: Path, before: int) -> dict:
    """Rows and files of pi_timeseries after the run, and what the run's commits did (from the Delta log)."""
    from deltalake import DeltaTable

    table = DeltaTable(timeseries_path(root))
    actions = table.get_add_actions(flatten=True)
    commits = [c for c in table.history() if c["version"] > before]
    merges = [c.get("operationMetrics", {}) for c in commits if c["operation"] == "MERGE"]
    return {
        "table_rows": sum(actions.column("num_records").to_pylist()),
        "table_files": actions.num_rows,
        "shape": f"{sum(c['operation'] == 'WRITE' for c in commits)}/{len(merges)} "
        f"{sum(m.get('num_source_rows', 0) for m in merges):,} rows MERGEd, "
        f"{sum(m.get('num_target_files_removed', 0) for m in merges)} files rewritten "
        f"({sum(m.get('num_target_rows_copied', 0) for m in merges):,} rows copied)",
    }


class DeltaEngine:
    """Runs of the connector on delta-rs, each in a fresh process: its peak RSS is its own, as an hourly job's."""

    name = "delta-rs (embedded, one process per run)"

    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args, self.root, self.reference = args, root / "day", root / "full"

    def run(self, url: str, run: int | None, full: dict | None = None) -> dict:
        args = self.args
        root = self.reference if full else self.root
        command = [sys.executable, str(HERE), "--child-url", url, "--child-root", str(root)]
        command += ["--lookback", args.lookback, "--workers", str(args.workers), "--batch-size", str(args.batch_size)]
        command += ["--commit-rows", str(args.commit_rows)]
        if full:
            command += ["--child-full", orjson.dumps(full).decode()]
        if run is not None and args.profile == run:
            command += ["--child-profile", "cprofile"]
        if run is not None and args.tracemalloc == run:
            command += ["--child-profile", "tracemalloc"]
        spy = run is not None and args.py_spy == run
        if spy:
            command = [*py_spy(args, f"run{run}-connector"), "--", *command]
        env = dict(os.environ)
        if args.src:
            env["PYTHONPATH"] = os.pathsep.join([str(Path(args.src).resolve()), str(HERE.parent)])
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode:
            raise SystemExit(f"run failed:\n{done.stderr[-4000:]}")
        return orjson.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])

    def check(self, webids: list[str], horizon: datetime) -> tuple[int, str | None]:
        """(rows compared, first difference or None): the day's table against the full run's, for `webids`
        and timestamps before `horizon`, CHECK_CHUNK tags at a time."""
        from deltalake import DeltaTable, QueryBuilder

        compared, schema = 0, pa.schema([TIMESERIES.schema.field(c) for c in COMPARED])
        tables = {"day": DeltaTable(timeseries_path(self.root)), "full": DeltaTable(timeseries_path(self.reference))}
        for first in range(0, len(webids), CHECK_CHUNK):
            chunk = webids[first : first + CHECK_CHUNK]
            rows = {}
            for name, table in tables.items():
                query = QueryBuilder().register("t", table)
                sql = (
                    f"SELECT {', '.join(COMPARED)} FROM t WHERE tag_webid >= '{chunk[0]}' AND tag_webid <= '{chunk[-1]}'"
                    " ORDER BY tag_webid, timestamp, value_seq"
                )
                got = pa.RecordBatchReader.from_stream(query.execute(sql)).read_all().cast(schema)
                rows[name] = got.filter(
                    pc.less(got["timestamp"], pa.scalar(horizon, got.schema.field("timestamp").type))
                )
            difference = first_difference(rows["day"], rows["full"])
            if difference:
                return compared, difference
            compared += rows["day"].num_rows
        return compared, None

    def close(self) -> None:
        pass


def first_difference(day: pa.Table, full: pa.Table) -> str | None:
    """None when both (sorted) tables are equal row for row, NaN equal to NaN; else what differs first."""
    if day.num_rows != full.num_rows:
        return f"{day.num_rows:,} rows in the day's table, {full.num_rows:,} in the full run's"
    for name in COMPARED:
        a, b = day[name], full[name]
        same = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(pc.is_null(a), pc.is_null(b)))
        if pa.types.is_floating(a.type):
            same = pc.or_(same, pc.fill_null(pc.and_(pc.is_nan(a), pc.is_nan(b)), False))
        if not pc.all(same).as_py():
            row = pc.index(same, False).as_py()
            return f"row {row}: day {day.slice(row, 1).to_pylist()[0]} vs full {full.slice(row, 1).to_pylist()[0]}"
    return None


# --- spark engine: one session, runs in process -------------------------------------------------------------------
class SparkEngine:
    """Runs of the connector on the local Delta-on-Spark session (one session for the day, as on a cluster)."""

    name = "Spark local[2] + Delta (distributed units, MERGE in Spark SQL)"

    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        sys.path.insert(0, str(HERE.parents[1]))  # tests.sparksession: the one Delta session setup
        from tests.sparksession import delta_session

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        self.args, self.root = args, root
        self.spark = delta_session(root / "spark")
        self.spark.sparkContext.setLogLevel("ERROR")  # not a WARN line per locally checkpointed RDD
        suffix = uuid.uuid4().hex[:8]
        self.day = self._sink(f"bronze_{suffix}", f"checkpoints_{suffix}")
        self.reference = self._sink(f"full_{suffix}", f"full_checkpoints_{suffix}")

    def _sink(self, schema: str, checkpoints: str):
        from osipi_connector.lake.sink import Location
        from osipi_connector.lake.spark_sink import SparkSink

        return SparkSink(self.spark, Location("spark_catalog", schema, checkpoints))

    def run(self, url: str, run: int | None, full: dict | None = None) -> dict:
        from osipi_connector import PILakeflowConnector

        family = [os.getpid(), *descendants(os.getpid())]
        for pid in family:  # peak RSS from here on (Linux: 5 resets VmHWM)
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        sink = self.reference if full else self.day
        before = self._version(sink)
        cpu, started = sum(cpu_seconds(pid) for pid in family), time.perf_counter()
        datasets = ["timeseries"] if full else ["tags", "timeseries"]
        result = PILakeflowConnector(connector_config(url, self.root, self.args, full), sink=sink).run(
            datasets=datasets
        )
        seconds = time.perf_counter() - started
        if result.status != "success":
            raise SystemExit(f"spark run {result.status}: {result.errors}")
        family = [os.getpid(), *descendants(os.getpid())]
        table = sink.table_name(TIMESERIES)
        files = self.spark.sql(f"DESCRIBE DETAIL {table}").collect()[0]["numFiles"]
        return {
            "values": result.rows.get("pi_timeseries", 0),
            "seconds": seconds,
            "peak_mb": sum(peak_rss_mb(pid) for pid in family if Path(f"/proc/{pid}").exists()),
            "cpu": sum(cpu_seconds(pid) for pid in family if Path(f"/proc/{pid}").exists()) - cpu,
            "sink_seconds": float("nan"),
            "table_rows": self.spark.table(table).count(),
            "table_files": files,
            "shape": self._shape(sink, before),
        }

    def _version(self, sink) -> int:
        if not sink.exists(TIMESERIES):
            return -1
        return int(self.spark.sql(f"DESCRIBE HISTORY {sink.table_name(TIMESERIES)} LIMIT 1").collect()[0]["version"])

    def _shape(self, sink, before: int) -> str:
        """What the run's MERGEs into pi_timeseries did, from DESCRIBE HISTORY's operationMetrics."""
        history = self.spark.sql(f"DESCRIBE HISTORY {sink.table_name(TIMESERIES)}")
        merges = [
            {k: int(v) for k, v in (r["operationMetrics"] or {}).items() if v.isdigit()}
            for r in history.where(f"version > {before} AND operation = 'MERGE'").collect()
        ]
        total = {k: sum(m.get(k, 0) for m in merges) for k in merges[0]} if merges else {}
        return (
            f"0/{len(merges)} {total.get('numSourceRows', 0):,} rows MERGEd "
            f"({total.get('numTargetRowsInserted', 0):,} inserted, {total.get('numTargetRowsUpdated', 0):,} updated), "
            f"{total.get('numTargetFilesRemoved', 0)} files rewritten ({total.get('numTargetRowsCopied', 0):,} rows "
            f"copied), {total.get('numTargetFilesAdded', 0)} files added"
        )

    def check(self, webids: list[str], horizon: datetime) -> tuple[int, str | None]:
        """Both directions of EXCEPT ALL over the checked rows (Spark's set operations: NaN equals NaN)."""
        wanted = f"tag_webid IN ({', '.join(repr(w) for w in webids)}) AND timestamp < TIMESTAMP '{iso(horizon)}'"
        day, full = (
            f"SELECT {', '.join(COMPARED)} FROM {sink.table_name(TIMESERIES)} WHERE {wanted}"
            for sink in (self.day, self.reference)
        )
        count = self.spark.sql(f"SELECT count(*) AS n FROM ({day})").collect()[0]["n"]
        extra = self.spark.sql(f"SELECT count(*) AS n FROM ({day} EXCEPT ALL {full})").collect()[0]["n"]
        missing = self.spark.sql(f"SELECT count(*) AS n FROM ({full} EXCEPT ALL {day})").collect()[0]["n"]
        if extra or missing:
            return count, f"{extra:,} rows only in the day's table, {missing:,} only in the full run's"
        return count, None

    def close(self) -> None:
        self.spark.stop()


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Spark's JVM, its Python daemon and workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children.get(child, [])
    return out


# --- py-spy: where a run's time goes, connector and simulator -------------------------------------------------
def py_spy(args: argparse.Namespace, name: str) -> list[str]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = Path(args.profile_dir) / f"pi_hourly-{name}.txt"
    return [exe, "record", "--format", "raw", "--rate", "50", "--threads", "--nonblocking", "-o", str(out)]


def spy_summary(path: Path, top: int = 20) -> str:
    """The hottest frames of a py-spy raw (collapsed) profile: inclusive share, then own share."""
    own, inclusive, total = Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, n = stack.split(";"), int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{path.name}: {total} samples"]
    lines += [f"  {n / total:6.1%} incl  {frame[:140]}" for frame, n in inclusive.most_common(top)]
    lines += [f"  {n / total:6.1%} own   {frame[:140]}" for frame, n in own.most_common(top)]
    return "\n".join(lines)


# --- the day -------------------------------------------------------------------------------------------------------
def sample_webids(url: str, tags: int, count: int) -> list[str]:
    """`count` WebIDs from the middle of the server's points in WebID order (a contiguous key range)."""
    http = requests.Session()
    server = http.get(f"{url}/dataservers").json()["Items"][0]["WebId"]
    params = {"maxCount": tags, "selectedFields": "Items.WebId"}
    webids = sorted(p["WebId"] for p in http.get(f"{url}/dataservers/{server}/points", params=params).json()["Items"])
    first = max(0, (len(webids) - count) // 2)
    return webids[first : first + count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=3000)
    parser.add_argument("--hours", type=int, default=24, help="hourly runs, the first at 01:00 (default 24)")
    parser.add_argument("--engine", choices=["delta", "spark"], default="delta")
    parser.add_argument("--lookback", default="10m", help="extraction.lookback (default 10m)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--commit-rows", type=int, default=PerformanceConfig().commit_rows)
    parser.add_argument(
        "--check-tags", type=int, default=1000, help="tags in the full run and the check (default 1000; 0: no check)"
    )
    parser.add_argument("--src", help="run the connector from this source tree (delta engine; e.g. an older src)")
    parser.add_argument("--root", help="keep the tables here (default: a temporary directory)")
    parser.add_argument("--profile", type=int, metavar="RUN", help="cProfile this run (delta engine)")
    parser.add_argument("--tracemalloc", type=int, metavar="RUN", help="trace Python allocations of this run")
    parser.add_argument("--py-spy", type=int, metavar="RUN", help="py-spy this run's connector and simulator")
    parser.add_argument("--profile-dir", default=".", help="where --py-spy writes its raw profiles (default .)")
    parser.add_argument("--child-url", help=argparse.SUPPRESS)
    parser.add_argument("--child-root", help=argparse.SUPPRESS)
    parser.add_argument("--child-full", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_url:
        logging.basicConfig(level=logging.WARNING)  # a failed dataset's traceback reaches the parent's report
        full = orjson.loads(args.child_full) if args.child_full else None
        print(orjson.dumps(one_run(args.child_url, Path(args.child_root), args, full)).decode())
        return
    with tempfile.TemporaryDirectory(prefix="pi-hourly-") as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        engine = SparkEngine(args, root) if args.engine == "spark" else DeltaEngine(args, root)
        try:
            day(engine, args)
        finally:
            engine.close()


def day(engine: DeltaEngine | SparkEngine, args: argparse.Namespace) -> None:
    lookback = parse_duration(args.lookback)
    options = simulator_options(lookback)
    final = DAY + timedelta(hours=args.hours)
    print(
        f"{args.tags:,} tags, {args.hours} hourly runs from {iso(DAY)}, lookback {args.lookback}, workers "
        f"{args.workers}, engine {engine.name}, source: {args.src or 'this tree'}; simulator {' '.join(options)}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start",
        flush=True,
    )
    full: dict | None = None
    full_rate = 0.0
    if args.check_tags:
        proc, url = start_simulator(args.tags, final, *options)
        try:
            full = {"tags": sample_webids(url, args.tags, args.check_tags), "until": iso(final)}
            load = os.getloadavg()[0]
            reference = engine.run(url, None, full)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        full_rate = reference["values"] / reference["seconds"]
        print(
            f"full load (the check's reference): {len(full['tags']):,} tags × {args.hours} h = "
            f"{reference['values']:,} values in {reference['seconds']:.1f} s = {full_rate:,.0f} values/s, "
            f"peak RSS {reference['peak_mb']:,.0f} MB, load {load:.1f}",
            flush=True,
        )
    print(
        "run  now                   seconds      values   values/s  vs run 1  vs full  peak RSS  CPU conn/sim   load"
        "   sink s  table rows  files  appends/MERGEs"
    )
    runs = []
    for hour in range(1, args.hours + 1):
        now = DAY + timedelta(hours=hour)
        proc, url = start_simulator(args.tags, now, *options)
        spy = None
        if args.py_spy == hour:
            spy = subprocess.Popen([*py_spy(args, f"run{hour}-simulator"), "--pid", str(proc.pid)])
        try:
            sim_cpu = cpu_seconds(proc.pid)
            run = engine.run(url, hour)
            run["sim_cpu"] = cpu_seconds(proc.pid) - sim_cpu
        finally:
            if spy:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=30)
            proc.terminate()
            proc.wait(timeout=10)
        run["load"] = os.getloadavg()[0]
        runs.append(run)
        cost = run["seconds"] / max(run["values"], 1)
        rate = run["values"] / run["seconds"]
        cpu = f"{run['cpu']:.1f}/{run['sim_cpu']:.1f} s"
        sink = "-" if run["sink_seconds"] != run["sink_seconds"] else f"{run['sink_seconds']:.1f}"  # NaN: not timed
        versus_full = f"{rate / full_rate:>7.2f}" if full else "      -"
        print(
            f"{hour:>3}  {iso(now)}  {run['seconds']:>7.1f}  {run['values']:>10,}  {rate:>9,.0f}  "
            f"{cost / (runs[0]['seconds'] / max(runs[0]['values'], 1)):>8.2f}  {versus_full}  "
            f"{run['peak_mb']:>5,.0f} MB  {cpu:>12}  {run['load']:>5.1f}  "
            f"{sink:>7}  {run['table_rows']:>10,}  {run['table_files']:>5}  {run['shape']}",
            flush=True,
        )
        if "profile" in run:
            print(run["profile"])
        if spy:
            for name in ("connector", "simulator"):
                print(spy_summary(Path(args.profile_dir) / f"pi_hourly-run{hour}-{name}.txt"))
    summary(runs)
    if full:
        horizon = final - lookback
        compared, difference = engine.check(full["tags"], horizon)
        if difference:
            raise SystemExit(f"check FAILED: the day's table differs from one full run: {difference}")
        print(
            f"check: identical row for row to one full run at {iso(final)}: {compared:,} rows of "
            f"{len(full['tags']):,} tags, every timestamp before {iso(horizon)} (the lookback horizon)"
        )


def summary(runs: list[dict]) -> None:
    cost = [r["seconds"] / max(r["values"], 1) for r in runs]
    line = f"steady-state ratio (seconds per value): last / run 1 {cost[-1] / cost[0]:.2f}"
    drift = cost[-1] / cost[1] if len(runs) > 2 else None
    if drift is not None:
        line += f", last / run 2 {drift:.2f}"
    print(line)
    work = [(r["cpu"] + r["sim_cpu"]) / max(r["values"], 1) for r in runs]  # what a shared machine cannot blur
    line = f"CPU seconds (connector + simulator) per value: last / run 1 {work[-1] / work[0]:.2f}"
    if len(runs) > 2:
        line += f", last / run 2 {work[-1] / work[1]:.2f}"
    print(
        f"{line}; {sum(r['cpu'] for r in runs) / sum(r['values'] for r in runs) * 1e6:.2f} µs/value connector, "
        f"{sum(r['sim_cpu'] for r in runs) / sum(r['values'] for r in runs) * 1e6:.2f} µs/value simulator"
    )
    slowest = max(range(len(runs)), key=lambda i: runs[i]["seconds"])
    fattest = max(range(len(runs)), key=lambda i: runs[i]["peak_mb"])
    loads = [r["load"] for r in runs]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print(
        f"targets: slowest run {slowest + 1} {runs[slowest]['seconds']:.1f} s (≤ {TARGET_SECONDS:.0f} s: "
        f"{verdict(runs[slowest]['seconds'] <= TARGET_SECONDS)}); peak RSS max run {fattest + 1} "
        f"{runs[fattest]['peak_mb']:,.0f} MB (≤ {TARGET_MB:,.0f} MB: {verdict(runs[fattest]['peak_mb'] <= TARGET_MB)})"
        + (f"; last / run 2 {drift:.2f} (≤ {TARGET_DRIFT}: {verdict(drift <= TARGET_DRIFT)})" if drift else "")
        + f"; load average {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()

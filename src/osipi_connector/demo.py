"""`make demo`: a full extraction from the bundled PI Web API simulator into local Delta tables, then SQL.

The simulator runs as a separate process (its own CPU, as a real PI server would be) on a free 127.0.0.1 port
with a fixed clock, so every demo lands the same rows. The extraction is the production path — config file,
`PILakeflowConnector`, the delta-rs sink — and the "verify data" queries go through `osipi-connector sql`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from osipi_connector.cli import main as cli_main
from osipi_connector.lake.schemas import ALL_TABLES, CHANGE_MARKERS

NOW = "2025-03-01T12:00:00Z"  # the simulator's clock: a fixed "now" makes the demo reproducible
OUTPUT_ENV = "OSIPI_DEMO_LAKEHOUSE"

# the demo's one full run writes every table but the change feed's markers (incremental runs with change_feed)
DEMO_TABLES = tuple(spec for spec in ALL_TABLES if spec is not CHANGE_MARKERS)
TABLE_COUNTS = (
    " UNION ALL ".join(
        f"SELECT '{spec.layer}.{spec.name}' AS table_name, count(*) AS row_count FROM main.{spec.layer}.{spec.name}"
        for spec in DEMO_TABLES
    )
    + " ORDER BY table_name"
)
QUERIES = (
    ("Rows per table", TABLE_COUNTS),
    (
        "Values per point type (digital and string values keep their meaning)",
        """SELECT t.point_type, count(DISTINCT v.tag_webid) AS tags, count(*) AS values_,
                  min(v.timestamp) AS first_value, max(v.timestamp) AS last_value,
                  sum(CASE WHEN v.digital_state_is_system THEN 1 ELSE 0 END) AS system_states
           FROM main.bronze.pi_timeseries v JOIN main.bronze.pi_tags t ON v.tag_webid = t.tag_webid
           GROUP BY t.point_type ORDER BY values_ DESC""",
    ),
    (
        "Latest value per tag (first 10 tags)",
        """SELECT tag_name, timestamp, value, value_string, digital_state_name, good, units
           FROM (SELECT *, row_number() OVER (PARTITION BY tag_webid ORDER BY timestamp DESC, value_seq DESC) AS rn
                 FROM main.bronze.pi_timeseries) latest
           WHERE rn = 1 ORDER BY tag_name LIMIT 10""",
    ),
    (
        "Hourly summaries PI computed (first 10 rows)",
        """SELECT tag_name, interval_start, summary_type, round(value, 3) AS value, units
           FROM main.bronze.pi_summary WHERE summary_type IN ('Average', 'Maximum')
           ORDER BY tag_name, interval_start DESC, summary_type LIMIT 10""",
    ),
    (
        "AF elements per depth",
        """SELECT depth, count(*) AS elements, min(template_name) AS a_template, sum(CASE WHEN has_children
                  THEN 1 ELSE 0 END) AS with_children
           FROM main.bronze.pi_asset_hierarchy GROUP BY depth ORDER BY depth""",
    ),
    (
        "Event frames still in progress (end_time is null)",
        """SELECT event_name, template_name, severity, start_time, end_time, attributes
           FROM main.bronze.pi_event_frames WHERE is_in_progress ORDER BY start_time""",
    ),
    (
        "Watermarks: data committed up to",
        """SELECT dataset, count(*) AS items, min(high_watermark) AS oldest, max(high_watermark) AS newest,
                  sum(rows_last_run) AS rows_last_run
           FROM main.checkpoints.pi_watermarks GROUP BY dataset ORDER BY dataset""",
    ),
)


@contextlib.contextmanager
def background_simulator(tags: int, *extra_args: str, startup_timeout: float = 30.0) -> Iterator[str]:
    """`osipi-connector simulate` in a child process on a free port; yields its URL, stops it on exit.

    `extra_args` are more `simulate` flags (e.g. `--no-batch`)."""
    command = [sys.executable, "-m", "osipi_connector.cli", "simulate", "--host", "127.0.0.1", "--port", "0"]
    command += ["--tags", str(tags), "--now", NOW, "--rate-limit", "0", *extra_args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield announced_url(process, startup_timeout)
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s: a child never outlives the demo or a test."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def announced_url(process: subprocess.Popen, timeout: float) -> str:
    """The URL the simulator prints once its socket listens (`PI Web API simulator: http://...`)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if "http" in line:
                return line[line.index("http") :].strip()
        if process.poll() is not None:
            raise RuntimeError(f"the PI Web API simulator exited with status {process.returncode}")
    raise RuntimeError(f"the PI Web API simulator did not start within {timeout:.0f}s")


def extract(config_path: Path, url: str, root: Path, days: int) -> int:
    """A full extraction of the last `days` days into `root`; returns the CLI exit code (0 = success)."""
    from osipi_connector.cli import TerminalProgress
    from osipi_connector.config import load_config
    from osipi_connector.runner import PILakeflowConnector

    overrides = {"pi_web_api.url": url, "local.lakehouse_root": str(root), "extraction.start_date": f"*-{days}d"}
    config = load_config(config_path, overrides)
    with TerminalProgress(sys.stderr.isatty()) as progress:
        result = PILakeflowConnector(config, progress=progress).run(mode="full", end=NOW)
    print(f"\nfull extraction {result.status} in {result.duration_seconds:.1f}s (run {result.run_id})")
    for error in result.errors:
        print(f"  {error}")
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m osipi_connector.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(os.environ.get(OUTPUT_ENV, "./lakehouse")),
        help=f"lakehouse root (default ${OUTPUT_ENV} or ./lakehouse)",
    )
    parser.add_argument("--config", type=Path, default=Path("config/local.yaml"), help="default config/local.yaml")
    parser.add_argument("--tags", type=int, default=200, help="PI points the simulator serves (default 200)")
    parser.add_argument("--days", type=int, default=1, help="days of history to extract (default 1)")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        print(f"demo: {args.config} not found — run from the repository root or pass --config", file=sys.stderr)
        return 2
    from osipi_connector.config import ConfigError

    started = time.monotonic()
    try:
        with background_simulator(args.tags) as url:
            print(f"PI Web API simulator at {url} ({args.tags} tags, clock fixed at {NOW})")
            print(f"extracting {args.days} day(s) of recorded values, AF and event frames into {args.output}")
            code = extract(args.config, url, args.output, args.days)
    except (ConfigError, RuntimeError) as exc:  # a bad config or a simulator that did not start: say which
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    for title, query in QUERIES:
        print(f'\n== {title}\n$ osipi-connector sql --config {args.config} "{" ".join(query.split())[:100]}..."')
        sql_args = ["sql", "--config", str(args.config), "--lakehouse-root", str(args.output), query]
        try:
            cli_main(sql_args)
        except SystemExit as exc:  # a failed query is reported on stderr; the demo shows the others
            code = max(code, int(exc.code or 0))
    print(f"\ndemo finished in {time.monotonic() - started:.1f}s; tables under {args.output}/main/")
    return code


if __name__ == "__main__":
    sys.exit(main())

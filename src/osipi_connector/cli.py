"""`osipi-connector`: the command line. Arguments only; the work lives in the modules it calls."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from osipi_connector import __version__
from osipi_connector.config import DATASETS

if TYPE_CHECKING:
    from tqdm import tqdm

    from osipi_connector.config import ConnectorConfig
    from osipi_connector.lake.sink import Location
    from osipi_connector.runner import Progress


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="serve a deterministic PI Web API simulator",
        description="Serve a synthetic PI System (data server, AF, event frames) at http(s)://HOST:PORT/piwebapi.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8443, help="port to listen on (default 8443; 0 picks a free one)")
    p.add_argument("--tags", type=int, default=1000, help="number of PI points (default 1000; generated lazily)")
    p.add_argument("--seed", type=int, default=42, help="seed: same seed and --now give the same bytes")
    p.add_argument(
        "--auth",
        choices=["none", "basic", "bearer", "kerberos"],
        default="none",
        help="authentication (default none; kerberos reads the service key from the keytab in KRB5_KTNAME)",
    )
    p.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD", help="basic-auth user (repeatable)")
    p.add_argument(
        "--client", action="append", default=[], metavar="ID:SECRET", help="OAuth client for bearer auth (repeatable)"
    )
    p.add_argument("--token-ttl", type=float, default=3600.0, help="bearer token lifetime in seconds (default 3600)")
    p.add_argument("--now", help="fix the clock (ISO-8601, e.g. 2025-01-01T00:00:00Z); default: wall clock")
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--max-items", type=int, default=150_000, help="MaxReturnedItemsPerCall (default 150000)")
    p.add_argument("--rate-limit", type=int, default=1000, help="requests/s per client IP before 429 (0 disables)")
    p.add_argument(
        "--no-batch", dest="batch", action="store_false", help="disable the batch controller: POST /batch answers 405"
    )
    p.add_argument("--late-share", type=float, default=0.1, help="share of tags whose data arrives late (default 0.1)")
    p.add_argument("--edit-share", type=float, default=0.01, help="share of values edited later (default 0.01)")
    p.add_argument("--error-rate", type=float, default=0.0, help="probability a request starts a 5xx burst")
    p.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    p.add_argument("--drop-rate", type=float, default=0.0, help="probability a connection is dropped")
    p.add_argument("--truncate-rate", type=float, default=0.0, help="probability a body is cut short")
    p.add_argument("--fault-seed", type=int, default=0, help="seed for the fault generator")
    p.add_argument(
        "--login-page", action="store_true", help="answer every request with an HTML login page (a portal in front)"
    )
    p.set_defaults(func=_simulate)


def _pairs(values: list[str], flag: str, default: dict[str, str]) -> dict[str, str]:
    if not values:
        return default
    out = {}
    for item in values:
        name, sep, secret = item.partition(":")
        if not sep or not name:
            raise SystemExit(f"{flag} expects NAME:SECRET, got {item!r}")
        out[name] = secret
    return out


def _simulate(args: argparse.Namespace) -> int:
    from osipi_connector.piwebapi.pitime import parse_iso
    from osipi_connector.simulator.config import FaultConfig, SimConfig
    from osipi_connector.simulator.negotiate import KerberosSetupError
    from osipi_connector.simulator.server import serve

    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither.")
    defaults = SimConfig()
    config = SimConfig(
        seed=args.seed,
        tags=args.tags,
        now=parse_iso(args.now) if args.now else None,
        auth=args.auth,
        users=_pairs(args.user, "--user", defaults.users),
        clients=_pairs(args.client, "--client", defaults.clients),
        token_ttl_s=args.token_ttl,
        max_returned_items_per_call=args.max_items,
        rate_limit_max_requests=args.rate_limit,
        batch_enabled=args.batch,
        late_share=args.late_share,
        edit_share=args.edit_share,
        login_page=args.login_page,
        faults=FaultConfig(
            error_rate=args.error_rate,
            latency_ms=args.latency_ms,
            drop_rate=args.drop_rate,
            truncate_rate=args.truncate_rate,
            seed=args.fault_seed,
        ),
    )
    try:
        serve(config, args.host, args.port, args.tls_cert, args.tls_key)
    except KerberosSetupError as exc:
        raise SystemExit(f"osipi-connector simulate: {exc}") from None
    return 0


# --- run / sql / maintain: the connector itself --------------------------------------------------------
EXIT_OK, EXIT_PARTIAL, EXIT_FAILED = 0, 1, 2


def _add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, metavar="FILE", help="connector YAML (see config/connector_config.yaml)")
    p.add_argument("--catalog", help="override unity_catalog.catalog")
    p.add_argument("--schema", help="override unity_catalog.schema (bronze tables)")
    p.add_argument("--checkpoint-schema", help="override unity_catalog.checkpoint_schema (watermarks, run metrics)")
    p.add_argument("--lakehouse-root", metavar="DIR", help="override local.lakehouse_root (local Delta tables)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details and tracebacks")


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="extract PI data into the bronze Delta tables",
        description="One extraction run: tags, AF hierarchy, timeseries and event frames as configured. "
        "Exit status 0 = success, 1 = partial (some tags or datasets failed; see the run-metrics table), "
        "2 = failed or invalid configuration.",
    )
    _add_config_options(p)
    p.add_argument("--mode", choices=["incremental", "full", "backfill"], help="override extraction.mode")
    p.add_argument(
        "--start", type=_time_text, metavar="T", help="window start: ISO-8601 or PI time (*-7d); overrides start_date"
    )
    p.add_argument(
        "--end", type=_time_text, metavar="T", help="window end: ISO-8601 or PI time (*); overrides end_date"
    )
    p.add_argument(
        "--datasets",
        type=_datasets,
        metavar="LIST",
        help=f"comma-separated subset of {','.join(DATASETS)} (default: all the config enables)",
    )
    p.add_argument("--pi-web-api-url", metavar="URL", help="override pi_web_api.url")
    p.add_argument("--secrets-scope", metavar="S", help="override pi_web_api.secrets_scope (Databricks secrets)")
    p.add_argument(
        "--af-database", metavar="PATH", help=r"override extraction.af_database (\\server\database or WebID)"
    )
    p.add_argument("--tag-name-filter", metavar="F", help="override extraction.name_filter (* and ? wildcards)")
    p.add_argument("--data-server", metavar="NAME", help="override extraction.data_server (name, path or WebID)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the default when not on a terminal)")
    p.set_defaults(func=_run)


def _add_sql(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sql",
        help="query the local Delta tables with SQL",
        description="Run one SELECT over the local tables and print the result. Name tables as on Databricks "
        "(main.bronze.pi_timeseries, bronze.pi_timeseries) or plainly (pi_timeseries).",
    )
    _add_config_options(p)
    p.add_argument("query", help='e.g. "SELECT count(*) FROM bronze.pi_timeseries"')
    p.add_argument("--max-rows", type=int, default=50, help="rows printed (default 50)")
    p.set_defaults(func=_sql)


def _add_maintain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "maintain",
        help="compact, z-order and vacuum the tables",
        description="Optimize every existing table (Z-order pi_timeseries by tag_webid, timestamp) and vacuum "
        "files older than --retain-hours. Exit status 1 when a table failed (the others are still done).",
    )
    _add_config_options(p)
    p.add_argument("--retain-hours", type=int, default=168, help="vacuum retention in hours (default 168 = 7 days)")
    p.set_defaults(func=_maintain)


def _add_upgrade(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upgrade-tables",
        help="bring checkpoint tables of an earlier version to this version's layout",
        description="Partition pi_watermarks by dataset and add the pi_run_metrics columns of this version "
        "(conflict_retries, datasets, watermarks_repaired) where an earlier version created them without "
        "(docs/deployment.md). Safe to repeat; run it while no job writes.",
    )
    _add_config_options(p)
    p.set_defaults(func=_upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    from osipi_connector.config import ConfigError
    from osipi_connector.lake.upgrade import upgrade
    from osipi_connector.runner import default_sink

    try:
        config = _load(args)
    except ConfigError as exc:
        return _fail(str(exc))
    changes = upgrade(default_sink(config))
    print("\n".join(changes) if changes else "tables are up to date")
    return EXIT_OK


def _time_text(text: str) -> str:
    """Checked now, resolved by the run against the PI server's clock (relative times such as *-1d)."""
    from datetime import datetime, timezone

    from osipi_connector.piwebapi.pitime import PITimeError, parse_pi_time

    try:
        parse_pi_time(text, datetime.now(timezone.utc))
    except PITimeError as exc:
        raise argparse.ArgumentTypeError(
            f"{exc} — use ISO-8601 (2025-03-01T00:00:00Z) or PI time (*-1d, t, y)"
        ) from None
    return text


def _datasets(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown dataset(s) {unknown or [text]}; choose from {','.join(DATASETS)}")
    return names


class _BriefFormatter(logging.Formatter):
    """Warnings as one line each: the messages name what failed; tracebacks only with --verbose."""

    def formatException(self, ei: object) -> str:
        return ""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).rstrip()


def _load(args: argparse.Namespace, **extra: str | None) -> ConnectorConfig:
    """Logging set up, then the config with the command-line overrides applied (None = not given)."""
    from osipi_connector.config import load_config

    handler = logging.StreamHandler(sys.stderr)
    fmt = "%(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt) if args.verbose else _BriefFormatter(fmt))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler], force=True)

    overrides = {
        "unity_catalog.catalog": args.catalog,
        "unity_catalog.schema": args.schema,
        "unity_catalog.checkpoint_schema": args.checkpoint_schema,
        "local.lakehouse_root": args.lakehouse_root,
        **extra,
    }
    return load_config(args.config, {k: v for k, v in overrides.items() if v is not None})


def _location(config: ConnectorConfig) -> Location:
    from osipi_connector.lake.sink import Location

    uc = config.unity_catalog
    return Location(catalog=uc.catalog, schema=uc.schema_, checkpoint_schema=uc.checkpoint_schema)


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    """One line on stderr, no traceback: the message already says what to change."""
    print(f"osipi-connector: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def _sql(args: argparse.Namespace) -> int:
    from osipi_connector.config import ConfigError
    from osipi_connector.lake.sql import format_table, run_sql

    try:
        config = _load(args)
        result = run_sql(config.local.lakehouse_root, _location(config), args.query)
    except ConfigError as exc:
        return _fail(str(exc))
    except Exception as exc:  # DataFusion/Delta errors: the query or a table is wrong, not the program
        return _fail(f"{type(exc).__name__}: {exc}")
    print(format_table(result, max_rows=args.max_rows))
    return EXIT_OK


def _maintain(args: argparse.Namespace) -> int:
    from osipi_connector.config import ConfigError
    from osipi_connector.lake.maintenance import maintain
    from osipi_connector.lake.schemas import ALL_TABLES
    from osipi_connector.runner import default_sink

    try:
        config = _load(args)
    except ConfigError as exc:
        return _fail(str(exc))
    sink = default_sink(config)  # the same sink a run writes with (delta-rs locally, Spark on Databricks)
    exists = getattr(sink, "exists", lambda spec: True)
    specs = [spec for spec in ALL_TABLES if exists(spec)]
    if not specs:
        uc = config.unity_catalog
        where = f"in {uc.catalog}.{uc.schema_}" if sink.engine == "spark" else f"under {config.local.lakehouse_root}"
        return _fail(f"no tables {where} — run `osipi-connector run` first")
    failed = 0
    for result in maintain(sink, specs, retain_hours=args.retain_hours):
        failed += result.error is not None
        print(result.summary())
        if result.conflict_retries:
            print(f"  {result.conflict_retries} step(s) re-run after a concurrent run's commit (see the log)")
    return EXIT_PARTIAL if failed else EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from osipi_connector.config import ConfigError

    try:
        config = _load(
            args,
            **{
                "pi_web_api.url": args.pi_web_api_url,
                "pi_web_api.secrets_scope": args.secrets_scope,
                "extraction.af_database": args.af_database,
                "extraction.name_filter": args.tag_name_filter,
                "extraction.data_server": args.data_server,
            },
        )
    except ConfigError as exc:
        return _fail(str(exc))
    from osipi_connector.runner import PILakeflowConnector

    show = not args.no_progress and sys.stderr.isatty()
    with TerminalProgress(show) as progress:
        try:
            connector = PILakeflowConnector(config, progress=progress)
            result = connector.run(mode=args.mode, start=args.start, end=args.end, datasets=args.datasets)
        except ConfigError as exc:
            return _fail(str(exc))
        except Exception as exc:  # the run is recorded as failed in the run-metrics table; say why in one line
            return _fail(f"run failed: {type(exc).__name__}: {exc}")
    rows = ", ".join(f"{table} {count:,}" for table, count in result.rows.items()) or "no rows"
    print(f"run {result.run_id} ({result.mode}): {result.status} in {result.duration_seconds:.1f}s — {rows}")
    if result.conflict_retries:
        print(f"  {result.conflict_retries} commit(s) re-run after a concurrent writer won the race (see the log)")
    for died in result.died:
        print(f"  earlier {died}", file=sys.stderr)
    if result.watermarks_repaired:
        print(
            f"  {result.watermarks_repaired} watermark(s) were past the PI server's time: moved back to the data "
            "committed and re-read (see the log)",
            file=sys.stderr,
        )
    for error in result.errors:
        print(f"  {error}", file=sys.stderr)
    return result.exit_code


class TerminalProgress:
    """A tqdm bar per dataset fed by the runner's progress callback; a no-op off a terminal (job logs stay clean)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.stage = ""

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        if progress.stage != self.stage or self.bar is None:
            from tqdm import tqdm

            if self.bar is not None:
                self.bar.close()
            self.stage = progress.stage
            self.bar = tqdm(total=progress.total, desc=progress.stage, unit="step", file=sys.stderr)
        self.bar.total = progress.total
        self.bar.n = progress.done
        self.bar.set_postfix_str(f"{progress.rows:,} rows", refresh=False)
        self.bar.refresh()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="osipi-connector", description="PI Web API to Delta Lake connector (and its PI Web API simulator)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    _add_sql(sub)
    _add_maintain(sub)
    _add_upgrade(sub)
    _add_simulate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Returns 0 on success and RAISES `SystemExit(code)` otherwise (1 partial, 2 failed or invalid config).

    A Databricks `python_wheel_task` calls the entry point as a function and ignores what it returns (the
    CLI's wheel trampoline does `entry_point.load()()`): only an exception fails the task, so failure must
    raise or a failed run would be reported green and no on_failure alert would fire. A console script
    (`sys.exit(main())`) sees the same exit codes either way."""
    args = build_parser().parse_args(argv)
    code = args.func(args)
    if code:
        raise SystemExit(code)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

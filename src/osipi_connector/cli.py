"""`osipi-connector`: the command line. Arguments only; the work lives in the modules it calls."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from osipi_connector import __version__


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
    p.add_argument("--auth", choices=["none", "basic", "bearer"], default="none", help="authentication (default none)")
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
        faults=FaultConfig(
            error_rate=args.error_rate,
            latency_ms=args.latency_ms,
            drop_rate=args.drop_rate,
            truncate_rate=args.truncate_rate,
            seed=args.fault_seed,
        ),
    )
    serve(config, args.host, args.port, args.tls_cert, args.tls_key)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="osipi-connector", description="PI Web API to Delta Lake connector (and its PI Web API simulator)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_simulate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

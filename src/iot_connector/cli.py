"""`iot-connector`: run the edge agent headless, check a config, manage encrypted secrets.

iot-connector run --config-dir DIR        # sources -> spool -> sink, metrics on :9090, JSON logs
iot-connector check --config-dir DIR      # validate and summarise, exit 1 with every problem listed
iot-connector secrets encrypt --config-dir DIR     # encrypt plaintext secrets in connector_state.json
iot-connector secrets rotate-key --config-dir DIR  # new Fernet key, every enc: value re-encrypted
iot-connector serve --config-dir DIR      # web GUI (separate issue)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys
from pathlib import Path

from iot_connector.config.loader import STATE_FILE, YAML_FILE, ConfigError, load_config, read_raw
from iot_connector.config.secrets import SecretBox, key_path
from iot_connector.wording import plural

log = logging.getLogger("iot_connector")


def _config_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-dir", type=Path, default=Path("config"), help="holds connector_state.json / connector.yaml"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iot-connector", description="Edge agent: OPC-UA / MQTT / Modbus -> ZeroBus")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the agent until SIGTERM/SIGINT", description="Run the agent headless.")
    _config_dir(run)
    run.add_argument("--metrics-port", type=int, help="override metrics.port (0 = any free port)")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="override log_level")
    check = sub.add_parser("check", help="validate the configuration", description="Validate and summarise.")
    _config_dir(check)
    secrets = sub.add_parser("secrets", help="encrypted secrets at rest", description="Manage Fernet secrets.")
    secrets_sub = secrets.add_subparsers(dest="action", required=True)
    for name, text in (
        ("encrypt", "encrypt plaintext secrets found in connector_state.json"),
        ("rotate-key", "create a new key and re-encrypt every enc: value in the config files"),
    ):
        _config_dir(secrets_sub.add_parser(name, help=text, description=text))
    serve = sub.add_parser("serve", help="web GUI (provided by the GUI package)", description="Start the web GUI.")
    _config_dir(serve)
    return parser


def _run(args: argparse.Namespace) -> int:
    from iot_connector.agent import Agent, setup_logging
    from iot_connector.logs import remember_secrets

    setup_logging(args.log_level or "INFO")
    try:
        config = load_config(args.config_dir)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    updates: dict[str, object] = {}
    if args.metrics_port is not None:
        updates["metrics"] = config.metrics.model_copy(update={"port": args.metrics_port})
    config = config.model_copy(update=updates)
    setup_logging(args.log_level or config.log_level, config.log_levels)
    remember_secrets(config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        agent = Agent(config, args.config_dir)
        # What start-up made (modules, config, the agent) lives as long as the process: out of the collector's
        # sight, so its full passes walk only the records in flight (~0.3 µs a message less on a drain).
        gc.freeze()
        await agent.run(stop)

    asyncio.run(main())
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config_dir)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    summary = {
        "agent_id": config.agent_id,
        "sink": config.sink.type,
        "spool": config.pipeline.spool.enabled,
        "sources": [f"{s.name} ({s.type}{'' if s.enabled else ', disabled'})" for s in config.sources],
    }
    print(json.dumps(summary, indent=2))
    return 0


def _secrets(args: argparse.Namespace) -> int:
    box = SecretBox(key_path(args.config_dir))
    state = args.config_dir / STATE_FILE
    try:
        if args.action == "encrypt":
            if not state.exists():
                print(f"{state} does not exist: nothing to encrypt", file=sys.stderr)
                return 1
            raw = json.loads(state.read_text())
            state.write_text(json.dumps(box.encrypt_tree(raw), indent=2) + "\n")
            print(f"secrets in {state} encrypted with {box.key_file}")
        else:
            count = box.rotate([state, args.config_dir / YAML_FILE])
            print(f"rotated {box.key_file}: {plural(count, 'value')} re-encrypted")
        read_raw(args.config_dir)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        from iot_connector.web import serve
    except ImportError:
        print("the web GUI is not installed in this build (iot_connector.web.serve is missing)", file=sys.stderr)
        return 2
    return int(serve(args.config_dir) or 0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"run": _run, "check": _check, "secrets": _secrets, "serve": _serve}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

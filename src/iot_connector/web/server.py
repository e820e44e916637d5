"""`iot-connector serve`: the agent, its GUI (8080) and its metrics (9090) in one process and one event loop.

The GUI's own listener is a bootstrap setting (it must be known before any config can be edited), so it comes
from the environment: IOT_CONNECTOR_GUI_HOST / _PORT, and IOT_CONNECTOR_GUI_TLS_CERT / _KEY for HTTPS. Plain
HTTP on an address other than loopback is allowed (a TLS proxy may sit in front) but warned about at start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import uvicorn

from iot_connector.agent import setup_logging
from iot_connector.config import ConfigError, load_config
from iot_connector.logs import RedactingFilter, remember_secrets
from iot_connector.web.app import create_app
from iot_connector.web.auth import LoginLimiter, PasswordPolicyError, Users
from iot_connector.web.runtime import LogBuffer, Runtime

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "::1", "localhost")
LOGIN_DELAY_ENV = "IOT_CONNECTOR_GUI_LOGIN_DELAY_S"  # the first wait of the login backoff; it doubles from there


def plain_http_warning(host: str, tls: bool) -> str | None:
    """The start-up warning for a GUI that sends passwords and session cookies unencrypted over a network."""
    if tls or host in LOOPBACK or host.startswith("127."):
        return None
    return (
        f"the GUI serves plain HTTP on {host}: passwords and session cookies cross the network unencrypted; "
        "set IOT_CONNECTOR_GUI_TLS_CERT and IOT_CONNECTOR_GUI_TLS_KEY, put a TLS proxy in front, or bind to "
        "127.0.0.1 with IOT_CONNECTOR_GUI_HOST"
    )


def login_limiter() -> LoginLimiter | None:
    """The login backoff with its first wait from the environment; None if that is not a sensible number."""
    try:
        delay = float(os.environ.get(LOGIN_DELAY_ENV, "1"))
    except ValueError:
        return None
    return LoginLimiter(base_s=delay, max_s=max(300.0, delay)) if 0 < delay <= 3600 else None


def serve(config_dir: Path, host: str | None = None, port: int | None = None) -> int:
    host = host or os.environ.get("IOT_CONNECTOR_GUI_HOST", "0.0.0.0")
    port = port if port is not None else int(os.environ.get("IOT_CONNECTOR_GUI_PORT", "8080"))
    cert, key = os.environ.get("IOT_CONNECTOR_GUI_TLS_CERT"), os.environ.get("IOT_CONNECTOR_GUI_TLS_KEY")
    if bool(cert) != bool(key):
        print("set both IOT_CONNECTOR_GUI_TLS_CERT and IOT_CONNECTOR_GUI_TLS_KEY for HTTPS, or neither")
        return 2
    limiter = login_limiter()
    if limiter is None:
        print(f"{LOGIN_DELAY_ENV} must be a number of seconds between 0 and 3600, e.g. 1", file=sys.stderr)
        return 2
    try:
        config = load_config(config_dir)
        setup_logging(config.log_level, config.log_levels)
        remember_secrets(config)
    except ConfigError:
        setup_logging("INFO")
    try:
        Users(Path(config_dir)).ensure_admin()
    except PasswordPolicyError as exc:
        print(f"iot-connector GUI: {exc}", file=sys.stderr)
        return 2
    logs = LogBuffer()
    logs.addFilter(RedactingFilter())
    logging.getLogger().addHandler(logs)
    warning = plain_http_warning(host, bool(cert))
    if warning:
        log.warning("%s", warning)
    runtime = Runtime(Path(config_dir))
    app = create_app(runtime, logs, secure_cookies=bool(cert), limiter=limiter)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_certfile=cert,
            ssl_keyfile=key,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,  # SIGTERM must not wait long for idle kept-alive browser connections
        )
    )

    async def main() -> None:
        # A stop request, whenever it comes, ends the GUI and then the agent's shutdown below runs. uvicorn captures
        # SIGTERM/SIGINT only while serving and re-raises them once serve() returns: with the default handlers that
        # would kill the process before `runtime.stop()`, and a signal before serving would skip it too.
        def request_exit(*_: object) -> None:
            server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, request_exit)
        await runtime.start()
        if runtime.config is not None:
            remember_secrets(runtime.config)
        log.info("GUI on %s://%s:%d", "https" if cert else "http", host, port)
        try:
            await server.serve()
        finally:
            await runtime.stop()

    asyncio.run(main())
    return 0

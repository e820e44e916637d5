"""The GUI's API, one router per tab or concern; shared dependencies live in `web/deps.py`."""

from iot_connector.web.routes import certs, config, monitor, session, sources

ROUTERS = [session.router, config.router, sources.router, certs.router, monitor.router]

"""Agent-level outbound proxy, exported as the standard environment variables.

Why variables: the ZeroBus SDK (gRPC + OAuth token requests), urllib and requests all read them, so one
setting covers every HTTP(S)/gRPC call the agent makes. The ZeroBus sink's own `sink.proxy` is applied after
this (when the sink opens), so it wins where it is set. A cleared value gives a variable back the value it had
before (e.g. from the container's environment).
"""

from __future__ import annotations

import logging
import os

from iot_connector.config.models import AgentProxySettings
from iot_connector.config.secrets import hide_url_password

log = logging.getLogger(__name__)

VARIABLES = {
    "http_proxy": ("http_proxy", "HTTP_PROXY"),
    "https_proxy": ("https_proxy", "HTTPS_PROXY", "grpc_proxy"),
    "no_proxy": ("no_proxy", "NO_PROXY", "no_grpc_proxy"),
}
_ours: dict[str, tuple[str | None, str]] = {}  # variable -> (value before us, value we set)


def apply_agent_proxy(settings: AgentProxySettings) -> None:
    """Set (or clear) the proxy variables from `settings`; a cleared one gets back the value it had before."""
    for field, names in VARIABLES.items():
        value = getattr(settings, field)
        for name in names:
            if value:
                before = _ours[name][0] if name in _ours else os.environ.get(name)
                _ours[name] = (before, value)
                os.environ[name] = value
            elif name in _ours:
                before, ours = _ours.pop(name)
                if os.environ.get(name) == ours:
                    if before is None:
                        del os.environ[name]
                    else:
                        os.environ[name] = before
    if settings.http_proxy or settings.https_proxy:
        log.info(
            "outbound proxy: http %s, https %s, bypass %s",
            hide_url_password(settings.http_proxy or "-"),
            hide_url_password(settings.https_proxy or "-"),
            settings.no_proxy or "-",
        )

"""Container HEALTHCHECK and Kubernetes probe: exit 0 when the agent answers, 1 otherwise (no curl in a slim image).

`IOT_CONNECTOR_MODE=serve` (the image's default): the GUI on 8080 must answer. Its `/healthz` decides when
it has one; a GUI without it answering 404 shows its event loop (shared with the agent) is alive, and the
metrics endpoint `/metrics` on 9090 must answer too. `run` (headless): `/metrics` decides (200, or 401 when it
requires `metrics.basic_auth`: the endpoint answers, which is all liveness needs). HTTPS when the GUI
has TLS (`IOT_CONNECTOR_GUI_TLS_CERT` set, the variable the GUI itself reads).

    IOT_CONNECTOR_HEALTH_URL   check only this URL
    IOT_CONNECTOR_GUI_PORT / IOT_CONNECTOR_METRICS_PORT   ports (8080 / 9090; metrics.port must match)
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0


def status(url: str) -> int | None:
    """HTTP status of GET url, or None when nothing listens. The GUI's optional TLS is self-signed: the
    check is about liveness on localhost, not about the certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S, context=context) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def healthy() -> tuple[bool, str]:
    explicit = os.environ.get("IOT_CONNECTOR_HEALTH_URL")
    if explicit:
        code = status(explicit)
        return code is not None and 200 <= code < 300, f"{explicit}: {code or 'no answer'}"
    if os.environ.get("IOT_CONNECTOR_MODE", "serve") == "serve":
        gui_port = os.environ.get("IOT_CONNECTOR_GUI_PORT", "8080")
        scheme = "https" if os.environ.get("IOT_CONNECTOR_GUI_TLS_CERT") else "http"  # the GUI's own switch
        url = f"{scheme}://127.0.0.1:{gui_port}/healthz"
        code = status(url)
        if code is None:
            return False, f"the GUI on port {gui_port} does not answer"
        if code != 404:
            return 200 <= code < 300, f"{url}: {code}"
    url = f"http://127.0.0.1:{os.environ.get('IOT_CONNECTOR_METRICS_PORT', '9090')}/metrics"
    code = status(url)
    return code in (200, 401), f"{url}: {code or 'no answer'}"


def main() -> int:
    ok, detail = healthy()
    print(("healthy: " if ok else "unhealthy: ") + detail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

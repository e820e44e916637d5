"""uvicorn internals the PI Web API simulator relies on (checked with uvicorn 0.54.0, httptools and h11).

* The `send` callable uvicorn hands an ASGI app is a bound method of its per-request `RequestResponseCycle`,
  which keeps the connection's asyncio transport as `.transport`. ASGI itself cannot drop a connection
  without an answer or in the middle of a body; the simulator's fault injection (`drop_rate`,
  `truncate_rate`) needs exactly that to reproduce what clients meet in production.

A uvicorn release without it fails the request loudly (LibraryChanged) instead of silently answering
normally, which would make the fault tests pass for the wrong reason. Tests: tests/simulator/test_compat.py,
tests/simulator/test_transport.py (dropped and truncated answers).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from osipi_connector.compat import LibraryChanged

CHECKED = "0.54.0"


def close_connection(send: Any) -> None:
    """Close the client's socket now: no answer, or the answer cut where it stands."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise LibraryChanged(
            f"uvicorn {version('uvicorn')}: the ASGI `send` is no longer a method of an object holding the "
            f"connection's `.transport`, which the simulator's drop/truncate faults rely on; it was checked with "
            f"uvicorn {CHECKED}: install that version (pip install 'uvicorn=={CHECKED}')"
        )
    transport.close()

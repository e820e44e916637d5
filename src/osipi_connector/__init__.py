"""PI Web API -> Delta Lake connector (bronze timeseries, AF hierarchy, event frames, watermarks).

`from osipi_connector import PILakeflowConnector` imports the runner lazily, so `import osipi_connector`
(e.g. by the CLI or the simulator) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["PILakeflowConnector", "RunResult", "__version__"]

if TYPE_CHECKING:
    from osipi_connector.runner import PILakeflowConnector, RunResult


def __getattr__(name: str) -> Any:
    if name in ("PILakeflowConnector", "RunResult"):
        from osipi_connector import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'osipi_connector' has no attribute {name!r}")

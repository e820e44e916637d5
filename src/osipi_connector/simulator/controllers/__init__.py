"""One module per PI Web API controller; each exposes `register(sim)` that adds its routes."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

MODULES = (
    "system",
    "pointsearch",
    "dataservers",
    "streams",
    "stream_updates",
    "interpolated",
    "summary",
    "plot",
    "assets",
    "eventframes",
    "owner_streamsets",
    "attimes",
    "multiple",
    "afsearch",
    "templates",
    "catalog",
    "enumerations",
    "unmodelled",
    "batch",
)


def register_all(sim: Simulator) -> None:
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(sim)

"""(not yet implemented)"""

from __future__ import annotations


def register(sim) -> None:  # noqa: ARG001
    return None

"""(not yet implemented)"""

from __future__ import annotations


def register(sim) -> None:
    return None

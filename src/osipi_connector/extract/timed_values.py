"""One PI TimedValue (`{"Timestamp", "Value", "Good", ...}`) as the value columns `pi_timeseries` has, for the
datasets that get a few values per tag (interpolated grids, summaries, snapshots) rather than millions: plain
Python per value is fast enough there, and the meaning of each column is the same as in `pi_timeseries`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from osipi_connector.extract.recorded_scan import odd_value
from osipi_connector.piwebapi.pitime import parse_iso

TIMED_VALUE_FIELDS = "Timestamp;Value;UnitsAbbreviation;Good;Questionable;Substituted;Annotated"


def value_columns(item: dict[str, Any], units: str | None = None) -> dict[str, Any]:
    """value, value_string, digital state name/code/is_system, the four flags and units of one TimedValue.
    `units`: the answer's UnitsAbbreviation when the item carries none."""
    number, text, state, code, system = odd_value(item.get("Value"))
    return {
        "value": None if number is None else float(number),
        "value_string": text,
        "digital_state_name": state,
        "digital_state_code": code,
        "digital_state_is_system": system,
        "good": item.get("Good"),
        "questionable": item.get("Questionable"),
        "substituted": item.get("Substituted"),
        "annotated": item.get("Annotated"),
        "units": item.get("UnitsAbbreviation") or units or None,
    }


def timestamp(item: dict[str, Any]) -> datetime | None:
    text = item.get("Timestamp")
    return parse_iso(text) if text else None


def grid_floor(t: datetime, step: timedelta) -> datetime:
    """`t` rounded down to a multiple of `step` since the epoch (grids of different runs line up)."""
    epoch = datetime(1970, 1, 1, tzinfo=t.tzinfo)
    return epoch + ((t - epoch) // step) * step


def grid_ceil(t: datetime, step: timedelta) -> datetime:
    floor = grid_floor(t, step)
    return floor if floor == t else floor + step

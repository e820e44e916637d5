"""OPC UA DataValue -> Record: typed value columns, status code and quality, source/server timestamps."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

import orjson
from asyncua import ua

from iot_connector.model import Quality, Record

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_US = dt.timedelta(microseconds=1)
_SEVERITY: tuple[Quality, ...] = ("GOOD", "UNCERTAIN", "BAD", "BAD")


_NAIVE_EPOCH = dt.datetime(1970, 1, 1)


def to_us(value: dt.datetime | None) -> int | None:
    """UTC datetime (naive means UTC, as asyncua returns) -> epoch microseconds."""
    if value is None:
        return None
    if value.tzinfo is None:  # asyncua's case: no tz object to attach per value
        return (value - _NAIVE_EPOCH) // _US
    return (value - _EPOCH) // _US


def quality_of(status: int) -> Quality:
    """Severity is the top two bits of a StatusCode (00 good, 01 uncertain, 1x bad)."""
    return _SEVERITY[(status >> 30) & 0x3]


def is_good(dv: ua.DataValue) -> bool:
    """Whether the DataValue's status is Good; the wire omits a Good status, so a missing (None) one is Good."""
    return dv.StatusCode is None or dv.StatusCode.is_good()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def set_variant(rec: Record, value: Any) -> None:
    """Fill the typed columns from a Variant's Python value: scalars typed, OPC UA types as text, the rest JSON."""
    if rec.set_scalar(value):
        return
    if isinstance(value, dt.datetime):
        rec.value_long, rec.value_string = to_us(value), value.isoformat()
    elif isinstance(value, (bytes, bytearray)):
        rec.value_raw = base64.b64encode(bytes(value)).decode()
    elif isinstance(value, (uuid.UUID, ua.NodeId, ua.QualifiedName, ua.LocalizedText)):
        rec.value_string = value.to_string() if hasattr(value, "to_string") else str(value)
    elif value is not None:  # arrays, structures: JSON in value_raw
        rec.value_raw = orjson.dumps(value, default=_json_default).decode()


def record_from(base: Record, dv: ua.DataValue) -> Record:
    """Complete `base` (identity fields set) with the DataValue's value, status and timestamps."""
    status = dv.StatusCode.value if dv.StatusCode is not None else 0
    base.status_code = status
    base.quality = quality_of(status)
    base.source_ts = to_us(dv.SourceTimestamp)
    base.server_ts = to_us(dv.ServerTimestamp)
    variant = dv.Value
    if variant is not None:
        base.data_type = variant.VariantType.name
        value = variant.Value
        if type(value) is float:  # the common case (Double, Float): no type dispatch
            base.value_double = value
        else:
            set_variant(base, value)
    return base

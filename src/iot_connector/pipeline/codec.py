"""Record <-> bytes for the disk spool: an orjson array of the Record's fields in dataclass order.

An array (not an object) keeps spool frames small and fast; the field order is Record's own, so adding a
field at the end of Record stays readable by older frames (missing trailing values take their defaults).
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter

import orjson

from iot_connector.model import Record

_NAMES = tuple(f.name for f in fields(Record))
_VALUES = attrgetter(*_NAMES)  # one C call for all fields: the spool's hot path


def encode(record: Record) -> bytes:
    return orjson.dumps(_VALUES(record))


def decode(data: bytes) -> Record:
    values = orjson.loads(data)
    if not isinstance(values, list) or len(values) > len(_NAMES):
        raise ValueError("spool frame is not a Record array")
    return Record(*values)

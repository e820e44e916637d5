"""Deterministic GUIDs that carry their object's index, so WebIDs decode without lookup tables."""

from __future__ import annotations

import struct
import uuid

from osipi_connector.piwebapi import webid
from osipi_connector.simulator import rng
from osipi_connector.simulator.http import ApiError

# A short code per object kind, stored in the GUID so a WebID of one kind cannot pass for another.
KIND_CODES = {
    "dataserver": 1,
    "assetserver": 2,
    "database": 3,
    "element": 4,
    "eventframe": 5,
    "attribute": 6,
    "template": 7,
    "category": 8,
}


class IdFactory:
    def __init__(self, seed: int):
        self._prefix = struct.pack("<Q", int(rng.hash_keys(seed, 0x1D5)))

    def guid(self, kind: str, index: int) -> uuid.UUID:
        return uuid.UUID(bytes=self._prefix + struct.pack(">HHI", KIND_CODES[kind], 0, index))

    def index_of(self, kind: str, guid: uuid.UUID) -> int | None:
        raw = guid.bytes
        if raw[:8] != self._prefix:
            return None
        code, _, index = struct.unpack(">HHI", raw[8:])
        return index if code == KIND_CODES[kind] else None

    def resolve(self, text: str, marker: str, kind: str, position: int = 0) -> int:
        """The index of the object a WebID names; 404 in PI's words when it names nothing here."""
        try:
            parsed = webid.decode(text)
        except webid.WebIdError as exc:
            raise ApiError(400, f"Unknown or invalid WebID format: '{text}'.", str(exc)) from None
        if parsed.marker != marker:
            raise ApiError(400, f"The specified WebID '{text}' is not of the expected type for this request.")
        if parsed.kind == "P" or len(parsed.guids) <= position:
            raise ApiError(404, f"The specified object was not found. WebID: '{text}'.")
        index = self.index_of(kind, parsed.guids[position])
        if index is None:
            raise ApiError(404, f"The specified object was not found. WebID: '{text}'.")
        return index

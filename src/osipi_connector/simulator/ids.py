"""Deterministic GUIDs that carry their object's index, so WebIDs decode without lookup tables.

WebIDs follow the reference's "WebID Encoded Datatypes" layouts (system GUID first) and the request's
`webIdType` (Full, IDOnly, PathOnly, LocalIDOnly, DefaultIDOnly), read once per request into a context
variable so every object builder encodes the type the client asked for.
"""

from __future__ import annotations

import contextvars
import struct
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from osipi_connector.piwebapi import webid
from osipi_connector.simulator import rng
from osipi_connector.simulator.http import ApiError, Request

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
    "enumerationset": 9,
    "attributetemplate": 10,
    "enumerationvalue": 11,
    "attributecategory": 12,
    "analysis": 13,
    "analysistemplate": 14,
    "analysiscategory": 15,
    "table": 16,
    "tablecategory": 17,
    "unitclass": 18,
    "unit": 19,
}
# the server whose GUID a WebID of each marker carries first
SYSTEM_OF = {"DS": "dataserver", "DP": "dataserver", "MSD": "dataserver", "MVD": "dataserver"}
WEBID_TYPES = {name.lower(): letter for letter, name in webid.KINDS.items()}
_webid_type: contextvars.ContextVar[str] = contextvars.ContextVar("webid_type", default="F")


@contextmanager
def webid_type_of(request: Request) -> Iterator[None]:
    """Encode the WebIDs of this request's answer in its `webIdType` (default Full); 400 if unknown."""
    raw = request.arg("webIdType")
    letter = WEBID_TYPES.get((raw or "full").lower())
    if letter is None:
        valid = ", ".join(webid.KINDS.values())
        raise ApiError(400, f"The value '{raw}' is not valid for webIdType. Valid values: {valid}.")
    token = _webid_type.set(letter)
    try:
        yield
    finally:
        _webid_type.reset(token)


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

    def system_guid(self, marker: str) -> uuid.UUID:
        return self.guid(SYSTEM_OF.get(marker, "assetserver"), 0)

    def encode(self, marker: str, guids: tuple[uuid.UUID, ...] = (), ints: tuple[int, ...] = (), *, path: str) -> str:
        """A WebID of this marker in the current request's webIdType; `guids` without the system GUID
        (added here), `path` without the leading `\\\\`."""
        kind = _webid_type.get()
        if kind in "FI":
            guids = (self.system_guid(marker), *guids)
        elif kind == "P":
            guids, ints = (), ()
        return webid.encode(marker, guids, ints, path=path, kind=kind)

    def resolve(self, text: str, marker: str, kind: str, position: int = 0, path: str | None = None) -> int:
        """The index of the object a WebID names (`position` counts the GUIDs after the system GUID;
        a server's own WebID names it by the system GUID; a PathOnly WebID is accepted for the single
        object at `path`); 400/404 in PI's words otherwise."""
        parsed = self.parse(text, marker)
        if parsed.kind == "P":
            if path is not None and parsed.path == path.upper():
                return 0
            raise ApiError(404, f"The specified object was not found. WebID: '{text}'.")
        if parsed.system is not None and parsed.system != self.system_guid(marker):
            raise ApiError(404, f"The specified object was not found. WebID: '{text}'.")
        if marker in ("DS", "RS"):
            return 0
        local = parsed.local_guids
        index = self.index_of(kind, local[position]) if len(local) > position else None
        if index is None:
            raise ApiError(404, f"The specified object was not found. WebID: '{text}'.")
        return index

    @staticmethod
    def parse(text: str, marker: str) -> webid.WebId:
        """A WebID of the expected marker; 400 in PI's words when it is malformed or of another kind."""
        try:
            parsed = webid.decode(text)
        except webid.WebIdError as exc:
            raise ApiError(400, f"Unknown or invalid WebID format: '{text}'.", str(exc)) from None
        if parsed.marker != marker:
            raise ApiError(400, f"The specified WebID '{text}' is not of the expected type for this request.")
        return parsed

"""WebID 2.0 encoding and decoding.

Layout (PI Web API "WebID encoded data types"): a type char (`F` Full, `I` IDOnly, `P` PathOnly), the
version `1`, a marker naming the object kind, then the kind's GUIDs (22 chars of URL-safe base64 of the
.NET byte order), integer ids (URL-safe base64, little endian) and, for Full and PathOnly, the object's
upper-cased path. Clients must treat WebIDs as opaque; this module exists for the simulator and for
building PathOnly WebIDs from tag names without a lookup.
"""

from __future__ import annotations

import base64
import re
import struct
import uuid
from dataclasses import dataclass

# marker -> the identifier fields it carries ("g" = GUID, "i" = 32-bit int)
LAYOUTS: dict[str, str] = {
    "DS": "g",  # PI Data Archive (data server)
    "DP": "gi",  # PI point: server GUID + point id
    "RS": "g",  # AF server
    "RD": "gg",  # AF database: server GUID + database GUID
    "Em": "g",  # element
    "Fm": "g",  # event frame
    "AbE": "gg",  # attribute owned by an element: element GUID + attribute GUID
    "AbF": "gg",  # attribute owned by an event frame
    "ET": "g",  # element template
    "EC": "g",  # element category
}

_URL_SAFE_B64 = re.compile(r"[A-Za-z0-9_-]*")


class WebIdError(ValueError):
    """A malformed WebID, or one of an unexpected kind."""


@dataclass(frozen=True)
class WebId:
    kind: str  # "F", "I" or "P"
    marker: str
    guids: tuple[uuid.UUID, ...]
    ints: tuple[int, ...]
    path: str | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_guid(value: uuid.UUID) -> str:
    return _b64(value.bytes_le)


def encode_path(path: str) -> str:
    return _b64(path.upper().encode("utf-8"))


def encode(
    marker: str,
    guids: tuple[uuid.UUID, ...] = (),
    ints: tuple[int, ...] = (),
    path: str | None = None,
    kind: str = "F",
) -> str:
    layout = LAYOUTS[marker]
    out = [kind, "1", marker]
    if kind == "P":
        if path is None:
            raise WebIdError("a PathOnly WebID needs a path")
        return "".join([*out, encode_path(path)])
    if len(guids) != layout.count("g") or len(ints) != layout.count("i"):
        raise WebIdError(f"marker {marker} needs {layout!r} identifiers")
    gi, ii = iter(guids), iter(ints)
    for field in layout:
        out.append(encode_guid(next(gi)) if field == "g" else _b64(struct.pack("<I", next(ii))))
    if kind == "F":
        if path is None:
            raise WebIdError("a Full WebID needs a path")
        out.append(encode_path(path))
    elif kind != "I":
        raise WebIdError(f"unsupported WebID type {kind!r}")
    return "".join(out)


def decode(webid: str) -> WebId:
    """Split a WebID into its parts; raises WebIdError with a reason when it is not one."""
    if len(webid) < 4 or webid[0] not in "FIP" or webid[1] != "1":
        raise WebIdError(f"'{webid}' is not a WebID 2.0 string.")
    kind = webid[0]
    marker = webid[2:5] if webid[2:4] == "Ab" else webid[2:4]
    if marker not in LAYOUTS:
        raise WebIdError(f"'{webid}' has an unknown marker '{marker}'.")
    rest = webid[2 + len(marker) :]
    if not _URL_SAFE_B64.fullmatch(rest):  # base64 decoding would silently skip other characters
        raise WebIdError(f"'{webid}' has characters that are not URL-safe base64.")
    if kind == "P" and not rest:
        raise WebIdError(f"'{webid}' is a PathOnly WebID without a path.")
    guids: list[uuid.UUID] = []
    ints: list[int] = []
    try:
        if kind == "P":
            return WebId(kind, marker, (), (), _unb64(rest).decode("utf-8"))
        for field in LAYOUTS[marker]:
            if field == "g":
                guids.append(uuid.UUID(bytes_le=_unb64(rest[:22])))
                rest = rest[22:]
            else:
                ints.append(struct.unpack("<I", _unb64(rest[:6]))[0])
                rest = rest[6:]
        path = _unb64(rest).decode("utf-8") if kind == "F" and rest else None
    except (ValueError, struct.error, UnicodeDecodeError) as exc:
        raise WebIdError(f"'{webid}' is not a valid WebID: {exc}.") from None
    if kind == "F" and path is None:
        raise WebIdError(f"'{webid}' is a Full WebID without a path.")
    if kind == "I" and rest:
        raise WebIdError(f"'{webid}' has trailing characters.")
    return WebId(kind, marker, tuple(guids), tuple(ints), path)


def point_path_webid(server: str, tag: str) -> str:
    """PathOnly point WebID (`P1DP` + base64(upper(`SERVER\\TAG`))), resolvable without a lookup."""
    return encode("DP", path=f"{server}\\{tag}", kind="P")

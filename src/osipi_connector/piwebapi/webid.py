"""WebID 2.0 encoding and decoding.

Layout (PI Web API reference, "WebID Encoded Datatypes"): a type char (`F` Full, `I` IDOnly, `P` PathOnly,
`L` LocalIDOnly, `D` DefaultIDOnly), the version `1`, a marker naming the object kind (attributes add an
owner marker: `AbE`, `AbF`), then the kind's identifiers: the PI System / Data Archive GUID first (left
out by LocalIDOnly and DefaultIDOnly), the owner's and the object's GUIDs (22 chars of URL-safe base64 of
the .NET byte order) or a point id (URL-safe base64, little endian) and, for Full and PathOnly, the
object's upper-cased path without its leading `\\\\`. Clients must treat WebIDs as opaque; this module exists for the simulator and for
building PathOnly WebIDs from tag names without a lookup.
"""

from __future__ import annotations

import base64
import re
import struct
import uuid
from dataclasses import dataclass

# marker -> the identifier fields it carries: "s" = the PI System (AF server) or Data Archive GUID, which
# LocalIDOnly/DefaultIDOnly leave out; "g" = an owner's or the object's GUID; "i" = a 32-bit point id
LAYOUTS: dict[str, str] = {
    "DS": "s",  # PI Data Archive (data server)
    "DP": "si",  # PI point: server GUID + point id
    "RS": "s",  # AF server (PI System)
    "RD": "sg",  # AF database: system GUID + database GUID
    "Em": "sg",  # element: system GUID + element GUID
    "Fm": "sg",  # event frame: system GUID + event frame GUID
    "AbE": "sgg",  # attribute owned by an element: system, element and attribute GUIDs
    "AbF": "sgg",  # attribute owned by an event frame: system, event frame and attribute GUIDs
    "ET": "sg",  # element template
    "EC": "sg",  # element category
    "AC": "sg",  # attribute category
    "ATE": "sgg",  # attribute template owned by an element template: system, template, attribute template
    "Xs": "sg",  # analysis
    "XT": "sg",  # analysis template
    "XC": "sg",  # analysis category
    "Bl": "sg",  # AF table
    "BC": "sg",  # table category
    "UC": "sg",  # unit class (of the AF server's UOM database)
    "Ut": "sg",  # unit of measure
    "MSD": "sg",  # enumeration set owned by a data server: server GUID + set GUID
    "MVD": "sgg",  # enumeration value of a data server's set: server, set and value GUIDs
}
KINDS = {"F": "Full", "I": "IDOnly", "P": "PathOnly", "L": "LocalIDOnly", "D": "DefaultIDOnly"}

_URL_SAFE_B64 = re.compile(r"[A-Za-z0-9_-]*")


class WebIdError(ValueError):
    """A malformed WebID, or one of an unexpected kind."""


@dataclass(frozen=True)
class WebId:
    kind: str  # "F", "I", "P", "L" or "D"
    marker: str
    guids: tuple[uuid.UUID, ...]  # in layout order; the system GUID first when the type carries it
    ints: tuple[int, ...]
    path: str | None

    @property
    def system(self) -> uuid.UUID | None:
        """The PI System / Data Archive GUID, or None when the type leaves it out (or PathOnly)."""
        return self.guids[0] if self.guids and self.kind in "FI" and LAYOUTS[self.marker][0] == "s" else None

    @property
    def local_guids(self) -> tuple[uuid.UUID, ...]:
        """The owner's and object's GUIDs, without the system GUID."""
        return self.guids[1:] if self.system is not None else self.guids


def fields(marker: str, kind: str) -> str:
    """The identifier fields a WebID of this marker and type carries."""
    layout = LAYOUTS[marker]
    return layout.replace("s", "") if kind in "LD" else layout if kind in "FI" else ""


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
    if kind not in KINDS:
        raise WebIdError(f"unsupported WebID type {kind!r}")
    out = [kind, "1", marker]
    if kind == "P":
        if path is None:
            raise WebIdError("a PathOnly WebID needs a path")
        return "".join([*out, encode_path(path)])
    layout = fields(marker, kind)
    if len(guids) != len(layout) - layout.count("i") or len(ints) != layout.count("i"):
        raise WebIdError(f"marker {marker} needs {layout!r} identifiers in a {KINDS[kind]} WebID")
    gi, ii = iter(guids), iter(ints)
    for field in layout:
        out.append(_b64(struct.pack("<I", next(ii))) if field == "i" else encode_guid(next(gi)))
    if kind == "F":
        if path is None:
            raise WebIdError("a Full WebID needs a path")
        out.append(encode_path(path))
    return "".join(out)


def decode(webid: str) -> WebId:
    """Split a WebID into its parts; raises WebIdError with a reason when it is not one."""
    if len(webid) < 4 or webid[0] not in KINDS or webid[1] != "1":
        raise WebIdError(f"'{webid}' is not a WebID 2.0 string.")
    kind = webid[0]
    marker = webid[2:5] if webid[2:4] in ("Ab", "AT", "MS", "MV") else webid[2:4]
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
        for field in fields(marker, kind):
            if field == "i":
                ints.append(struct.unpack("<I", _unb64(rest[:6]))[0])
                rest = rest[6:]
            else:
                guids.append(uuid.UUID(bytes_le=_unb64(rest[:22])))
                rest = rest[22:]
        path = _unb64(rest).decode("utf-8") if kind == "F" and rest else None
    except UnicodeDecodeError:
        raise WebIdError(f"'{webid}' is not a valid WebID: its path is not UTF-8.") from None
    except (ValueError, struct.error):
        raise WebIdError(f"'{webid}' is not a valid WebID: its identifiers are cut short.") from None
    if kind == "F" and path is None:
        raise WebIdError(f"'{webid}' is a Full WebID without a path.")
    if kind != "F" and rest:
        raise WebIdError(f"'{webid}' has trailing characters.")
    return WebId(kind, marker, tuple(guids), tuple(ints), path)


def point_path_webid(server: str, tag: str) -> str:
    """PathOnly point WebID (`P1DP` + base64(upper(`SERVER\\TAG`))), resolvable without a lookup."""
    return encode("DP", path=f"{server}\\{tag}", kind="P")

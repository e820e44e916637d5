"""Stream Updates: `POST streams/{webId}/updates`, `GET streams/updates/{marker}` and the stream set forms
`POST streamsets/updates?webId=…`, `GET streamsets/updates?marker=…`.

A client registers a stream and gets a marker; each GET with a marker answers what changed since it (the
value model's `changes`: new values, late values and edits as Add / Update, removals as Delete) and the
`LatestMarker` to ask with next. A marker is `<registration>_<ticks>`: the position is the simulator's clock
when it was issued, so any marker replays the same answer and a client that lost its last answer (a killed
run) asks again with the marker before it. A marker older than `stream_updates_marker_lifetime_s`, or
whose registration the server dropped, answers 409 and unregisters the stream, as the real server does on
a retrieval error: the client registers again.
"""

from __future__ import annotations

import re
import threading
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from osipi_connector.piwebapi.pitime import TICKS_PER_SECOND
from osipi_connector.simulator import jsonfast
from osipi_connector.simulator.controllers.streams import Stream
from osipi_connector.simulator.http import ApiError, Request, Response, select_fields

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

_MARKER = re.compile(r"^([0-9a-f]{32})_(\d{1,19})$")
_NAMESPACE = uuid.UUID("5f0c5d52-3c6a-4a47-9d55-6a2f8f6a1c11")


class StreamUpdates:
    """The registrations (registration id -> stream WebID) and the answers built from the value model."""

    def __init__(self, sim: Simulator):
        self.sim = sim
        self._registered: dict[str, str] = {}
        self._lock = threading.Lock()

    def registration(self, web_id: str) -> str:
        return uuid.uuid5(_NAMESPACE, f"{self.sim.config.seed}:{web_id}").hex

    def register(self, request: Request, web_id: str, stream: Stream) -> dict[str, Any]:
        if stream.point is None:
            raise ApiError(409, f"The attribute '{stream.path}' is static: it has no stream to register for updates.")
        reg = self.registration(web_id)
        with self._lock:
            status = "AlreadyRegistered" if reg in self._registered else "Succeeded"
            self._registered[reg] = web_id
        marker = f"{reg}_{self.sim.now_ticks()}"
        return {
            "Source": web_id,
            "SourceName": stream.name,
            "SourcePath": stream.path,
            "Status": status,
            "LatestMarker": marker,
            "Links": {"Updates": request.link(f"/streams/updates/{marker}")},
        }

    def retrieve(self, request: Request, marker: str) -> dict[str, Any]:
        """Events since `marker`; ApiError 409 for a malformed, future or expired marker, 404 when the
        registration is unknown (never made, or dropped after an error)."""
        match = _MARKER.match(marker)
        now = self.sim.now_ticks()
        if not match or int(match[2]) > now:
            raise ApiError(409, f"Invalid marker supplied: '{marker}'.")
        reg, since = match[1], int(match[2])
        with self._lock:
            web_id = self._registered.get(reg)
        if web_id is None:
            raise ApiError(404, f"Cache not found for marker '{marker}': register the stream for updates again.")
        lifetime = int(self.sim.config.stream_updates_marker_lifetime_s * TICKS_PER_SECOND)
        if now - since > lifetime:
            with self._lock:
                self._registered.pop(reg, None)
            raise ApiError(
                409, f"Invalid marker supplied: '{marker}' has expired; register the stream for updates again."
            )
        stream = self.sim.streams.stream(web_id)
        assert stream.point is not None  # registration refuses static attributes
        changes = self.sim.streams.values.changes(stream.point, since, now)
        items = orjson.loads(jsonfast.encode_items(stream.point, changes.events))
        events = [
            {"Action": action, "PreviousEventAction": "PreviousEventArchived", **item}
            for action, item in zip(changes.action, items, strict=True)
        ]
        return {
            "Source": web_id,
            "SourceName": stream.name,
            "SourcePath": stream.path,
            "RequestedMarker": marker,
            "LatestMarker": f"{reg}_{now}",
            "Status": "Updated",
            "Events": events,
            "Links": {},
        }


def register(sim: Simulator) -> None:
    router = sim.router
    updates = sim.stream_updates = StreamUpdates(sim)

    @router.route("POST", "/streams/{web_id}/updates")
    def register_stream(request: Request, web_id: str) -> Any:
        body = updates.register(request, web_id, sim.streams.stream(web_id))
        location = body["Links"]["Updates"]
        return Response(200, select_fields(body, request.arg("selectedFields")), {"Location": location})

    @router.route("GET", "/streams/updates/{marker}")
    def retrieve_stream(request: Request, marker: str) -> Any:
        return select_fields(updates.retrieve(request, marker), request.arg("selectedFields"))

    @router.route("POST", "/streamsets/updates")
    def register_streamset(request: Request) -> Any:
        streams = sim.streams.streamset(request)  # any invalid WebID fails the request (400), as documented
        items = [updates.register(request, web_id, stream) for web_id, stream in streams]
        return select_fields({"Items": items, "Links": {}}, request.arg("selectedFields"))

    @router.route("GET", "/streamsets/updates")
    def retrieve_streamset(request: Request) -> Any:
        markers = request.args("marker")
        if not markers:
            raise ApiError(400, "At least one 'marker' parameter is required.")
        items = []
        for marker in markers:
            try:
                items.append(updates.retrieve(request, marker))
            except ApiError as exc:  # one stream's failure is its item's, the others still answer
                items.append({"RequestedMarker": marker, "Status": "Failed", "Exception": {"Errors": exc.errors}})
        return select_fields({"Items": items, "Links": {}}, request.arg("selectedFields"))

"""The simulated PI system: clock, object models and the router that serves them."""

from __future__ import annotations

import contextvars
import functools
import re
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from osipi_connector.piwebapi.pitime import (
    TICKS_PER_SECOND,
    datetime_to_ticks,
    parse_interval,
    parse_pi_time,
    ticks_to_datetime,
    time_zone,
)
from osipi_connector.simulator.af import AssetModel
from osipi_connector.simulator.config import SimConfig

if TYPE_CHECKING:
    from osipi_connector.simulator.controllers.stream_updates import StreamUpdates
from osipi_connector.simulator.eventframes import EventFrameModel
from osipi_connector.simulator.http import ApiError, Request, Response, Router
from osipi_connector.simulator.ids import IdFactory, webid_type_of
from osipi_connector.simulator.points import PointCatalog

# `*` is one instant per request (batch sub-requests share their batch's), as on the real server
_request_now: contextvars.ContextVar[int | None] = contextvars.ContextVar("request_now", default=None)
# the 7th fraction digit (100 ns) of a timestamp, which Python's datetime cannot hold
_SEVENTH_DIGIT = re.compile(r"\d:\d\d\.\d{6}(\d)")


class Simulator:
    """Holds the config and the lazily generated models; `handle` answers one in-process request."""

    def __init__(self, config: SimConfig | None = None):
        from osipi_connector.simulator import controllers
        from osipi_connector.simulator.controllers.streams import StreamController

        self.config = config or SimConfig()
        self.ids = IdFactory(self.config.seed)
        c = self.config
        self.points = PointCatalog(c.seed, c.tags, c.server_name, self.ids, c.late_share)
        self.af = AssetModel(self)
        self.event_frames = EventFrameModel(self)
        # stream resolution and the value model, shared by the streams, interpolated, summary and plot routes
        self.streams = StreamController(self)
        self.stream_updates: StreamUpdates  # set by controllers.stream_updates
        self.router = Router()
        controllers.register_all(self)

    # --- clock ---------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return ticks_to_datetime(self.now_ticks())

    def now_ticks(self) -> int:
        """The current request's instant (`*`), whole microseconds so `*` and `*-1h` agree to the tick."""
        pinned = _request_now.get()
        if pinned is not None:
            return pinned
        if self.config.now is not None:
            return datetime_to_ticks(self.config.now)
        return time.time_ns() // 1000 * 10

    def time_arg(self, request: Request, name: str, default: str) -> int:
        """A PI time parameter as ticks, read in the request's `timeZone`; 400 with PI's message when it
        does not parse."""
        return self.time_text(request, request.arg(name) or default)

    def time_range(self, request: Request, start_default: str = "*-1d", end_default: str = "*") -> tuple[int, int]:
        """startTime and endTime as ticks by the AFTimeRange rule: a bare offset (`-1h`, no `*`) in
        startTime is relative to endTime; else a bare offset in endTime is relative to startTime."""
        start_text = request.arg("startTime") or start_default
        end_text = request.arg("endTime") or end_default
        if _bare_offset(start_text):
            end = self.time_text(request, end_text)
            return self.time_text(request, start_text, base=end), end
        start = self.time_text(request, start_text)
        return start, self.time_text(request, end_text, base=start if _bare_offset(end_text) else None)

    def time_text(self, request: Request, text: str, base: int | None = None) -> int:
        """One PI time string as ticks (all 7 fraction digits kept), in the request's `timeZone`,
        relative to `base` (default: now); 400 when it does not parse."""
        return _time_ticks(text, self.now_ticks() if base is None else base, base is not None, request.arg("timeZone"))

    @staticmethod
    def span_arg(request: Request, name: str, default: str) -> int:
        """A PI time-span parameter (`interval`, `summaryDuration`) as ticks; 400 when it does not parse."""
        try:
            span = parse_interval(request.arg(name) or default)
        except ValueError as exc:
            raise ApiError(400, f"{exc} (parameter '{name}')") from None
        return span // timedelta(microseconds=1) * 10

    @staticmethod
    def seconds(ticks: int) -> float:
        return ticks / TICKS_PER_SECOND

    # --- requests ------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        token = _request_now.set(self.now_ticks())  # a batch's sub-requests keep the batch's instant
        try:
            with webid_type_of(request):
                return self.router.dispatch(request)
        except ApiError as exc:  # an invalid webIdType (batch sub-requests get it as their own 400)
            return exc.response()
        finally:
            _request_now.reset(token)


def _bare_offset(text: str) -> bool:
    """`-1h`, `+30m`: an offset without a base time (`*`, `t`, an absolute time)."""
    return text.strip()[:1] in ("+", "-")


@functools.lru_cache(maxsize=4096)
def _time_ticks(text: str, reference_ticks: int, relative: bool, zone: str | None) -> int:
    """`Simulator.time_text` (cached: a batch's sub-requests repeat the same few times, at the same now)."""
    try:
        ticks = datetime_to_ticks(parse_pi_time(text, ticks_to_datetime(reference_ticks), time_zone(zone)))
    except OverflowError:
        raise ApiError(400, f"Cannot parse time string '{text}': it is outside the supported range.") from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    if relative:
        ticks += reference_ticks % 10  # the sub-microsecond part of the base survives the offset
    seventh = _SEVENTH_DIGIT.search(text)
    return ticks + int(seventh[1]) if seventh else ticks

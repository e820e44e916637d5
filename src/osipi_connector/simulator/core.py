"""The simulated PI system: clock, object models and the router that serves them."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from osipi_connector.piwebapi.pitime import (
    TICKS_PER_SECOND,
    UTC,
    datetime_to_ticks,
    parse_interval,
    parse_pi_time,
    time_zone,
)
from osipi_connector.simulator.af import AssetModel
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.eventframes import EventFrameModel
from osipi_connector.simulator.http import ApiError, Request, Response, Router
from osipi_connector.simulator.ids import IdFactory, webid_type_of
from osipi_connector.simulator.points import PointCatalog


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
        self.router = Router()
        controllers.register_all(self)

    # --- clock ---------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.config.now or datetime.now(UTC)

    def now_ticks(self) -> int:
        if self.config.now is not None:
            return datetime_to_ticks(self.config.now)
        return time.time_ns() // 100

    def time_arg(self, request: Request, name: str, default: str) -> int:
        """A PI time parameter as ticks, read in the request's `timeZone`; 400 with PI's message when it
        does not parse."""
        return self.time_text(request, request.arg(name) or default)

    def time_text(self, request: Request, text: str) -> int:
        """One PI time string as ticks, in the request's `timeZone`; 400 when it does not parse."""
        try:
            return datetime_to_ticks(parse_pi_time(text, self.now(), time_zone(request.arg("timeZone"))))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

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
        with webid_type_of(request):
            return self.router.dispatch(request)

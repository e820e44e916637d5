"""`GET /streams/{webId}/summary` (Stream GetSummary) and `/streamsets/summary?webId=...`
(GetSummariesAdHoc): statistics per interval.

Parameters as documented: startTime (`*-1d`), endTime (`*`), summaryType (repeatable; default Total;
Total, Average, Minimum, Maximum, Range, StdDev, PopulationStdDev, Count, PercentGood),
calculationBasis (TimeWeighted default, EventWeighted), summaryDuration (one interval when absent),
timeType (Auto default: Minimum/Maximum at the time of the extreme value, others at the interval
start; EarliestTime; MostRecentTime), timeZone, selectedFields. sampleType, sampleInterval,
filterExpression are accepted and ignored. Items are grouped by summary type, then by interval:
`{"Type": "Average", "Value": {TimedValue}}`. The statistics themselves live in `summaries`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from osipi_connector.piwebapi.pitime import format_ticks
from osipi_connector.simulator.controllers.streams import Stream, streamset_item, timed_value
from osipi_connector.simulator.http import ApiError, Request, select_fields
from osipi_connector.simulator.interpolation import surrounding
from osipi_connector.simulator.summaries import (
    NON_NUMERIC_TYPES,
    SUMMARY_TYPES,
    UNITLESS_TYPES,
    event_weighted,
    time_weighted,
)

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

CALCULATION_BASES = ("TimeWeighted", "EventWeighted")
TIME_TYPES = ("Auto", "EarliestTime", "MostRecentTime")


@dataclass
class SummaryRequest:
    """What a summary request asks for, validated once for every stream it covers."""

    kinds: list[str]
    basis: str
    time_type: str
    lo: int
    hi: int
    windows: list[tuple[int, int]]


def parse_request(sim: Simulator, request: Request) -> SummaryRequest:
    start, end = sim.time_range(request)
    kinds = [_choice(raw, "summaryType", SUMMARY_TYPES) for raw in request.args("summaryType")] or ["Total"]
    kinds = [k for part in kinds for k in (SUMMARY_TYPES if part == "All" else (part,))]
    basis = request.enum_arg("calculationBasis", "TimeWeighted", CALCULATION_BASES)
    time_type = request.enum_arg("timeType", "Auto", TIME_TYPES)
    lo, hi = min(start, end), max(start, end)
    windows = [(lo, hi)]
    if request.arg("summaryDuration"):
        step = sim.span_arg(request, "summaryDuration", "1h")
        count = -(-(hi - lo) // step) if hi > lo else 1
        if count > sim.config.max_returned_items_per_call:
            raise ApiError(400, f"The request would return {count} intervals: use a longer summaryDuration.")
        windows = [(a, min(a + step, hi)) for a in range(lo, lo + count * step, step)]
    return SummaryRequest(kinds, basis, time_type, lo, hi, windows)


def summary_items(sim: Simulator, spec: SummaryRequest, stream: Stream) -> list[dict]:
    """`{"Type", "Value"}` per summary type and interval. A summary type the stream cannot have (a
    static attribute; Average of a digital or string point) answers one value holding `Errors` for
    that type, not a failed request (the reference: values with an 'Errors' property are handled
    errors); the other types are computed."""
    point = stream.point
    now = sim.now_ticks()
    around = surrounding(sim.streams.values, point, spec.lo, spec.hi, now) if point is not None else None
    items: list[dict] = []
    for kind in spec.kinds:
        if point is None:
            error = f"Summaries are not available for the static attribute '{stream.name}'."
            items.append({"Type": kind, "Value": {"Errors": [error]}})
            continue
        if point.point_type in ("Digital", "String") and kind not in NON_NUMERIC_TYPES:
            error = f"Summary type '{kind}' needs a numeric point; '{stream.name}' is a {point.point_type} point."
            items.append({"Type": kind, "Value": {"Errors": [error]}})
            continue
        assert around is not None
        for a, b in spec.windows:
            last = b == spec.hi
            inside = around.take((around.ticks >= a) & ((around.ticks <= b) if last else (around.ticks < b)))
            if spec.basis == "EventWeighted":
                result = event_weighted(inside, kind, a)
            else:
                result = time_weighted(around, inside, point, kind, a, min(b, max(a, now)))
            at = {"Auto": result.at, "EarliestTime": a, "MostRecentTime": b}[spec.time_type]
            units = "" if kind in UNITLESS_TYPES else stream.units
            value = timed_value(format_ticks(at), result.value, units, good=result.value is not None)
            items.append({"Type": kind, "Value": value})
    return items


def streamset_summary_items(sim: Simulator, spec: SummaryRequest, stream: Stream) -> list[dict]:
    """A stream set entry's summaries: the same items as the single stream's."""
    return summary_items(sim, spec, stream)


def register(sim: Simulator) -> None:
    ctl = sim.streams

    @sim.router.route("GET", "/streams/{web_id}/summary")
    def get_summary(request: Request, web_id: str) -> Any:
        stream = ctl.stream(web_id)
        body = {"Links": {}, "Items": summary_items(sim, parse_request(sim, request), stream)}
        return select_fields(body, request.arg("selectedFields"))

    @sim.router.route("GET", "/streamsets/summary")
    def streamset_summary(request: Request) -> Any:
        streams = ctl.streamset(request)
        spec = parse_request(sim, request)
        items = [streamset_item(w, s, Items=streamset_summary_items(sim, spec, s)) for w, s in streams]
        return select_fields({"Links": {}, "Items": items}, request.arg("selectedFields"))


def _choice(raw: str, name: str, allowed: tuple[str, ...]) -> str:
    for option in (*allowed, "All"):
        if option.lower() == raw.lower():
            return option
    raise ApiError(400, f"The value '{raw}' is not valid for {name}. Valid values: {', '.join(allowed)}, All.")

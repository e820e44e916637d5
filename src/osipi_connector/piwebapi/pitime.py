"""PI time strings (`*`, `*-1d`, `t+8h`, `y`, ISO-8601) and PI's timestamp text format.

Both the simulator (parsing what clients send) and the client (formatting what it sends, parsing the
7-digit fractions PI returns) use this module, so the two sides cannot drift apart.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = timezone.utc
TICKS_PER_SECOND = 10_000_000  # PI resolves time to 100 ns; we keep integer "ticks" since the Unix epoch.

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "wk": 604800, "week": 604800, "weeks": 604800,
    "mo": None, "month": None, "months": None,
    "y": None, "yr": None, "year": None, "years": None,
}  # fmt: skip
_OFFSET = re.compile(r"\s*([+-])\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)")
_ISO_FRACTION = re.compile(r"\.(\d+)")
_ISO_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")
_MONTHS = {
    m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))
}
_PI_ABSOLUTE = re.compile(
    r"(?P<day>\d{1,2})-(?P<month>[a-z]{3})-(?P<year>\d{4}|\d{2})"
    r"(?:\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<frac>\d+))?)?)?",
    re.IGNORECASE,
)
_PI_TIMESTAMP = re.compile(r"(?P<main>[^.]*?)(?:\.(?P<frac>\d+))?(?P<zone>Z|[+-]\d{2}:?\d{2})?", re.IGNORECASE)


class PITimeError(ValueError):
    """A time string PI would reject; the message quotes it."""


def _add_calendar(base: datetime, months: int) -> datetime:
    month0 = base.month - 1 + months
    year, month = base.year + month0 // 12, month0 % 12 + 1
    day = base.day
    while True:
        try:
            return base.replace(year=year, month=month, day=day)
        except ValueError:
            day -= 1


def _apply_offsets(base: datetime, text: str, original: str) -> datetime:
    pos = 0
    result = base
    while pos < len(text):
        match = _OFFSET.match(text, pos)
        if not match:
            raise PITimeError(f"Cannot parse time string '{original}': unexpected text at '{text[pos:]}'.")
        sign, amount_text, unit = match.groups()
        unit = unit.lower()
        if unit not in _UNITS:
            raise PITimeError(f"Cannot parse time string '{original}': unknown unit '{unit}'.")
        amount = float(amount_text) * (1 if sign == "+" else -1)
        seconds = _UNITS[unit]
        if seconds is None:  # calendar units need whole numbers
            if amount != int(amount):
                raise PITimeError(f"Cannot parse time string '{original}': months and years must be whole.")
            months = int(amount) * (12 if unit.startswith("y") else 1)
            result = _add_calendar(result, months)
        else:
            result = result + timedelta(seconds=amount * seconds)
        pos = match.end()
    return result


def parse_pi_time(text: str, now: datetime, tz: tzinfo = UTC) -> datetime:
    """Parse a PI time string relative to `now` (an aware datetime); returns an aware UTC datetime.

    Supported: `*` (now), `t`/`today`, `y`/`yesterday` (midnight in `tz`), a bare offset (`-1h`,
    relative to now), any base followed by offsets (`*-1d+2h`, `t+8h`), PI's own absolute form
    (`01-Mar-25 12:00:00`, `1-Mar-2025`, optionally followed by offsets) and ISO-8601 with or without
    an offset. Times without an offset are in `tz` (the `timeZone` parameter; the simulator's server
    time zone is UTC).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    original = text
    text = text.strip()
    if not text:
        raise PITimeError("Cannot parse time string '': it is empty.")
    lower = text.lower()
    midnight = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    for word, base in (
        ("yesterday", midnight - timedelta(days=1)),
        ("today", midnight),
        ("*", now),
        ("t", midnight),
        ("y", midnight - timedelta(days=1)),
    ):
        if lower.startswith(word):
            return _apply_offsets(base, text[len(word) :], original).astimezone(UTC)
    if text[0] in "+-":
        return _apply_offsets(now, text, original).astimezone(UTC)
    absolute = _PI_ABSOLUTE.match(text)
    if absolute:
        return _apply_offsets(_pi_absolute(absolute, tz, original), text[absolute.end() :], original).astimezone(UTC)
    return parse_iso(text, original, tz)


def _pi_absolute(match: re.Match[str], tz: tzinfo, original: str) -> datetime:
    """`dd-Mon-yy[yy] [HH:MM[:SS[.fff]]]`, the form PI clients (PI DataLink, tagreader) send."""
    month = _MONTHS.get(match["month"].lower())
    year = int(match["year"])
    if len(match["year"]) == 2:  # two-digit years: 00-69 are 20xx, 70-99 are 19xx
        year += 2000 if year < 70 else 1900
    frac = (match["frac"] or "").ljust(6, "0")[:6]
    try:
        if month is None:
            raise ValueError(match["month"])
        return datetime(
            year,
            month,
            int(match["day"]),
            int(match["hour"] or 0),
            int(match["minute"] or 0),
            int(match["second"] or 0),
            int(frac),
            tzinfo=tz,
        )
    except ValueError:
        raise PITimeError(f"Cannot parse time string '{original}': not a valid date.") from None


def time_zone(name: str | None) -> tzinfo:
    """The `timeZone` parameter: an IANA name (`Europe/Oslo`) or `UTC`; the server's (UTC) when empty."""
    if not name or name.upper() in ("UTC", "GMT", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PITimeError(
            f"The time zone '{name}' is not valid: use an IANA name such as 'UTC' or 'Europe/Oslo'."
        ) from None


_SPAN_TERM = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)")
_SPAN_CLOCK = re.compile(r"(\d+):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?")


def parse_interval(text: str) -> timedelta:
    """A PI time span (`interval=1h`, `summaryDuration=30m`, `1d 12h`, `1.5h`, `00:10:00`), positive.

    Calendar units (months, years) have no fixed length, so they are refused here."""
    original = text
    text = (text or "").strip()
    clock = _SPAN_CLOCK.fullmatch(text)
    if clock:
        total = int(clock[1]) * 3600 + int(clock[2]) * 60 + float(clock[3] or 0)
    else:
        total, pos = 0.0, 0
        while pos < len(text):
            match = _SPAN_TERM.match(text, pos)
            unit = match[2].lower() if match else ""
            if not match or unit not in _UNITS:
                raise PITimeError(f"Cannot parse time span '{original}': use e.g. '1h', '30m', '10s' or '1d'.")
            seconds = _UNITS[unit]
            if seconds is None:
                raise PITimeError(f"Cannot parse time span '{original}': months and years have no fixed length.")
            total += float(match[1]) * seconds
            pos = match.end()
    if total <= 0:
        raise PITimeError(f"Cannot parse time span '{original}': it must be longer than zero.")
    return timedelta(seconds=total)


def parse_iso(text: str, original: str | None = None, tz: tzinfo = UTC) -> datetime:
    """ISO-8601 with any number of fractional digits (PI sends up to 7, trailing zeros trimmed);
    truncated to microseconds. The fraction is padded to 6 digits and a `+0200` offset gets its colon
    because Python 3.10's `fromisoformat` takes neither."""
    cleaned = text.strip().replace("z", "Z")
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    cleaned = _ISO_FRACTION.sub(lambda m: "." + m.group(1).ljust(6, "0")[:6], cleaned, count=1)
    cleaned = _ISO_COMPACT_OFFSET.sub(r"\1:\2", cleaned)
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        raise PITimeError(f"Cannot parse time string '{original or text}'.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def parse_pi_timestamp_ticks(text: str) -> int:
    """A PI timestamp (`2022-02-18T15:10:08.8757629Z`, or with a UTC offset) to exact 100-ns ticks
    since the epoch; digits past the 7th are dropped."""
    match = _PI_TIMESTAMP.fullmatch(text.strip())
    if match is None or not match["main"]:
        raise PITimeError(f"Cannot parse timestamp '{text}'.")
    seconds = int(parse_iso(match["main"] + (match["zone"] or "Z"), text).timestamp())
    return seconds * TICKS_PER_SECOND + int((match["frac"] or "").ljust(7, "0")[:7])


def datetime_to_ticks(value: datetime) -> int:
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def ticks_to_datetime(ticks: int) -> datetime:
    """Ticks to an aware datetime (sub-microsecond digits are dropped, as Python cannot hold them)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ticks // 10)


def format_ticks(ticks: int) -> str:
    """PI's text form: whole seconds as `...:SSZ`, otherwise up to 7 digits with trailing zeros trimmed."""
    seconds, frac = divmod(ticks, TICKS_PER_SECOND)
    base = (datetime(1970, 1, 1) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        return f"{base}.{frac:07d}".rstrip("0") + "Z"
    return base + "Z"


def format_datetime(value: datetime) -> str:
    return format_ticks(datetime_to_ticks(value))

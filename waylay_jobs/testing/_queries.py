"""Query-string parsing of the fake: list filters, ``TimestampSpec``, events filters.

Parsing is separate from the server so it can be tested and reasoned about on its own.
Bad values raise :class:`QueryError`, which the server turns into a 400.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Sequence
from typing import Optional
from urllib.parse import parse_qs

from ._records import FUNCTION_TYPES, JOB_TYPES, LIST_JOB_TYPES, STATES


class QueryError(ValueError):
    """A query or path value the registry rejects with ``400``."""

    def __init__(self, message: str, code: str = "INVALID_QUERY") -> None:
        super().__init__(message)
        self.code = code


_DURATION = re.compile(r"(\d+)([ybwdhms])?")
_UNIT_SECONDS = {
    "y": 365 * 86400,
    "b": 30 * 86400,
    "w": 7 * 86400,
    "d": 86400,
    "h": 3600,
    "m": 60,
    "s": 1,
}
_PERIOD = re.compile(
    r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?"
)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d\d:\d\d)?"
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(Z|[+-]\d\d:\d\d)?")


def _zone(text: Optional[str]) -> dt.timezone:
    if not text or text == "Z":
        return dt.timezone.utc
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def _period_age(match: re.Match[str]) -> Optional[dt.timedelta]:
    years, months, weeks, days, hours, minutes, seconds = match.groups()
    if not any(match.groups()) or match.group(0).endswith("T"):
        return None
    return dt.timedelta(
        days=int(years or 0) * 365 + int(months or 0) * 30 + int(weeks or 0) * 7 + int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=float(seconds or 0),
    )


def parse_timestamp_spec(text: str, now: dt.datetime, name: str = "timestamp") -> dt.datetime:
    """Resolve a ``TimestampSpec`` (§3.2) to an aware UTC datetime.

    Ages (``1d``, ``3600000`` ms, ``P1D``, ``PT12H``) count back from ``now``; dates and
    date-times (optional seconds, fraction and offset; naive means UTC) are absolute.
    """
    duration = _DURATION.fullmatch(text)
    if duration:
        amount, unit = int(duration.group(1)), duration.group(2)
        seconds = amount / 1000 if unit is None else amount * _UNIT_SECONDS[unit]
        return now - dt.timedelta(seconds=seconds)
    period = _PERIOD.fullmatch(text)
    if period:
        age = _period_age(period)
        if age is not None:
            return now - age
    stamp = _DATETIME.fullmatch(text)
    if stamp:
        year, month, day, hour, minute, second, fraction, zone = stamp.groups()
        micros = round(float(fraction) * 1_000_000) if fraction else 0
        try:
            return dt.datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second or 0),
                min(micros, 999_999),
                tzinfo=_zone(zone),
            ).astimezone(dt.timezone.utc)
        except ValueError as error:
            raise QueryError(f"querystring/{name} is not a valid date-time: {text!r}") from error
    day = _DATE.fullmatch(text)
    if day:
        try:
            date = dt.datetime(
                int(day.group(1)), int(day.group(2)), int(day.group(3)), tzinfo=_zone(day.group(4))
            )
        except ValueError as error:
            raise QueryError(f"querystring/{name} is not a valid date: {text!r}") from error
        return date.astimezone(dt.timezone.utc)
    raise QueryError(
        f"querystring/{name} must be a TimestampSpec (an age like 1d, 12h, 3600000 or P1D, "
        f"or an ISO date or date-time), got {text!r}"
    )


def _single(query: dict[str, list[str]], name: str) -> Optional[str]:
    values = [value for value in query.get(name, []) if value != ""]
    if len(values) > 1:
        raise QueryError(f"querystring/{name} must be given once, got {len(values)} values")
    return values[0] if values else None


def _multi(
    query: dict[str, list[str]], name: str, allowed: Sequence[str]
) -> Optional[frozenset[str]]:
    values = [part.strip() for value in query.get(name, []) for part in value.split(",")]
    values = [value for value in values if value]
    for value in values:
        if value not in allowed:
            raise QueryError(
                f"querystring/{name} must be one of {', '.join(allowed)}; got {value!r}"
            )
    return frozenset(values) if values else None


@dataclasses.dataclass(frozen=True)
class ListFilter:
    """A parsed list query; ``None`` means "no filter"."""

    limit: int
    types: Optional[frozenset[str]] = None
    states: Optional[frozenset[str]] = None
    function_types: Optional[frozenset[str]] = None
    created_before: Optional[dt.datetime] = None
    created_after: Optional[dt.datetime] = None


def parse_list_query(raw: str, now: dt.datetime, default_limit: int, max_limit: int) -> ListFilter:
    """Parse ``GET /registry/v2/jobs/`` query text (repeated keys or comma-joined values)."""
    query = parse_qs(raw, keep_blank_values=True)
    limit_text = _single(query, "limit")
    limit = default_limit
    if limit_text is not None:
        try:
            number = float(limit_text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise QueryError(f"querystring/limit must be a number >= 0, got {limit_text!r}")
        limit = int(number)
    before = _single(query, "createdBefore")
    after = _single(query, "createdAfter")
    return ListFilter(
        limit=min(limit, max_limit),
        types=_multi(query, "type", LIST_JOB_TYPES),
        states=_multi(query, "state", STATES),
        function_types=_multi(query, "functionType", FUNCTION_TYPES),
        created_before=None
        if before is None
        else parse_timestamp_spec(before, now, "createdBefore"),
        created_after=None if after is None else parse_timestamp_spec(after, now, "createdAfter"),
    )


@dataclasses.dataclass(frozen=True)
class EventsFilter:
    """A parsed events query."""

    type: Optional[str] = None
    id: Optional[str] = None
    children: bool = False


def parse_events_query(raw: str) -> EventsFilter:
    """Parse ``GET /registry/v2/jobs/events`` query text: ``type`` (one), ``id``, ``children``."""
    query = parse_qs(raw, keep_blank_values=True)
    job_type = _single(query, "type")
    if job_type is not None and job_type not in JOB_TYPES:
        raise QueryError(
            f"querystring/type must be one of {', '.join(JOB_TYPES)}; got {job_type!r}"
        )
    children = _single(query, "children")
    if children not in (None, "true", "false"):
        raise QueryError(f"querystring/children must be true or false, got {children!r}")
    return EventsFilter(type=job_type, id=_single(query, "id"), children=children == "true")

"""Query encoding and validation for ``list`` and ``events`` (spec §2.1, §2.3, §3.2).

Pure functions: Python values in, the ``(name, value)`` pairs of the query string out, or
:class:`InvalidArgument` before anything is sent. Lists become repeated keys, booleans lowercase
``true``/``false``, enums their value, ``datetime``/``date``/``timedelta`` the wire forms of a
``TimestampSpec``. Strings that are merely unknown (a job type newer than this library) pass
through: the server decides.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, Union

from ._exceptions import InvalidArgument

if TYPE_CHECKING:
    from typing_extensions import Unpack

Params = list[tuple[str, str]]
#: A job type, state or function type, or several (each a string or an enum member).
Names = Union[str, enum.Enum, Sequence[Union[str, enum.Enum]], set[Any], frozenset[Any]]
#: ``createdBefore``/``createdAfter``: one of the four ``TimestampSpec`` strings, or a
#: ``datetime``, ``date`` or ``timedelta`` (an age).
TimestampSpec = Union[str, datetime, date, timedelta]


class ListFilters(TypedDict, total=False):
    """The filters of ``list``, declared once: the keywords of :func:`encode_list_query`
    (typed, for ``**filters: Unpack[ListFilters]``), and in ``query=`` under the wire name
    (the camelCase) or this name."""

    limit: float
    type: Names
    state: Names
    function_type: Names
    created_before: TimestampSpec
    created_after: TimestampSpec


# The four TimestampSpec forms of spec §3.2, anchored. The spec's own patterns are unanchored
# and its period pattern demands a fraction on seconds (a bug): here the fraction is optional.
_TIMESTAMP_FORMS = (
    re.compile(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?", re.A),
    re.compile(r"\d+[ybwdhms]?", re.A),
    re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d\d:\d\d)?", re.A),
    re.compile(r"\d{4}-\d{2}-\d{2}(Z|[+-]\d\d:\d\d)?", re.A),
)
TIMESTAMP_FORMS_HELP = (
    "an ISO-8601 period (P1D, PT12H), an age (1d, 12h, 30m, 3600000 ms), "
    "a date-time (2024-05-01T10:00:00Z) or a date (2024-05-01), "
    "or a datetime, date or timedelta"
)

_KINDS = {"Names": "names", "TimestampSpec": "timestamp", "float": "limit"}
# Wire name -> (the ListFilters name, kind), in the order of ListFilters (the order of the
# query string).
_LIST_KEYS: dict[str, tuple[str, str]] = {
    re.sub(r"_(.)", lambda m: m.group(1).upper(), name): (
        name,
        _KINDS[str(getattr(hint, "__forward_arg__", hint))],
    )
    for name, hint in ListFilters.__annotations__.items()
}
_EVENTS_KEYS = ("type", "id", "children")


def encode_list_query(
    query: Mapping[str, Any] | None = None, **filters: Unpack[ListFilters]
) -> Params:
    """Validate and encode the ``GET /registry/v2/jobs/`` query.

    Either ``query`` (wire names: ``type``, ``state``, ``functionType``, ``createdBefore``,
    ``createdAfter``, ``limit``; the snake_case names are accepted too) or the keywords of
    :class:`ListFilters`, not both. ``None`` values are left out. Keys this library does not
    know are passed through when their values are strings, numbers, booleans or lists of
    those, like the official SDK.

    Raises:
        InvalidArgument: a wrong type, a negative ``limit``, a timestamp in none of the forms.
        TypeError: a keyword that is not a filter.
    """
    aliases = {name: wire for wire, (name, _) in _LIST_KEYS.items()}
    unknown = [name for name in filters if name not in aliases]
    if unknown:
        raise TypeError(f"encode_list_query() got an unexpected keyword argument {unknown[0]!r}")
    given = {aliases[name]: value for name, value in filters.items() if value is not None}
    extras: dict[str, Any] = {}
    if query is not None:
        if given:
            raise InvalidArgument(
                "expected either query= or keyword filters, got both: query and "
                + ", ".join(_snake(name) for name in given)
            )
        given, extras = _split_list_mapping(query)
    params: Params = []
    for name, (_, kind) in _LIST_KEYS.items():
        value = given.get(name)
        if value is None:
            continue
        if kind == "limit":
            params.append((name, _limit(value)))
        elif kind == "names":
            params.extend((name, item) for item in _names(name, value))
        else:
            params.append((name, encode_timestamp(name, value)))
    params.extend(_extras(extras))
    return params


def encode_events_query(
    query: Mapping[str, Any] | None = None,
    *,
    type: Any = None,
    id: Any = None,
    children: Any = None,
) -> Params:
    """Validate and encode the ``GET /registry/v2/jobs/events`` query.

    ``type`` is one job type (not a list), ``id`` a non-empty string, ``children`` a bool.
    Either ``query`` or the keywords, not both; unknown keys in ``query`` pass through.
    """
    given = {"type": type, "id": id, "children": children}
    extras: dict[str, Any] = {}
    if query is not None:
        if any(value is not None for value in given.values()):
            raise InvalidArgument("expected either query= or keyword filters, got both")
        mapping = _mapping(query)
        given = {key: mapping.get(key) for key in _EVENTS_KEYS}
        extras = {key: value for key, value in mapping.items() if key not in _EVENTS_KEYS}
    params: Params = []
    if given["type"] is not None:
        if isinstance(given["type"], (list, tuple, set, frozenset)):
            raise InvalidArgument(
                f"expected type to be one job type (events filter on a single type), "
                f"got {given['type']!r}"
            )
        params.append(("type", _name("type", given["type"])))
    if given["id"] is not None:
        job_id = given["id"]
        if not isinstance(job_id, str) or not job_id.strip():
            raise InvalidArgument(f"expected id to be a non-empty job id string, got {job_id!r}")
        params.append(("id", job_id))
    if given["children"] is not None:
        if not isinstance(given["children"], bool):
            raise InvalidArgument(
                f"expected children to be True or False, got {given['children']!r}"
            )
        params.append(("children", "true" if given["children"] else "false"))
    params.extend(_extras(extras))
    return params


def encode_timestamp(name: str, value: Any) -> str:
    """A ``createdBefore``/``createdAfter`` value in its wire form (spec §3.2)."""
    if isinstance(value, datetime):
        offset = value.utcoffset()
        text = value.isoformat()
        if offset is not None and offset == timedelta(0):
            text = value.replace(tzinfo=None).isoformat() + "Z"
        return text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return encode_period(name, value)
    if isinstance(value, str):
        if any(form.fullmatch(value) for form in _TIMESTAMP_FORMS):
            return value
        hint = " (ages carry no sign: '1d' means the last day)" if value.startswith("-") else ""
        raise InvalidArgument(f"expected {name} to be {TIMESTAMP_FORMS_HELP}; got {value!r}{hint}")
    raise InvalidArgument(
        f"expected {name} to be {TIMESTAMP_FORMS_HELP}; got a {_typename(value)}: {value!r}"
    )


def encode_period(name: str, value: timedelta) -> str:
    """A non-negative ``timedelta`` as an ISO-8601 period: ``P1D``, ``PT12H``, ``PT1M30S``."""
    if value < timedelta(0):
        raise InvalidArgument(
            f"expected {name} to be an age >= 0 (it is measured back from now), got {value!r}"
        )
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "P" + (f"{value.days}D" if value.days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if value.microseconds:
        clock += f"{seconds}.{value.microseconds:06d}".rstrip("0") + "S"
    elif seconds:
        clock += f"{seconds}S"
    if clock:
        text += "T" + clock
    return text if text != "P" else "PT0S"


def _split_list_mapping(query: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    mapping = _mapping(query)
    aliases = {alias: wire for wire, (alias, _) in _LIST_KEYS.items()}
    known: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in mapping.items():
        wire = aliases.get(key, key)
        if wire in _LIST_KEYS:
            if wire in known:
                raise InvalidArgument(f"query names {wire!r} twice (as {wire!r} and its alias)")
            known[wire] = value
        else:
            extras[key] = value
    return known, extras


def _mapping(query: Any) -> Mapping[str, Any]:
    if not isinstance(query, Mapping):
        raise InvalidArgument(f"expected query to be a dict, got a {_typename(query)}")
    for key in query:
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"expected the query keys to be non-empty strings, got {key!r}")
    return query


def _limit(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"expected limit to be a number >= 0, got a {_typename(value)}")
    if (isinstance(value, float) and not math.isfinite(value)) or value < 0:
        raise InvalidArgument(f"expected limit to be a number >= 0, got {value!r}")
    return str(value)


def _names(name: str, value: Any) -> list[str]:
    if isinstance(value, (str, enum.Enum)):
        return [_name(name, value)]
    if isinstance(value, (list, tuple)):
        return [_name(name, item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_name(name, item) for item in value)
    raise InvalidArgument(
        f"expected {name} to be a string or a list of strings, got a {_typename(value)}"
    )


def _name(name: str, value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if not isinstance(value, str) or not value:
        raise InvalidArgument(
            f"expected each {name} value to be a non-empty string (or enum member), got {value!r}"
        )
    return value


def _extras(extras: Mapping[str, Any]) -> Params:
    params: Params = []
    for key, value in extras.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if item is None:
                continue
            params.append((key, _scalar(key, item)))
    return params


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise InvalidArgument(
        f"expected the query value of {key!r} to be a string, number or bool, "
        f"got a {_typename(value)}"
    )


def _snake(wire: str) -> str:
    return _LIST_KEYS[wire][0]


def _typename(value: Any) -> str:
    return type(value).__name__


__all__ = [
    "TIMESTAMP_FORMS_HELP",
    "ListFilters",
    "encode_events_query",
    "encode_list_query",
    "encode_period",
    "encode_timestamp",
]

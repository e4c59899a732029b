"""Query encoding and validation (spec §2.1, §2.3, §3.2): pure functions, no HTTP."""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta, timezone

import pytest

from waylay_jobs import InvalidArgument
from waylay_jobs._query import (
    encode_events_query,
    encode_list_query,
    encode_period,
    encode_timestamp,
)


class Kind(str, enum.Enum):
    BUILD = "build"
    DEPLOY = "deploy"


def test_both_forms_give_the_same_params() -> None:
    from_dict = encode_list_query(
        {
            "type": ["build", "deploy"],
            "state": ["failed"],
            "functionType": ["plugs"],
            "limit": 10,
            "createdAfter": "1d",
            "createdBefore": "2024-05-01",
        }
    )
    from_keywords = encode_list_query(
        type=["build", "deploy"],
        state=["failed"],
        function_type=["plugs"],
        limit=10,
        created_after="1d",
        created_before=date(2024, 5, 1),
    )
    assert (
        from_dict
        == from_keywords
        == [
            ("limit", "10"),
            ("type", "build"),
            ("type", "deploy"),
            ("state", "failed"),
            ("functionType", "plugs"),
            ("createdBefore", "2024-05-01"),
            ("createdAfter", "1d"),
        ]
    )


def test_snake_case_names_in_the_dict_are_the_wire_names() -> None:
    assert encode_list_query({"function_type": "plugs", "created_after": "2h"}) == [
        ("functionType", "plugs"),
        ("createdAfter", "2h"),
    ]


def test_a_name_and_its_alias_together_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="twice"):
        encode_list_query({"functionType": "plugs", "function_type": "webscripts"})


def test_nothing_given_sends_nothing_and_none_is_left_out() -> None:
    assert encode_list_query() == []
    assert encode_list_query({}) == []
    assert encode_list_query({"type": None, "limit": None}) == []


def test_bare_strings_enums_tuples_and_sets() -> None:
    assert encode_list_query(type="build", state=("failed", "active")) == [
        ("type", "build"),
        ("state", "failed"),
        ("state", "active"),
    ]
    assert encode_list_query(type=[Kind.BUILD, "verify"]) == [("type", "build"), ("type", "verify")]
    assert encode_list_query(type=Kind.DEPLOY) == [("type", "deploy")]
    assert encode_list_query(type={"deploy", "build"}) == [("type", "build"), ("type", "deploy")]


def test_unknown_values_pass_through() -> None:
    assert encode_list_query(type=["teleport"], state="hibernating") == [
        ("type", "teleport"),
        ("state", "hibernating"),
    ]


def test_unknown_keys_pass_through_with_lowercase_booleans() -> None:
    params = encode_list_query({"type": "build", "page": 2, "debug": True, "tag": ["a", "b"]})
    assert params == [
        ("type", "build"),
        ("page", "2"),
        ("debug", "true"),
        ("tag", "a"),
        ("tag", "b"),
    ]
    assert encode_list_query({"kind": Kind.BUILD, "x": None, "y": ["a", None]}) == [
        ("kind", "build"),
        ("y", "a"),
    ]
    with pytest.raises(InvalidArgument, match="'debug'"):
        encode_list_query({"debug": object()})


@pytest.mark.parametrize(("limit", "wire"), [(0, "0"), (10, "10"), (2.5, "2.5"), (10.0, "10.0")])
def test_limit_numbers(limit: float, wire: str) -> None:
    assert encode_list_query(limit=limit) == [("limit", wire)]


@pytest.mark.parametrize("limit", [True, False, -1, -0.5, "10", float("nan"), float("inf"), [1]])
def test_bad_limits(limit: object) -> None:
    with pytest.raises(InvalidArgument, match="limit"):
        encode_list_query(limit=limit)
    with pytest.raises(InvalidArgument, match="limit"):
        encode_list_query({"limit": limit})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"type": 5},
        {"type": [5]},
        {"type": ["build", None]},
        {"type": [""]},
        {"state": True},
        {"function_type": {"plugs": 1}},
        {"state": b"failed"},
    ],
)
def test_wrong_python_types_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        encode_list_query(**kwargs)  # type: ignore[arg-type]


def test_mixing_both_forms_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"both.*limit"):
        encode_list_query({"type": "build"}, limit=5)


@pytest.mark.parametrize("query", [["type", "build"], "type=build", 5])
def test_query_must_be_a_mapping(query: object) -> None:
    with pytest.raises(InvalidArgument, match="dict"):
        encode_list_query(query)  # type: ignore[arg-type]


def test_query_keys_must_be_strings() -> None:
    with pytest.raises(InvalidArgument, match="keys"):
        encode_list_query({1: "x"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2024-01-02T03:04:05Z"),
        (datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=timezone.utc), "2024-01-02T03:04:05.120000Z"),
        (
            datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "2024-01-02T03:04:05+02:00",
        ),
        (
            datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
            "2024-01-02T03:04:05-05:30",
        ),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (date(2024, 3, 1), "2024-03-01"),
        (timedelta(days=1), "P1D"),
        (timedelta(hours=12), "PT12H"),
        (timedelta(minutes=1, seconds=30), "PT1M30S"),
        (timedelta(days=2, hours=3, minutes=4, seconds=5), "P2DT3H4M5S"),
        (timedelta(seconds=1, milliseconds=500), "PT1.5S"),
        (timedelta(0), "PT0S"),
    ],
)
def test_timestamp_values(value: object, wire: str) -> None:
    assert encode_timestamp("createdAfter", value) == wire
    assert encode_list_query(created_after=value) == [("createdAfter", wire)]


@pytest.mark.parametrize(
    "text",
    [
        "P1D",
        "PT12H",
        "P1Y2M",
        "PT1M30S",
        "PT0.5S",
        "P2W",
        "1d",
        "12h",
        "30m",
        "2w",
        "3600000",
        "1y",
        "3b",
        "10s",
        "2024-05-01T10:00:00Z",
        "2024-05-01 10:00",
        "2024-05-01T10:00:00.123+02:00",
        "2024-05-01T10:00",
        "2024-05-01",
        "2024-05-01Z",
        "2024-05-01-03:00",
    ],
)
def test_the_four_string_forms_pass(text: str) -> None:
    assert encode_list_query(created_before=text) == [("createdBefore", text)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "P",
        "PT",
        "P1DT",
        "1 d",
        "-1d",
        "1dd",
        "d1",
        "2024-5-1",
        "2024-05-01T10",
        "2024-05-01T10:00:00+0200",
        "1d\n",
        "\uff11d",  # a fullwidth digit one: not an ASCII digit
        "P1D ",
    ],
)
def test_other_strings_are_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        encode_list_query(query={"createdBefore": text})
    message = str(info.value)
    assert "createdBefore" in message
    assert repr(text) in message
    assert "ISO-8601 period" in message
    assert "date-time" in message


def test_a_signed_age_gets_a_hint() -> None:
    with pytest.raises(InvalidArgument, match="no sign"):
        encode_list_query(created_after="-1d")


@pytest.mark.parametrize("value", [5, 1.5, True, ["1d"], object()])
def test_timestamps_of_the_wrong_type(value: object) -> None:
    with pytest.raises(InvalidArgument, match="createdAfter"):
        encode_list_query(created_after=value)


def test_negative_timedelta_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=">= 0"):
        encode_list_query(created_after=timedelta(hours=-1))
    with pytest.raises(InvalidArgument):
        encode_period("createdAfter", timedelta(microseconds=-1))


def test_events_query_both_forms() -> None:
    expected = [("type", "build"), ("id", "a$b"), ("children", "true")]
    assert encode_events_query(type="build", id="a$b", children=True) == expected
    assert encode_events_query({"type": Kind.BUILD, "id": "a$b", "children": True}) == expected
    assert encode_events_query(children=False) == [("children", "false")]
    assert encode_events_query() == []
    assert encode_events_query({"type": "build", "x": False}) == [("type", "build"), ("x", "false")]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"type": ["build", "deploy"]},
        {"type": 3},
        {"type": ""},
        {"id": ""},
        {"id": "  "},
        {"id": 42},
        {"children": "true"},
        {"children": 1},
    ],
)
def test_events_query_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        encode_events_query(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        encode_events_query(kwargs)


def test_events_query_mixing_forms_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="both"):
        encode_events_query({"type": "build"}, id="x")


def test_the_list_filters_are_declared_once() -> None:
    from waylay_jobs._query import ListFilters

    names = list(ListFilters.__annotations__)
    assert names == ["limit", "type", "state", "function_type", "created_before", "created_after"]
    every = dict.fromkeys(names, "1d")
    every.update(limit=1, type="build", state="failed", function_type="plugs")
    wire = [name for name, _ in encode_list_query(**every)]  # type: ignore[arg-type]
    assert wire == ["limit", "type", "state", "functionType", "createdBefore", "createdAfter"]


def test_an_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'functionType'"):
        encode_list_query(functionType="plugs")  # type: ignore[call-arg]

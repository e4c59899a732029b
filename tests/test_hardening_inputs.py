"""Bad inputs to every public entry point fail at once, clearly, and send nothing.

Each call gets a wrong type or value and must raise ``InvalidArgument`` (or ``ConfigError``
for a profile or environment) whose message says what was expected and names what came
back, before any request reaches the registry. ``test_client.py``, ``test_query.py``,
``test_wait.py`` and ``test_event_stream.py`` test the common cases one by one; this file
sweeps every parameter, including the ones a caller would pass by mistake (``nan``,
``inf``, truthy strings for booleans) and a client or stream used after ``close()``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from waylay_jobs import (
    ConfigError,
    EventStream,
    InvalidArgument,
    JobReference,
    JobsClient,
    JobsError,
)
from waylay_jobs.testing import FakeRegistry

Call = Callable[[JobsClient, str], Any]


@pytest.fixture
def registry(make_fake_registry: Callable[..., FakeRegistry]) -> FakeRegistry:
    return make_fake_registry(speed=0.005, keepalive_interval=60)


@pytest.fixture
def client(registry: FakeRegistry) -> Iterator[JobsClient]:
    with JobsClient(registry.url, retries=0) as client:
        yield client


# Clear messages in another form than "expected ..., got ...".
OTHER_WORDING = ("query names", "has no id", "names no job type", "client is closed")


def _check(exc: JobsError, shows: tuple[str, ...]) -> None:
    message = str(exc)
    if isinstance(exc, InvalidArgument) and not any(w in message for w in OTHER_WORDING):
        assert "expected" in message, message
    for part in shows:
        assert part in message, message


NAN, INF = float("nan"), float("inf")

# (call, what the message must show besides "expected")
CONSTRUCTOR = {
    "gateway-int": (lambda c, u: JobsClient(123), ("gateway_url", "123")),
    "gateway-empty": (lambda c, u: JobsClient("  "), ("gateway_url",)),
    "gateway-ftp": (lambda c, u: JobsClient("ftp://h"), ("http(s)", "ftp://h")),
    "gateway-query": (lambda c, u: JobsClient(u + "/?a=1"), ("query", "?a=1")),
    "gateway-port": (lambda c, u: JobsClient("http://h:99999"), ("port", "99999")),
    "gateway-no-host": (lambda c, u: JobsClient("http://"), ("host",)),
    "token-int": (lambda c, u: JobsClient(u, token=7), ("token", "int")),
    "token-empty": (lambda c, u: JobsClient(u, token=""), ("token", "non-empty")),
    "token-and-key": (
        lambda c, u: JobsClient(u, token="t", api_key="k", api_secret="s"), ("token=", "both"),
    ),
    "key-alone": (lambda c, u: JobsClient(u, api_key="k"), ("api_secret=", "only one")),
    "secret-alone": (lambda c, u: JobsClient(u, api_secret="s"), ("api_key=", "only one")),
    "key-list": (lambda c, u: JobsClient(u, api_key=["k"], api_secret="s"), ("api_key", "list")),
    "tenant-int": (
        lambda c, u: JobsClient(u, api_key="k", api_secret="s", tenant_id=5), ("tenant_id", "int"),
    ),
    "accounts-url-ftp": (
        lambda c, u: JobsClient(u, api_key="k", api_secret="s", accounts_url="ftp://a"),
        ("ftp://a",),
    ),
    "session-str": (lambda c, u: JobsClient(u, session="s"), ("requests.Session", "'s'")),
    "timeout-zero": (lambda c, u: JobsClient(u, timeout=0), ("timeout", "0")),
    "timeout-str": (lambda c, u: JobsClient(u, timeout="5"), ("timeout", "'5'")),
    "timeout-triple": (lambda c, u: JobsClient(u, timeout=(1, 2, 3)), ("timeout", "(1, 2, 3)")),
    "timeout-nan": (lambda c, u: JobsClient(u, timeout=NAN), ("timeout", "nan")),
    "timeout-inf": (lambda c, u: JobsClient(u, timeout=INF), ("timeout", "inf")),
    "timeout-read-inf": (lambda c, u: JobsClient(u, timeout=(1, INF)), ("timeout", "inf")),
    "retries-negative": (lambda c, u: JobsClient(u, retries=-1), ("retries", "-1")),
    "retries-float": (lambda c, u: JobsClient(u, retries=1.5), ("retries", "1.5")),
    "retries-bool": (lambda c, u: JobsClient(u, retries=True), ("retries", "True")),
}  # fmt: skip

LIST = {
    "query-str": (lambda c, u: c.list("type=build"), ("query", "str")),
    "query-and-keywords": (lambda c, u: c.list({"type": "build"}, state="failed"), ("both",)),
    "type-int": (lambda c, u: c.list(type=5), ("type", "int")),
    "state-item-int": (lambda c, u: c.list(state=["failed", 1]), ("state", "1")),
    "function-type-dict": (lambda c, u: c.list(function_type={"a": 1}), ("functionType", "dict")),
    "limit-negative": (lambda c, u: c.list(limit=-1), ("limit", "-1")),
    "limit-str": (lambda c, u: c.list(limit="10"), ("limit", "str")),
    "limit-nan": (lambda c, u: c.list(limit=NAN), ("limit", "nan")),
    "limit-bool": (lambda c, u: c.list(limit=True), ("limit", "bool")),
    "created-word": (
        lambda c, u: c.list(created_before="yesterday"), ("createdBefore", "yesterday"),
    ),
    "created-negative-age": (
        lambda c, u: c.list(created_after=dt.timedelta(days=-1)), ("createdAfter", "days=-1"),
    ),
    "created-int": (lambda c, u: c.list(created_after=5), ("createdAfter", "int")),
    "query-limit-str": (lambda c, u: c.list({"limit": "x"}), ("limit", "str")),
    "query-empty-key": (lambda c, u: c.list({"": 1}), ("keys", "''")),
    "query-nested-value": (lambda c, u: c.list({"foo": {"a": 1}}), ("'foo'", "dict")),
    "query-alias-twice": (
        lambda c, u: c.list({"createdAfter": "1d", "created_after": "2d"}), ("createdAfter",),
    ),
    "query-created-word": (lambda c, u: c.list({"createdAfter": "soon"}), ("soon",)),
    "raw-response-str": (lambda c, u: c.list(raw_response="yes"), ("raw_response", "'yes'")),
    "select-path-int": (lambda c, u: c.list(select_path=5), ("select_path", "5")),
    "raw-and-select": (lambda c, u: c.list(raw_response=True, select_path="jobs"), ("both",)),
}  # fmt: skip

GET = {
    "type-none": (lambda c, u: c.get(None, "x"), ("type", "None")),
    "type-int": (lambda c, u: c.get(5, "x"), ("type", "5")),
    "type-empty": (lambda c, u: c.get("", "x"), ("type", "''")),
    "id-none": (lambda c, u: c.get("build", None), ("id", "None")),
    "id-int": (lambda c, u: c.get("build", 5), ("id", "5")),
    "id-blank": (lambda c, u: c.get("build", "  "), ("id", "'  '")),
    "raw-response-int": (lambda c, u: c.get("build", "x", raw_response=1), ("raw_response", "1")),
    "select-path-list": (lambda c, u: c.get("build", "x", select_path=["job"]), ("select_path",)),
}  # fmt: skip

EVENTS = {
    "query-str": (lambda c, u: c.events("type=build"), ("query", "str")),
    "query-and-keywords": (lambda c, u: c.events({"type": "build"}, id="x"), ("both",)),
    "type-list": (lambda c, u: c.events(type=["build"]), ("type", "['build']")),
    "type-int": (lambda c, u: c.events(type=5), ("type", "5")),
    "id-empty": (lambda c, u: c.events(id=""), ("id", "''")),
    "id-int": (lambda c, u: c.events(id=5), ("id", "5")),
    "children-str": (lambda c, u: c.events(children="yes"), ("children", "'yes'")),
    "query-children-str": (lambda c, u: c.events({"children": "true"}), ("children", "'true'")),
    "idle-zero": (lambda c, u: c.events(idle_timeout=0), ("idle_timeout", "0")),
    "idle-str": (lambda c, u: c.events(idle_timeout="1"), ("idle_timeout", "'1'")),
    "idle-nan": (lambda c, u: c.events(idle_timeout=NAN), ("idle_timeout", "nan")),
    "idle-inf": (lambda c, u: c.events(idle_timeout=INF), ("idle_timeout", "inf")),
    "max-size-zero": (lambda c, u: c.events(max_event_size=0), ("max_event_size", "0")),
    "max-size-float": (lambda c, u: c.events(max_event_size=1.5), ("max_event_size", "1.5")),
    "max-size-bool": (lambda c, u: c.events(max_event_size=True), ("max_event_size", "True")),
}  # fmt: skip

# wait_for with a bare id probes the job types with get: a bad option must fail before that.
WAIT = {
    "job-none": (lambda c, u: c.wait_for(None), ("NoneType",)),
    "job-float": (lambda c, u: c.wait_for(3.5), ("float",)),
    "job-bytes": (lambda c, u: c.wait_for(b"id"), ("bytes",)),
    "job-list": (lambda c, u: c.wait_for(["build", "x"]), ("list",)),
    "job-triple": (lambda c, u: c.wait_for(("a", "b", "c")), ("pair", "('a', 'b', 'c')")),
    "job-pair-int": (lambda c, u: c.wait_for(("build", 5)), ("pair", "5")),
    "job-blank": (lambda c, u: c.wait_for("   "), ("job id",)),
    "job-ref-no-id": (lambda c, u: c.wait_for(JobReference(type="build")), ("id",)),
    "event-link-no-id": (
        lambda c, u: c.wait_for(u + "/registry/v2/jobs/events?type=build"), ("type and id",),
    ),
    "href-no-id": (lambda c, u: c.wait_for(u + "/registry/v2/jobs/build"), ("href",)),
    "timeout-negative": (lambda c, u: c.wait_for("job", timeout=-1), ("timeout", "-1")),
    "timeout-str": (lambda c, u: c.wait_for("job", timeout="60"), ("timeout", "'60'")),
    "timeout-nan": (lambda c, u: c.wait_for("job", timeout=NAN), ("timeout", "nan")),
    "idle-zero": (lambda c, u: c.wait_for("job", idle_timeout=0), ("idle_timeout", "0")),
    "idle-nan": (lambda c, u: c.wait_for("job", idle_timeout=NAN), ("idle_timeout", "nan")),
    "idle-inf": (lambda c, u: c.wait_for("job", idle_timeout=INF), ("idle_timeout", "inf")),
    "poll-str": (lambda c, u: c.wait_for("job", poll_interval="5"), ("poll_interval", "'5'")),
    "poll-nan": (lambda c, u: c.wait_for("job", poll_interval=NAN), ("poll_interval", "nan")),
    "on-event-int": (lambda c, u: c.wait_for("job", on_event=5), ("on_event", "5")),
    "children-str": (lambda c, u: c.wait_for("job", children="false"), ("children", "'false'")),
    "raise-on-failure-str": (
        lambda c, u: c.wait_for("job", raise_on_failure="no"), ("raise_on_failure", "'no'"),
    ),
}  # fmt: skip


def _table(name: str, table: dict[str, tuple[Call, tuple[str, ...]]]) -> list[Any]:
    return [pytest.param(call, shows, id=f"{name}-{key}") for key, (call, shows) in table.items()]


@pytest.mark.parametrize(
    ("call", "shows"),
    _table("JobsClient", CONSTRUCTOR)
    + _table("list", LIST)
    + _table("get", GET)
    + _table("events", EVENTS)
    + _table("wait_for", WAIT),
)
def test_bad_input_fails_before_anything_is_sent(
    registry: FakeRegistry, client: JobsClient, call: Call, shows: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidArgument) as info:
        call(client, registry.url)
    _check(info.value, shows)
    assert registry.requests == []


# -- after close -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.list(), id="list"),
        pytest.param(lambda c: c.get("build", "x"), id="get"),
        pytest.param(lambda c: c.events(type="build", id="x"), id="events"),
        pytest.param(lambda c: c.wait_for(("build", "x"), timeout=5), id="wait_for-pair"),
        pytest.param(lambda c: c.wait_for("x", timeout=5), id="wait_for-bare-id"),
    ],
)
def test_a_closed_client_sends_nothing(
    registry: FakeRegistry, client: JobsClient, call: Callable[[JobsClient], Any]
) -> None:
    client.close()
    with pytest.raises(InvalidArgument, match="closed") as info:
        call(client)
    _check(info.value, ("closed",))
    assert registry.requests == []


def _open_stream(registry: FakeRegistry, client: JobsClient) -> EventStream:
    job_id = registry.add_job("build", "manual")
    stream = client.events(type="build", id=job_id)
    assert next(stream).event == "ack"
    return stream


@pytest.mark.parametrize(
    "use",
    [
        pytest.param(next, id="next"),
        pytest.param(list, id="list"),
    ],
)
def test_an_event_stream_used_after_close(
    registry: FakeRegistry, client: JobsClient, use: Callable[[EventStream], Any]
) -> None:
    stream = _open_stream(registry, client)
    stream.close()
    registry.wait_for_open_streams(0)
    # Reading a closed stream is a caller bug; ending quietly would look like the job's end.
    with pytest.raises(InvalidArgument) as info:
        use(stream)
    _check(info.value, ("closed",))
    stream.close()  # still idempotent
    stream.cancel()
    assert len(registry.requests) == 1


@pytest.mark.parametrize("how", ["closed", "ended", "cancelled"])
def test_cancel_is_harmless_once_the_stream_is_over(
    registry: FakeRegistry, client: JobsClient, how: str
) -> None:
    # A watchdog thread may cancel a stream just after it ended: that must not raise.
    if how == "ended":
        stream = client.events(type="build", id=registry.add_job("build", "finished"))
        assert [e.event for e in stream] == ["ack", "close"]
    else:
        stream = _open_stream(registry, client)
        if how == "closed":
            stream.close()
        else:
            stream.cancel()
            assert list(stream) == []
    stream.cancel()
    stream.cancel()
    registry.wait_for_open_streams(0)


# -- profiles and the environment --------------------------------------------------------------


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("WAYLAY_GATEWAY_URL", "WAYLAY_TOKEN", "WAYLAY_API_KEY", "WAYLAY_API_SECRET",
                 "WAYLAY_PROFILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "Waylay" / "python_sdk"
    directory.mkdir(parents=True)
    return directory


def _write_profile(directory: Path, name: str, document: Any) -> None:
    text = document if isinstance(document, str) else json.dumps(document)
    (directory / f".profile.{name}.json").write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "shows"),
    [
        pytest.param(5, ("profile name", "5"), id="int"),
        pytest.param("a/b", ("profile name", "'a/b'"), id="separator"),
        pytest.param("..", ("profile name", "'..'"), id="dot-dot"),
        pytest.param("", ("profile name", "''"), id="empty"),
    ],
)
def test_from_profile_with_a_bad_name(
    registry: FakeRegistry, config_home: Path, name: Any, shows: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidArgument) as info:
        JobsClient.from_profile(name)
    _check(info.value, shows)
    assert registry.requests == []


@pytest.mark.parametrize(
    ("document", "shows"),
    [
        pytest.param(None, ("not found", ".profile.hardening.json"), id="missing"),
        pytest.param("{not json", ("not valid JSON", ".profile.hardening.json"), id="not-json"),
        pytest.param([], ("a JSON object", "an array"), id="array"),
        pytest.param({"credentials": "x"}, ("'credentials' object", "a string"), id="no-creds"),
        pytest.param(
            {"credentials": {"type": "magic"}}, ("credentials.type", "'magic'"), id="bad-type"
        ),
        pytest.param(
            {"credentials": {"type": "client_credentials", "api_key": "k", "api_secret": 5}},
            ("credentials.api_secret", "a number"),
            id="secret-number",
        ),
        pytest.param(
            {"credentials": {"type": "token", "token": "t", "gateway_url": 5}},
            ("credentials.gateway_url", "a number"),
            id="gateway-number",
        ),
    ],
)
def test_from_profile_with_a_broken_profile(
    registry: FakeRegistry, config_home: Path, document: Any, shows: tuple[str, ...]
) -> None:
    if document is not None:
        _write_profile(config_home, "hardening", document)
    with pytest.raises(ConfigError) as info:
        JobsClient.from_profile("hardening")
    _check(info.value, shows)
    assert registry.requests == []


def test_from_profile_with_bad_options(registry: FakeRegistry, config_home: Path) -> None:
    profile = {"credentials": {"type": "token", "token": "t0k", "gateway_url": registry.url}}
    _write_profile(config_home, "hardening", profile)
    for options, shows in [
        ({"timeout": -1}, ("timeout", "-1")),
        ({"retries": "3"}, ("retries", "'3'")),
        ({"session": object()}, ("requests.Session",)),
    ]:
        with pytest.raises(InvalidArgument) as info:
            JobsClient.from_profile("hardening", **options)
        _check(info.value, shows)
    assert registry.requests == []


def test_from_env_with_half_a_key_pair(
    registry: FakeRegistry, config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLAY_GATEWAY_URL", registry.url)
    monkeypatch.setenv("WAYLAY_API_KEY", "k")
    with pytest.raises(ConfigError, match="WAYLAY_API_SECRET is not"):
        JobsClient.from_env()
    assert registry.requests == []

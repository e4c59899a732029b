"""The fake registry (waylay_jobs.testing) checked over real HTTP with requests and raw sockets.

Only the standard library and requests are used as clients: the fake must stand on its own
as an independent check of the waylay_jobs client.
"""

from __future__ import annotations

import base64
import codecs
import datetime as dt
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote

import pytest
import requests

from waylay_jobs.testing import JOB_TYPES, FakeRegistry, Faults, RecordedRequest, new_job_id

DATA = Path(__file__).parent / "data"
JOBS = "/registry/v2/jobs/"
EVENTS = "/registry/v2/jobs/events"
TERMINAL = ("completed", "failed")
JOB_EVENT_NAMES = ("waiting", "active", "completed", "failed", "delayed", "waiting-children")


# -- a minimal JSON Schema checker for the generated schemas (type/anyOf/$ref/enum/...) ---------


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((DATA / "schemas" / f"{name}.json").read_text())
    return schema


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> None:
    if "$ref" in schema:
        _check(value, root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root, path)
    if "anyOf" in schema:
        problems = []
        for branch in schema["anyOf"]:
            try:
                _check(value, branch, root, path)
                break
            except AssertionError as error:
                problems.append(str(error))
        else:
            raise AssertionError(f"{path}: no anyOf branch matches: {problems}")
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} not in {schema['enum']}"
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert any(_TYPES[t](value) for t in types), f"{path}: {value!r} is not {types}"
    if "minimum" in schema:
        assert value >= schema["minimum"], f"{path}: {value!r} < {schema['minimum']}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{path}: required key {key!r} missing"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                _check(item, props[key], root, f"{path}.{key}")
            elif isinstance(extra, dict):
                _check(item, extra, root, f"{path}.{key}")
            else:
                assert extra is not False, f"{path}: unexpected key {key!r}"
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check(item, schema["items"], root, f"{path}[{index}]")


def validate(document: Any, name: str) -> None:
    """Assert ``document`` matches schema ``name`` and contains no ``null`` anywhere."""
    root = _schema(name)
    _check(document, root, root, "$")
    assert "null" not in json.dumps(document), "optional fields must be omitted, not null"


# -- clients -----------------------------------------------------------------------------------

_LINE_END = re.compile(r"\r\n|\r|\n")


def parse_sse(text: str, final: bool = True) -> tuple[list[dict[str, str]], int]:
    """WHATWG-style parse: returns the dispatched events and how much text they consumed.

    With ``final=False`` more text may follow, so a trailing CR is held back."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    pos = consumed = 0
    for match in _LINE_END.finditer(text):
        if not final and match.group() == "\r" and match.end() == len(text):
            break  # may be the first half of a CRLF
        line, pos = text[pos : match.start()], match.end()
        if line == "":
            if current:
                events.append(current)
            current, consumed = {}, pos
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            current["data"] = current["data"] + "\n" + value if "data" in current else value
        elif name == "event":
            current["event"] = value
    return events, consumed


class Stream:
    """An event stream read with requests: iterate events, or read to the end."""

    def __init__(self, reg: FakeRegistry, headers: Optional[dict[str, str]] = None, **params: Any):
        self.response = requests.get(
            reg.url + EVENTS, params=params, stream=True, timeout=5,
            headers={"Accept": "text/event-stream", **(headers or {})},
        )  # fmt: skip
        self._events = self._read()
        self.ended = False

    def _read(self) -> Iterator[dict[str, str]]:
        decoder = codecs.getincrementaldecoder("utf-8")()
        text = ""
        for chunk in self.response.iter_content(chunk_size=None):
            text += decoder.decode(chunk)
            text = text[1:] if text.startswith("\ufeff") else text
            events, consumed = parse_sse(text, final=False)
            text = text[consumed:]
            yield from events
        yield from parse_sse(text + decoder.decode(b"", final=True))[0]
        self.ended = True

    def __iter__(self) -> Iterator[dict[str, str]]:
        return self._events

    def until(self, predicate: Callable[[dict[str, str]], bool]) -> list[dict[str, str]]:
        """Read events up to and including the first one matching ``predicate``."""
        seen = []
        for event in self:
            seen.append(event)
            if predicate(event):
                return seen
        raise AssertionError(f"stream ended before the awaited event; got {names(seen)}")

    def all(self) -> list[dict[str, str]]:
        """Read to the end of the body."""
        return list(self)

    def close(self) -> None:
        self.response.close()


def names(events: list[dict[str, str]], keepalives: bool = False) -> list[str]:
    return [e["event"] for e in events if keepalives or e["event"] != "keep-alive"]


def decoded(event: dict[str, str]) -> dict[str, Any]:
    data: Any = json.loads(event["data"]) if event["event"] in JOB_EVENT_NAMES else event["data"]
    return {"event": event["event"], "data": data}


def raw_get(reg: FakeRegistry, target: str, extra: str = "") -> bytes:
    """The raw response bytes (status line, headers, body) of one GET with Connection: close."""
    with socket.create_connection(("127.0.0.1", reg.port), timeout=5) as sock:
        request = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"
        sock.sendall(request.encode())
        received = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return received
            received += data


def split_response(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


def dechunk(body: bytes) -> tuple[list[bytes], bool]:
    """Chunks of a chunked body, and whether the terminating chunk was there."""
    chunks: list[bytes] = []
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return chunks, True
        chunks.append(rest[:size])
        body = rest[size + 2 :]
    return chunks, False


def events_target(job_type: str, job_id: str, children: bool = False) -> str:
    query = f"type={job_type}&id={quote(job_id, safe='')}"
    return EVENTS + "?" + query + ("&children=true" if children else "")


# -- server lifecycle --------------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_start_serves_at_once_and_stop_leaves_no_threads_or_fds() -> None:
    threads_before, fds_before = threading.active_count(), _open_fds()
    reg = FakeRegistry(speed=0.01, keepalive_interval=0.02, faults=Faults(stall_after=0, times=1))
    reg.start()
    # the listening socket is ready when start() returns: the first request needs no retry
    session = requests.Session()
    assert session.get(reg.url + JOBS, timeout=5).status_code == 200  # keeps an idle connection
    stalled = Stream(reg)  # first stream: stalled without bytes
    live = Stream(reg)  # second stream: keep-alives only, never closes
    reg.wait_for_subscribers(2, timeout=5)
    results: dict[str, str] = {}

    def read(name: str, stream: Stream) -> None:
        try:
            stream.all()
            results[name] = "eof"
        except requests.RequestException as error:
            results[name] = type(error).__name__

    readers = [
        threading.Thread(target=read, args=item) for item in (("stalled", stalled), ("live", live))
    ]
    for reader in readers:
        reader.start()
    assert reg.open_streams == 2
    reg.stop()
    for reader in readers:
        reader.join(5)
        assert not reader.is_alive(), "a stream blocked in the server did not end on stop()"
    assert set(results) == {"stalled", "live"}
    stalled.close()
    live.close()
    session.close()
    assert reg.errors == []
    assert threading.active_count() == threads_before
    assert _open_fds() == fds_before
    with pytest.raises(requests.ConnectionError):
        requests.get(reg.url + JOBS, timeout=5)


def test_context_manager_stop_is_idempotent_and_start_once() -> None:
    with FakeRegistry() as reg:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", reg.url)
        assert reg.port > 0
    reg.stop()
    with pytest.raises(RuntimeError, match="started once"):
        reg.start()
    with pytest.raises(RuntimeError, match="not started"):
        _ = FakeRegistry().url


def test_fixture_is_fast_and_started(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("build", "success", start="subscribe")
    stream = Stream(fake_registry, type="build", id=job_id)
    assert names(stream.all())[-1] == "close"


def test_factory_fixture(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(api_key="k", api_secret="s")
    assert requests.get(reg.url + JOBS, timeout=5).status_code == 401


# -- list ----------------------------------------------------------------------------------------


def _ago(**delta: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(**delta)


@pytest.fixture
def populated(fake_registry: FakeRegistry) -> dict[str, str]:
    reg = fake_registry
    return {
        "old_build": reg.add_job("build", "finished", created_at=_ago(days=3)),
        "deploy_failed": reg.add_job(
            "deploy", "finished-failed", function_type="webscripts", created_at=_ago(hours=2)
        ),
        "verify_model": reg.add_job(
            "verify", "manual", function_type="kfserving", created_at=_ago(minutes=30)
        ),
        "batch": reg.add_job("batch", "manual", created_at=_ago(minutes=5)),
        "new_build": reg.add_job("build", "manual"),
    }


def _list(reg: FakeRegistry, query: Any = None) -> requests.Response:
    return requests.get(reg.url + JOBS, params=query, timeout=5)


def _ids(response: requests.Response) -> list[str]:
    return [job["id"] for job in response.json()["jobs"]]


def test_list_shape_newest_first_and_schema(
    fake_registry: FakeRegistry, populated: dict[str, str]
) -> None:
    response = _list(fake_registry)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    validate(body, "JobsResponse")
    assert body["limit"] == 10
    order = ["new_build", "batch", "verify_model", "deploy_failed", "old_build"]
    assert _ids(response) == [populated[name] for name in order]
    by_id = {job["id"]: job for job in body["jobs"]}
    build = by_id[populated["old_build"]]
    assert set(build) == {
        "type", "id", "operation", "createdBy", "createdAt", "processedAt", "finishedAt",
        "attemptsMade", "state", "function", "_links",
    }  # fmt: skip
    base = fake_registry.url
    assert build["_links"] == {
        "job": {"href": f"{base}/registry/v2/jobs/build/{build['id']}", "jobType": "build"},
        "event": {
            "href": f"{base}/registry/v2/jobs/events?type=build&id={build['id']}&children=true"
        },
        "plug": {"href": f"{base}/registry/v2/plugs/temperatureCheck/versions/1.0.2"},
    }
    assert "webscript" in by_id[populated["deploy_failed"]]["_links"]
    assert "model" in by_id[populated["verify_model"]]["_links"]
    batch = by_id[populated["batch"]]
    assert "function" not in batch
    assert set(batch["_links"]) == {"job", "event"}
    assert re.fullmatch(r"[0-9a-f-]{36}\$[A-Za-z0-9]{20}", build["id"])
    assert "processedAt" not in by_id[populated["new_build"]]


@pytest.mark.parametrize(
    "query",
    [
        [("type", "build"), ("type", "deploy")],
        [("type", "build,deploy")],
        [("type", "build, deploy"), ("type", "")],
    ],
)
def test_list_type_filter_repeated_or_comma_joined(
    fake_registry: FakeRegistry, populated: dict[str, str], query: list[tuple[str, str]]
) -> None:
    expected = [populated[n] for n in ("new_build", "deploy_failed", "old_build")]
    assert _ids(_list(fake_registry, query)) == expected


def test_list_state_and_function_type_filters(
    fake_registry: FakeRegistry, populated: dict[str, str]
) -> None:
    failed_or_done = _list(fake_registry, [("state", "completed"), ("state", "failed")])
    assert _ids(failed_or_done) == [populated["deploy_failed"], populated["old_build"]]
    models = _list(fake_registry, {"functionType": "kfserving"})
    assert _ids(models) == [populated["verify_model"]]
    assert _ids(
        _list(fake_registry, {"functionType": "plugs", "state": "waiting", "type": "batch"})
    ) == [populated["batch"]]


@pytest.mark.parametrize(
    ("limit", "applied", "count"),
    [("2", 2, 2), ("2.5", 2, 2), ("0", 0, 0), ("10.0", 10, 5), ("", 10, 5), ("1000", 100, 5)],
)
def test_list_limit_int_or_float_text_is_echoed(
    fake_registry: FakeRegistry, populated: dict[str, str], limit: str, applied: int, count: int
) -> None:
    body = _list(fake_registry, {"limit": limit}).json()
    assert body["limit"] == applied
    assert len(body["jobs"]) == count


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("createdAfter", "1d", ["new_build", "batch", "verify_model", "deploy_failed"]),
        ("createdAfter", "1h", ["new_build", "batch", "verify_model"]),
        ("createdAfter", "600000", ["new_build", "batch"]),  # milliseconds
        ("createdAfter", "10m", ["new_build", "batch"]),
        (
            "createdAfter",
            "1w",
            ["new_build", "batch", "verify_model", "deploy_failed", "old_build"],
        ),
        ("createdAfter", "P1D", ["new_build", "batch", "verify_model", "deploy_failed"]),
        ("createdAfter", "PT1H", ["new_build", "batch", "verify_model"]),
        ("createdAfter", "PT600.5S", ["new_build", "batch"]),
        ("createdBefore", "1d", ["old_build"]),
        ("createdBefore", "PT12H", ["old_build"]),
        # deploy_failed was created 2 h before the fixture ran, so before "2 h before the request"
        ("createdBefore", "2h", ["deploy_failed", "old_build"]),
        ("createdBefore", "2000-01-01", []),
        (
            "createdAfter",
            "2000-01-01T00:00:00Z",
            ["new_build", "batch", "verify_model", "deploy_failed", "old_build"],
        ),
        (
            "createdAfter",
            "2000-01-01 00:00",
            ["new_build", "batch", "verify_model", "deploy_failed", "old_build"],
        ),
        (
            "createdAfter",
            "2000-01-01T00:00:00.123+02:00",
            ["new_build", "batch", "verify_model", "deploy_failed", "old_build"],
        ),
        ("createdAfter", "2999-01-01Z", []),
    ],
)
def test_list_created_filters_accept_every_timestamp_spec_form(
    fake_registry: FakeRegistry,
    populated: dict[str, str],
    param: str,
    value: str,
    expected: list[str],
) -> None:
    response = _list(fake_registry, {param: value})
    assert response.status_code == 200, response.text
    assert _ids(response) == [populated[name] for name in expected]


def test_list_created_after_absolute_datetime_splits_jobs(
    fake_registry: FakeRegistry, populated: dict[str, str]
) -> None:
    cut = _ago(hours=1).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _ids(_list(fake_registry, {"createdAfter": cut})) == [
        populated[n] for n in ("new_build", "batch", "verify_model")
    ]
    assert _ids(_list(fake_registry, {"createdBefore": cut})) == [
        populated[n] for n in ("deploy_failed", "old_build")
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "nan"},
        {"type": "cleanup"},
        {"type": "build,nope"},
        {"state": "done"},
        {"functionType": "lambda"},
        {"createdAfter": "-1d"},
        {"createdAfter": "yesterday"},
        {"createdBefore": "2024-13-01"},
        {"createdBefore": "P"},
        {"createdBefore": "PT"},
        {"createdAfter": "1x"},
        {"createdAfter": "2024-05-01T25:00:00Z"},
    ],
)
def test_list_bad_values_are_400(fake_registry: FakeRegistry, query: dict[str, str]) -> None:
    response = _list(fake_registry, query)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "code", "statusCode"}
    assert body["statusCode"] == 400
    assert next(iter(query)) in body["error"]


def test_list_needs_the_trailing_slash(fake_registry: FakeRegistry) -> None:
    response = requests.get(fake_registry.url + "/registry/v2/jobs", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": "Route GET:/registry/v2/jobs not found", "statusCode": 404}


# -- get -----------------------------------------------------------------------------------------


def _get(reg: FakeRegistry, job_type: str, job_id: str, **kwargs: Any) -> requests.Response:
    return requests.get(f"{reg.url}{JOBS}{job_type}/{quote(job_id, safe='')}", timeout=5, **kwargs)


def test_get_completed_build_matches_the_spec_example(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("build", "finished")
    response = _get(fake_registry, "build", job_id)
    assert response.status_code == 200
    body = response.json()
    validate(body, "JobResponse")
    example = json.loads((DATA / "examples" / "job_build_completed.json").read_text())
    assert set(body) == set(example)
    assert set(body["job"]) == set(example["job"])
    assert set(body["job"]["job"]) == set(example["job"]["job"]) - {"parent"}
    assert set(body["job"]["request"]) == set(example["job"]["request"])
    assert set(body["job"]["result"]) == set(example["job"]["result"])
    assert body["job"]["job"]["id"] == job_id
    assert body["job"]["state"] == "completed"
    assert body["_links"]["event"]["href"].endswith(f"events?type=build&id={job_id}&children=true")


def test_get_failed_deploy_has_reason_and_no_result(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job(
        "deploy", "finished-failed", function_type="webscripts", reason="boom"
    )
    body = _get(fake_registry, "deploy", job_id).json()
    validate(body, "JobResponse")
    example = json.loads((DATA / "examples" / "job_deploy_failed.json").read_text())
    assert set(body["job"]) == set(example["job"])
    assert "result" not in body["job"]
    assert body["job"]["job"]["failedReason"] == "boom"
    assert "webscript" in body["_links"]


@pytest.mark.parametrize("job_type", ["build", "deploy", "verify", "undeploy", "scale", "batch"])
@pytest.mark.parametrize("function_type", ["plugs", "webscripts", "kfserving"])
def test_get_every_type_validates(
    fake_registry: FakeRegistry, job_type: str, function_type: str
) -> None:
    job_id = fake_registry.add_job(job_type, "finished", function_type=function_type)
    validate(_get(fake_registry, job_type, job_id).json(), "JobResponse")
    listed = _list(fake_registry).json()
    validate(listed, "JobsResponse")


@pytest.mark.parametrize("job_id", ["a/b", "x$y z", "100%+ü", new_job_id(), "?#&="])
def test_get_percent_decodes_the_id_segment(fake_registry: FakeRegistry, job_id: str) -> None:
    fake_registry.add_job("build", "manual", id=job_id)
    response = _get(fake_registry, "build", job_id)
    assert response.status_code == 200
    assert response.json()["job"]["job"]["id"] == job_id
    href = response.json()["_links"]["event"]["href"]
    assert "?type=build&id=" in href
    assert " " not in href


def test_get_with_unencoded_slash_is_not_routed(fake_registry: FakeRegistry) -> None:
    fake_registry.add_job("build", "manual", id="a/b")
    response = requests.get(fake_registry.url + JOBS + "build/a/b", timeout=5)
    assert response.status_code == 404


def test_get_unknown_job_is_404(fake_registry: FakeRegistry) -> None:
    response = requests.get(fake_registry.url + JOBS + "build/xyz", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": "Job build/xyz not found", "statusCode": 404}


def test_get_unknown_type_is_400(fake_registry: FakeRegistry) -> None:
    response = requests.get(fake_registry.url + JOBS + "compile/xyz", timeout=5)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_PATH"


# -- auth ----------------------------------------------------------------------------------------


def _claims(token: str) -> dict[str, Any]:
    header, payload, signature = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "typ": "JWT"}
    assert signature
    return dict(json.loads(base64.urlsafe_b64decode(payload + "==")))


def _token(reg: FakeRegistry, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        reg.url + "/accounts/v1/tokens", params={"grant_type": "client_credentials"},
        json={"clientId": client_id, "clientSecret": secret}, timeout=5,
    )  # fmt: skip


def test_token_endpoint_issues_jwt_with_exp(
    make_fake_registry: Callable[..., FakeRegistry],
) -> None:
    reg = make_fake_registry(api_key="key", api_secret="secret", token_ttl=120)
    before = time.time()
    response = _token(reg, "key", "secret")
    assert response.status_code == 200
    token = response.json()["token"]
    claims = _claims(token)
    assert before + 119 <= claims["exp"] <= time.time() + 121
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(reg.url + JOBS, headers=auth, timeout=5).status_code == 200
    assert _token(reg, "key", "wrong").status_code == 401
    bad_grant = requests.post(reg.url + "/accounts/v1/tokens", json={}, timeout=5)
    assert bad_grant.status_code == 400


@pytest.mark.parametrize("endpoint", [JOBS, JOBS + "build/x", EVENTS + "?type=build&id=x"])
@pytest.mark.parametrize(
    "authorization", [None, "Bearer nope", "Basic a2V5OnNlY3JldA==", "Bearer "]
)
def test_every_jobs_endpoint_requires_a_valid_bearer(
    make_fake_registry: Callable[..., FakeRegistry], endpoint: str, authorization: Optional[str]
) -> None:
    reg = make_fake_registry(api_key="key", api_secret="secret")
    headers = {} if authorization is None else {"Authorization": authorization}
    response = requests.get(reg.url + endpoint, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "statusCode"}
    assert body["statusCode"] == 401
    assert "secret" not in response.text
    assert "nope" not in response.text


def test_expired_revoked_and_static_tokens(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(tokens={"static-token"})

    def status(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return requests.get(reg.url + JOBS, headers=headers, timeout=5).status_code

    assert status("static-token") == 200
    expired = reg.issue_token(ttl=-1)
    assert _claims(expired)["exp"] < time.time()
    assert status(expired) == 401
    fresh = reg.issue_token()
    assert status(fresh) == 200
    reg.revoke_tokens()
    assert status(fresh) == 401
    assert status("static-token") == 200


def test_no_credentials_means_no_auth(fake_registry: FakeRegistry) -> None:
    assert requests.get(fake_registry.url + JOBS, timeout=5).status_code == 200
    assert _token(fake_registry, "any", "thing").status_code == 200


# -- events: lifecycles --------------------------------------------------------------------------


def _job_names(events: list[dict[str, str]]) -> list[tuple[str, str]]:
    result = []
    for event in events:
        if event["event"] in JOB_EVENT_NAMES:
            result.append((event["event"], json.loads(event["data"])["job"]["type"]))
        elif event["event"] != "keep-alive":
            result.append((event["event"], ""))
    return result


def test_success_lifecycle_events_in_order_then_close_and_end(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("build", "success", start="subscribe")
    stream = Stream(fake_registry, type="build", id=job_id)
    events = stream.all()
    assert stream.ended
    assert names(events) == ["ack", "waiting", "active", "completed", "close"]
    for event in events:
        validate(decoded(event), "EventWithCloseSSE")
    ack, waiting, active, completed, close = (decoded(e)["data"] for e in names_only(events))
    assert ack == f"Listening for events of build job {job_id}"
    assert waiting["data"] == {}
    assert active["data"] == {"prev": "waiting"}
    assert completed["data"]["prev"] == "active"
    assert close == f"Job build {job_id} completed"
    job = fake_registry.get_job("build", job_id)["job"]
    assert completed["data"]["returnvalue"] == job["result"]
    assert job["job"]["progress"] == 100
    assert job["attemptsMade"] == 1
    assert completed["_links"]["job"]["href"].endswith(f"/registry/v2/jobs/build/{job_id}")
    assert set(completed["_links"]) == {"job", "plug"}


def names_only(events: list[dict[str, str]]) -> list[dict[str, str]]:
    return [e for e in events if e["event"] != "keep-alive"]


def test_success_progress_is_visible_through_get(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("build", "manual")
    fake_registry.transition("build", job_id, "active", progress=25)
    assert fake_registry.get_job("build", job_id)["job"]["job"]["progress"] == 25
    fake_registry.set_progress("build", job_id, {"step": "push"})
    assert _get(fake_registry, "build", job_id).json()["job"]["job"]["progress"] == {"step": "push"}


def test_fail_lifecycle(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("deploy", "fail", reason="ImagePullBackOff", start="subscribe")
    events = Stream(fake_registry, type="deploy", id=job_id).all()
    assert names(events) == ["ack", "waiting", "active", "failed", "close"]
    failed = decoded(events[-2] if events[-2]["event"] == "failed" else names_only(events)[-2])
    validate(failed, "EventWithCloseSSE")
    assert failed["data"]["data"] == {"prev": "active", "failedReason": "ImagePullBackOff"}
    assert names_only(events)[-1]["data"] == f"Job deploy {job_id} failed"
    job = fake_registry.get_job("deploy", job_id)["job"]
    assert job["state"] == "failed"
    assert job["job"]["failedReason"] == "ImagePullBackOff"
    assert "result" not in job
    assert "finishedAt" in job


def test_retry_lifecycle_failed_is_not_final(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("build", "retry", start="subscribe")
    events = names_only(Stream(fake_registry, type="build", id=job_id).all())
    assert names(events) == [
        "ack", "waiting", "active", "failed", "delayed", "waiting", "active", "completed", "close",
    ]  # fmt: skip
    payloads = [decoded(e)["data"] for e in events[1:-1]]
    for event in events:
        validate(decoded(event), "EventWithCloseSSE")
    assert set(payloads[3]["data"]) == {"delay"}
    assert isinstance(payloads[3]["data"]["delay"], int)
    assert payloads[4]["data"] == {"prev": "delayed"}
    job = fake_registry.get_job("build", job_id)["job"]
    assert job["state"] == "completed"
    assert job["attemptsMade"] == 2


def test_retry_twice(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("build", "retry", retries=2, start="subscribe")
    events = names(Stream(fake_registry, type="build", id=job_id).all())
    assert events.count("failed") == 2
    assert events[-2:] == ["completed", "close"]
    assert fake_registry.get_job("build", job_id)["job"]["attemptsMade"] == 3


def test_parent_with_children_interleaved_and_close_last(fake_registry: FakeRegistry) -> None:
    parent = fake_registry.add_job_with_children("verify", ("build", "deploy"), start="subscribe")
    events = Stream(fake_registry, type="verify", id=parent, children="true").all()
    assert _job_names(events) == [
        ("ack", ""), ("waiting-children", "verify"), ("waiting-children", "deploy"),
        ("waiting", "build"), ("active", "build"), ("completed", "build"),
        ("waiting", "deploy"), ("active", "deploy"), ("completed", "deploy"),
        ("waiting", "verify"), ("active", "verify"), ("completed", "verify"), ("close", ""),
    ]  # fmt: skip
    for event in events:
        validate(decoded(event), "EventWithCloseSSE")
    (deploy_key,) = fake_registry.children("verify", parent)
    (build_key,) = fake_registry.children(*deploy_key)
    assert fake_registry.get_job(*deploy_key)["job"]["job"]["parent"] == {"id": parent}
    assert fake_registry.get_job(*build_key)["job"]["job"]["parent"] == {"id": deploy_key[1]}
    build_events = [
        decoded(e)["data"]["job"] for e in events if '"type":"build"' in e.get("data", "")
    ]
    assert build_events
    assert all(ref == {"type": "build", "id": build_key[1]} for ref in build_events)


def test_parent_without_children_flag_sees_only_its_own_events(fake_registry: FakeRegistry) -> None:
    parent = fake_registry.add_job_with_children("verify", start="subscribe")
    events = Stream(fake_registry, type="verify", id=parent, children="false").all()
    assert _job_names(events) == [
        ("ack", ""), ("waiting-children", "verify"), ("waiting", "verify"), ("active", "verify"),
        ("completed", "verify"), ("close", ""),
    ]  # fmt: skip


def test_child_failure_fails_the_parent(fake_registry: FakeRegistry) -> None:
    parent = fake_registry.add_job_with_children("verify", failing="build", start="subscribe")
    events = Stream(fake_registry, type="verify", id=parent, children="true").all()
    assert _job_names(events)[-4:] == [
        ("failed", "build"), ("failed", "deploy"), ("failed", "verify"), ("close", ""),
    ]  # fmt: skip
    assert fake_registry.get_job_state("verify", parent) == "failed"


def test_children_of_the_child_stream(fake_registry: FakeRegistry) -> None:
    parent = fake_registry.add_job_with_children("verify", start=False)
    (deploy_key,) = fake_registry.children("verify", parent)
    stream = Stream(fake_registry, type="deploy", id=deploy_key[1], children="true")
    fake_registry.wait_for_subscribers(1)
    fake_registry.start_job("verify", parent)
    events = stream.all()
    assert _job_names(events) == [
        ("ack", ""), ("waiting-children", "deploy"), ("waiting", "build"), ("active", "build"),
        ("completed", "build"), ("waiting", "deploy"), ("active", "deploy"),
        ("completed", "deploy"), ("close", ""),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("script", "state"), [("finished", "completed"), ("finished-failed", "failed")]
)
def test_already_finished_job_gets_ack_then_close(
    fake_registry: FakeRegistry, script: str, state: str
) -> None:
    job_id = fake_registry.add_job("build", script)
    events = Stream(fake_registry, type="build", id=job_id, children="true").all()
    assert names(events) == ["ack", "close"]
    assert events[1]["data"] == f"Job build {job_id} {state}"
    assert fake_registry.subscriptions == 1


def test_manual_transitions_are_delivered_in_call_order(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("scale", "manual")
    stream = Stream(fake_registry, type="scale", id=job_id)
    fake_registry.wait_for_subscribers(1)
    fake_registry.transition("scale", job_id, "active")
    fake_registry.transition("scale", job_id, "failed", failed_reason="oops", final=False)
    fake_registry.transition("scale", job_id, "delayed", delay_ms=5)
    fake_registry.transition("scale", job_id, "prioritized")  # no event exists for it
    fake_registry.transition("scale", job_id, "active")
    fake_registry.transition("scale", job_id, "completed", result={"replicas": 3})
    events = names_only(stream.all())
    assert names(events) == ["ack", "active", "failed", "delayed", "active", "completed", "close"]
    # `prioritized` is no QueueEvents value, so `prev` is left out
    assert decoded(events[4])["data"]["data"] == {}
    assert decoded(events[5])["data"]["data"]["returnvalue"] == {"replicas": 3}
    assert fake_registry.get_job_state("scale", job_id) == "completed"


def test_transition_errors(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("build", "manual")
    with pytest.raises(KeyError, match="no build job"):
        fake_registry.transition("build", "nope", "active")
    with pytest.raises(ValueError, match="state must be one of"):
        fake_registry.transition("build", job_id, "running")
    with pytest.raises(ValueError, match="script must be one of"):
        fake_registry.add_job("build", "explode")
    with pytest.raises(ValueError, match="already exists"):
        fake_registry.add_job("build", "manual", id=job_id)
    with pytest.raises(ValueError, match="no script waiting"):
        fake_registry.start_job("build", job_id)


def test_unfiltered_stream_carries_all_jobs_and_never_closes(fake_registry: FakeRegistry) -> None:
    build = fake_registry.add_job("build", "manual")
    deploy = fake_registry.add_job("deploy", "manual")
    everything = Stream(fake_registry)
    builds_only = Stream(fake_registry, type="build")
    fake_registry.wait_for_subscribers(2)
    fake_registry.transition("deploy", deploy, "active")
    fake_registry.transition("build", build, "completed")
    fake_registry.transition("deploy", deploy, "completed")
    fake_registry.transition("build", build, "failed")  # a marker: the last event for both streams
    seen = everything.until(lambda e: e["event"] == "failed")
    assert _job_names(seen) == [
        ("ack", ""), ("active", "deploy"), ("completed", "build"), ("completed", "deploy"),
        ("failed", "build"),
    ]  # fmt: skip
    assert seen[0]["data"] == "Listening for events of all jobs"
    only = builds_only.until(lambda e: e["event"] == "failed")
    assert _job_names(only) == [("ack", ""), ("completed", "build"), ("failed", "build")]
    assert not everything.ended
    assert fake_registry.open_streams == 2
    everything.close()
    builds_only.close()


def test_keep_alives_are_sent_while_idle(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(keepalive_interval=0.01)
    job_id = reg.add_job("build", "manual")
    stream = Stream(reg, type="build", id=job_id)
    seen = stream.until(lambda e: e["event"] == "keep-alive")
    validate(decoded(seen[-1]), "EventWithCloseSSE")
    assert seen[-1]["data"] == "keep-alive"
    reg.transition("build", job_id, "completed")
    assert names(list(stream)) == ["completed", "close"]


def test_wire_format_crlf_one_event_per_chunk_compact_json(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("build", "finished")
    status, headers, body = split_response(raw_get(fake_registry, events_target("build", job_id)))
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    chunks, terminated = dechunk(body)
    assert terminated
    assert chunks == [
        f"event: ack\r\ndata: Listening for events of build job {job_id}\r\n\r\n".encode(),
        f"event: close\r\ndata: Job build {job_id} completed\r\n\r\n".encode(),
    ]


def test_job_event_chunk_is_compact_single_line(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("build", "success", start="subscribe")
    _, _, body = split_response(raw_get(fake_registry, events_target("build", job_id)))
    chunks, _ = dechunk(body)
    for chunk in chunks:
        text = chunk.decode()
        assert re.fullmatch(r"event: [a-z-]+\r\ndata: [^\r\n]+\r\n\r\n", text), text
        data = text.split("\r\n")[1][len("data: ") :]
        if data.startswith("{"):
            assert data == json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=False)


def test_event_link_from_get_is_a_working_subscription(fake_registry: FakeRegistry) -> None:
    job_id = fake_registry.add_job("build", "manual")
    href = _get(fake_registry, "build", job_id).json()["_links"]["event"]["href"]
    response = requests.get(href, stream=True, timeout=5)
    fake_registry.wait_for_subscribers(1)
    fake_registry.transition("build", job_id, "completed")
    text = response.text  # reads to the end of the body
    assert text.startswith("event: ack\r\n")
    assert text.endswith(f"Job build {job_id} completed\r\n\r\n")


def test_unknown_id_gets_ack_and_waits_for_the_job(fake_registry: FakeRegistry) -> None:
    stream = Stream(fake_registry, type="build", id="later")
    fake_registry.wait_for_subscribers(1)
    fake_registry.add_job("build", "success", id="later")
    assert names(stream.all()) == ["ack", "waiting", "active", "completed", "close"]


@pytest.mark.parametrize(
    "query", [{"type": "compile"}, {"children": "yes"}, {"type": ["build", "deploy"]}]
)
def test_events_bad_query_is_400(fake_registry: FakeRegistry, query: dict[str, Any]) -> None:
    response = requests.get(fake_registry.url + EVENTS, params=query, timeout=5)
    assert response.status_code == 400
    assert set(response.json()) == {"error", "code", "statusCode"}


# -- faults ------------------------------------------------------------------------------------


def test_close_delimited_framing(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(faults=Faults(framing="close"))
    job_id = reg.add_job("build", "success", start="subscribe")
    status, headers, body = split_response(raw_get(reg, events_target("build", job_id)))
    assert status.endswith("200 OK")
    assert headers["connection"] == "close"
    assert "content-length" not in headers
    assert "transfer-encoding" not in headers
    assert body.startswith(b"event: ack\r\n")
    assert body.endswith(b" completed\r\n\r\n")
    events, _ = parse_sse(body.decode())
    assert names(events) == ["ack", "waiting", "active", "completed", "close"]


def test_close_delimited_framing_for_json(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(faults=Faults(endpoint="list", framing="close"))
    _, headers, body = split_response(raw_get(reg, JOBS))
    assert "content-length" not in headers
    assert json.loads(body) == {"limit": 10, "jobs": []}


@pytest.mark.parametrize("line_ending", ["\n", "\r"])
def test_line_endings(make_fake_registry: Callable[..., FakeRegistry], line_ending: str) -> None:
    reg = make_fake_registry(faults=Faults(line_ending=line_ending))
    job_id = reg.add_job("build", "success", start="subscribe")
    chunks, _ = dechunk(split_response(raw_get(reg, events_target("build", job_id)))[2])
    body = b"".join(chunks).decode()
    other = {"\n": "\r", "\r": "\n"}[line_ending]
    assert other not in body
    assert body.count(line_ending * 2) == 5
    assert names(parse_sse(body)[0]) == ["ack", "waiting", "active", "completed", "close"]


def test_bom(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(faults=Faults(bom=True))
    job_id = reg.add_job("build", "finished")
    chunks, _ = dechunk(split_response(raw_get(reg, events_target("build", job_id)))[2])
    assert chunks[0].startswith(b"\xef\xbb\xbfevent: ack\r\n")
    assert not chunks[1].startswith(b"\xef\xbb\xbf")


def test_drop_after_n_events_breaks_the_chunked_body(
    make_fake_registry: Callable[..., FakeRegistry],
) -> None:
    reg = make_fake_registry(faults=Faults(drop_after=2, times=1))
    job_id = reg.add_job("build", "manual")
    raw: list[bytes] = []
    reader = threading.Thread(
        target=lambda: raw.append(raw_get(reg, events_target("build", job_id)))
    )
    reader.start()
    reg.wait_for_subscribers(1)
    reg.transition("build", job_id, "active")
    reg.transition("build", job_id, "failed", final=False)
    reader.join(5)
    chunks, terminated = dechunk(split_response(raw[0])[2])
    assert not terminated
    assert names(parse_sse(b"".join(chunks).decode())[0]) == ["ack", "active", "failed"]
    stream = Stream(reg, type="build", id=job_id)  # times=1: the second request works
    reg.wait_for_subscribers(2)
    reg.transition("build", job_id, "completed")
    assert names(stream.all()) == ["ack", "completed", "close"]


def test_drop_with_requests_raises(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(faults=Faults(drop_after=1))
    job_id = reg.add_job("build", "success", start="subscribe")
    stream = Stream(reg, type="build", id=job_id)
    seen: list[dict[str, str]] = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        seen.extend(stream)
    assert names(seen) == ["ack", "waiting"]


def test_stall_sends_nothing_not_even_keep_alives(
    make_fake_registry: Callable[..., FakeRegistry],
) -> None:
    reg = make_fake_registry(keepalive_interval=0.01, faults=Faults(stall_after=1))
    job_id = reg.add_job("build", "manual")
    with socket.create_connection(("127.0.0.1", reg.port), timeout=5) as sock:
        sock.sendall(f"GET {events_target('build', job_id)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        reg.wait_for_subscribers(1)
        reg.transition("build", job_id, "active")
        reg.transition("build", job_id, "completed")
        received = b""
        while b"event: active" not in received:
            received += sock.recv(65536)
        # keep-alives are due every 10 ms; a live stream would send some within this window
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            received += sock.recv(65536)
    assert b"keep-alive" not in received
    assert b"completed" not in received


def test_stall_ends_when_the_client_leaves(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(faults=Faults(stall_after=0))
    stream = Stream(reg, type="build", id="x")
    reg.wait_for_subscribers(1)
    assert reg.open_streams == 1
    stream.close()
    reg.wait_for_open_streams(0)
    assert reg.open_streams == 0
    assert reg.errors == []


@pytest.mark.parametrize("status", [429, 503])
def test_status_with_retry_after_for_the_first_k_requests(
    make_fake_registry: Callable[..., FakeRegistry], status: int
) -> None:
    reg = make_fake_registry(faults=Faults(status=status, times=2, retry_after="0"))
    job_id = reg.add_job("build", "finished")
    statuses = []
    for _ in range(3):
        response = requests.get(reg.url + events_target("build", job_id), timeout=5)
        statuses.append(response.status_code)
        if response.status_code == status:
            assert response.headers["Retry-After"] == "0"
            assert response.json() == {"error": response.reason, "statusCode": status}
    assert statuses == [status, status, 200]
    assert _get(reg, "build", job_id).status_code == 200  # other endpoints are untouched


def test_unauthorized_once_on_every_jobs_endpoint(
    make_fake_registry: Callable[..., FakeRegistry],
) -> None:
    reg = make_fake_registry(faults=Faults(endpoint="jobs", status=401, times=1))
    assert _list(reg).status_code == 401
    assert _list(reg).status_code == 200


def test_html_502(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(faults=Faults(endpoint="get", status=502, html=True))
    job_id = reg.add_job("build", "manual")
    response = _get(reg, "build", job_id)
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    assert "<title>502 Bad Gateway</title>" in response.text
    assert "Retry-After" not in response.headers


def test_wrong_content_type_on_events(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(faults=Faults(content_type="text/html"))
    response = requests.get(reg.url + EVENTS, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html"
    assert response.text.startswith("<html>")


def test_truncated_final_event_then_clean_eof(
    make_fake_registry: Callable[..., FakeRegistry],
) -> None:
    reg = make_fake_registry(faults=Faults(truncate_terminal=True))
    job_id = reg.add_job("build", "success", start="subscribe")
    chunks, terminated = dechunk(split_response(raw_get(reg, events_target("build", job_id)))[2])
    assert terminated
    assert chunks[-1].startswith(b"event: completed\r\ndata: {")
    assert not chunks[-1].endswith(b"\n")
    events, _ = parse_sse(b"".join(chunks).decode())
    assert names(events) == ["ack", "waiting", "active"]


def test_malformed_json_in_the_first_job_event(
    make_fake_registry: Callable[..., FakeRegistry],
) -> None:
    reg = make_fake_registry(faults=Faults(malformed_json=True))
    job_id = reg.add_job("build", "success", start="subscribe")
    events = names_only(Stream(reg, type="build", id=job_id).all())
    assert names(events) == ["ack", "waiting", "active", "completed", "close"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[1]["data"])
    json.loads(events[2]["data"])


def test_unknown_event_name(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(faults=Faults(unknown_event=True))
    job_id = reg.add_job("build", "success", start="subscribe")
    events = Stream(reg, type="build", id=job_id).all()
    assert names(events) == ["ack", "progress", "waiting", "active", "completed", "close"]
    assert json.loads(events[1]["data"])["job"] == {"type": "build", "id": job_id}


def test_oversized_event(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(faults=Faults(oversized=5_000_000))
    job_id = reg.add_job("build", "success", start="subscribe")
    events = Stream(reg, type="build", id=job_id).all()
    assert names(events) == ["ack", "waiting", "active", "completed", "close"]
    big = events[1]["data"]
    assert len(big) >= 5_000_000
    payload = json.loads(big)
    assert payload["job"]["id"] == job_id
    assert set(payload["padding"]) == {"x"}
    assert len(events[2]["data"]) < 10_000


def test_per_job_faults_only_touch_that_job(fake_registry: FakeRegistry) -> None:
    broken = fake_registry.add_job(
        "build", "manual", faults=[Faults(status=503, times=1), Faults(endpoint="get", status=500)]
    )
    fine = fake_registry.add_job("build", "manual")
    assert (
        requests.get(fake_registry.url + events_target("build", broken), timeout=5).status_code
        == 503
    )
    assert _get(fake_registry, "build", broken).status_code == 500
    assert _get(fake_registry, "build", fine).status_code == 200
    stream = Stream(fake_registry, type="build", id=broken)  # times=1 used up
    fake_registry.wait_for_subscribers(1)
    fake_registry.transition("build", broken, "completed")
    assert names(stream.all()) == ["ack", "completed", "close"]


def test_token_endpoint_faults(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(
        api_key="k", api_secret="s", faults=Faults(endpoint="token", status=503, times=1)
    )
    assert _token(reg, "k", "s").status_code == 503
    assert _token(reg, "k", "s").status_code == 200


def test_faults_validate_their_fields() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        Faults(endpoint="stream")
    with pytest.raises(ValueError, match="framing"):
        Faults(framing="http2")
    with pytest.raises(ValueError, match="line_ending"):
        Faults(line_ending="\r\r")
    with pytest.raises(ValueError, match="drop_after"):
        Faults(drop_after=-1)
    with pytest.raises(TypeError):
        FakeRegistry(faults=["not a fault"])  # type: ignore[list-item]


# -- observation helpers -----------------------------------------------------------------------


def test_requests_log_and_redacted_repr(make_fake_registry: Callable[..., FakeRegistry]) -> None:
    reg = make_fake_registry(tokens={"tok-123"})
    requests.get(
        reg.url + JOBS + "?type=build&type=deploy&limit=2.5",
        headers={"Authorization": "Bearer tok-123"},
        timeout=5,
    )
    _token(reg, "id", "very-secret")
    logged = reg.wait_for_requests(2)
    assert [(r.method, r.path) for r in logged] == [("GET", JOBS), ("POST", "/accounts/v1/tokens")]
    assert logged[0].query == "type=build&type=deploy&limit=2.5"
    assert logged[0].header("authorization") == "Bearer tok-123"
    assert b"very-secret" in logged[1].body
    assert "tok-123" not in repr(logged[0])
    assert "very-secret" not in repr(logged[1])
    assert isinstance(logged[0], RecordedRequest)
    reg.clear_requests()
    assert reg.requests == []


def test_wait_helpers_time_out_with_a_clear_message(fake_registry: FakeRegistry) -> None:
    with pytest.raises(
        TimeoutError, match=r"expected 1 event stream subscriptions within 0\.01 s, got 0"
    ):
        fake_registry.wait_for_subscribers(1, timeout=0.01)
    with pytest.raises(TimeoutError, match=r"expected 3 open event streams within 0\.01 s, got 0"):
        fake_registry.wait_for_open_streams(3, timeout=0.01)
    with pytest.raises(TimeoutError, match="expected 1 requests to /x"):
        fake_registry.wait_for_requests(1, path="/x", timeout=0.01)


def test_all_job_types_accepted_by_add_job(fake_registry: FakeRegistry) -> None:
    for job_type in JOB_TYPES:
        job_id = fake_registry.add_job(job_type, "finished")
        assert fake_registry.get_job_state(job_type, job_id) == "completed"


@pytest.mark.parametrize("job_type", JOB_TYPES)
def test_events_of_every_job_type_validate(fake_registry: FakeRegistry, job_type: str) -> None:
    job_id = fake_registry.add_job(job_type, "manual", function_type="webscripts")
    stream = Stream(fake_registry, type=job_type, id=job_id)
    fake_registry.wait_for_subscribers(1)
    for state in ("waiting-children", "waiting", "active", "failed", "delayed", "waiting"):
        fake_registry.transition(job_type, job_id, state, final=False)
    fake_registry.transition(job_type, job_id, "completed")
    events = names_only(stream.all())
    assert names(events) == [
        "ack", "waiting-children", "waiting", "active", "failed", "delayed", "waiting",
        "completed", "close",
    ]  # fmt: skip
    for event in events:
        validate(decoded(event), "EventWithCloseSSE")
    # batch jobs have no function; their events name one built from the batch request
    assert all("webscript" in decoded(e)["data"]["_links"] for e in events[1:-1])

"""The transport: URL handling, headers, retries, error mapping, streams (with ``responses``)."""

from __future__ import annotations

import email.utils
import io
import random
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
import urllib3

from waylay_jobs import ApiError, AuthError, InvalidArgument, NotFoundError, TransportError
from waylay_jobs._http.auth import RenewableAuth
from waylay_jobs._http.blocking import (
    POOL_MAXSIZE,
    USER_AGENT,
    Transport,
    json_body,
    normalize_gateway_url,
    quote_segment,
)
from waylay_jobs._version import __version__

GATEWAY = "https://gw.example"
JOB_PATH = "/registry/v2/jobs/build/j1"
JOB_URL = GATEWAY + JOB_PATH
HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\n"
    "<center><h1>502 Bad Gateway</h1></center>\n" + "x" * 400 + "\n</body></html>"
)


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


class Sleeps:
    """Records the backoff delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def transport(sleeps: Sleeps, **options: object) -> Transport:
    return Transport(GATEWAY, _sleep=sleeps, _rng=random.Random(7), **options)  # type: ignore[arg-type]


class RotatingAuth(RenewableAuth):
    """A renewable auth handing out token-0, token-1, ...; counts the renewals."""

    def __init__(self) -> None:
        self.generation = 0
        self.renewals: list[str | None] = []

    def authorize(self, request: requests.PreparedRequest) -> None:
        request.headers["Authorization"] = f"Bearer token-{self.generation}"

    def renew_after_401(self, authorization: str | None) -> bool:
        self.renewals.append(authorization)
        self.generation += 1
        return True


# -- gateway and paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("api.waylay.io", "https://api.waylay.io"),
        ("api.waylay.io/", "https://api.waylay.io"),
        ("https://api.waylay.io///", "https://api.waylay.io"),
        ("  HTTP://127.0.0.1:8080/ ", "http://127.0.0.1:8080"),
        ("https://gw.example/prefix/", "https://gw.example/prefix"),
        ("localhost:9000", "https://localhost:9000"),
    ],
)
def test_gateway_normalised(given: str, normal: str) -> None:
    assert normalize_gateway_url(given) == normal


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://api.waylay.io",
        "file:///etc/passwd",
        "https://",
        "",
        "   ",
        None,
        42,
        "https://gw.example:99999",
        "https://gw.example/?x=1",
        "https://gw.example/#frag",
    ],
)
def test_bad_gateway_refused(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="gateway_url"):
        normalize_gateway_url(bad)


def test_gateway_user_info_refused_without_echoing_it() -> None:
    with pytest.raises(InvalidArgument) as info:
        normalize_gateway_url("https://me:s3cr3t-pw@gw.example")
    assert "s3cr3t-pw" not in str(info.value)


@pytest.mark.parametrize(
    ("segment", "encoded"),
    [
        ("a/b", "a%2Fb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a..b", "a..b"),
        ("x$y", "x%24y"),
        ("50%", "50%25"),
        ("q?x=1#f", "q%3Fx%3D1%23f"),
        ("a b", "a%20b"),
        ("ü", "%C3%BC"),
    ],
)
def test_segments_keep_everything_in_one_segment(
    api: responses.RequestsMock, sleeps: Sleeps, segment: str, encoded: str
) -> None:
    api.get(f"{GATEWAY}/registry/v2/jobs/build/{encoded}", json={})
    path = f"/registry/v2/jobs/build/{quote_segment('id', segment)}"
    transport(sleeps).get_json(path)
    assert api.calls[0].request.path_url == f"/registry/v2/jobs/build/{encoded}"


@pytest.mark.parametrize("bad", ["", "  ", None, 5, True])
def test_empty_or_non_string_segment_refused(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="id"):
        quote_segment("id", bad)


def test_gateway_prefix_kept(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get("https://gw.example/waylay/registry/v2/jobs/", json={})
    Transport("gw.example/waylay/", _sleep=sleeps).get_json("/registry/v2/jobs/")
    assert api.calls[0].request.url == "https://gw.example/waylay/registry/v2/jobs/"


# -- request shape ----------------------------------------------------------------------------


def test_headers_params_and_timeout(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(GATEWAY + "/registry/v2/jobs/", json={"jobs": []})
    t = transport(sleeps, timeout=(3, 7))
    t.get_json("/registry/v2/jobs/", [("type", "build"), ("type", "deploy"), ("at", "a:b+c")])
    request = api.calls[0].request
    assert request.path_url == "/registry/v2/jobs/?type=build&type=deploy&at=a%3Ab%2Bc"
    assert request.headers["User-Agent"] == USER_AGENT == f"waylay-jobs/{__version__}"
    assert request.headers["Accept"] == "application/json"
    assert "Authorization" not in request.headers
    assert request.req_kwargs["timeout"] == (3.0, 7.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", [0, -1, (1, 0), (1, 2, 3), "10", True, (None, 5)])
def test_bad_timeouts_refused(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="timeout"):
        Transport(GATEWAY, timeout=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options", [{"retries": -1}, {"retries": 1.5}, {"retries": True}, {"backoff": -1}]
)
def test_bad_retry_options_refused(options: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        Transport(GATEWAY, **options)  # type: ignore[arg-type]


def test_an_owned_session_pools_enough_connections_for_threads() -> None:
    owned = Transport(GATEWAY)
    for scheme in ("https://", "http://"):
        adapter = owned.session.get_adapter(scheme + "example.com")
        assert adapter._pool_maxsize == POOL_MAXSIZE  # type: ignore[attr-defined]
    owned.close()
    mine = requests.Session()
    borrowed = Transport(GATEWAY, session=mine).session.get_adapter(GATEWAY)
    assert borrowed._pool_maxsize == requests.adapters.DEFAULT_POOLSIZE  # type: ignore[attr-defined]
    mine.close()


def test_session_ownership() -> None:
    closed: list[str] = []

    class Recording(requests.Session):
        def close(self) -> None:
            closed.append("closed")
            super().close()

    mine = Recording()
    Transport(GATEWAY, session=mine).close()
    assert closed == []
    mine.close()
    owned = Transport(GATEWAY)
    owned.session.close = lambda: closed.append("owned")  # type: ignore[method-assign]
    owned.close()
    assert closed == ["closed", "owned"]
    with pytest.raises(InvalidArgument, match="session"):
        Transport(GATEWAY, session="not a session")  # type: ignore[arg-type]


def test_closed_transport_refuses_requests() -> None:
    t = Transport(GATEWAY)
    t.close()
    with pytest.raises(InvalidArgument, match="closed"):
        t.get_json("/x")


# -- retries ----------------------------------------------------------------------------------


def test_connection_errors_are_retried_then_succeed(
    api: responses.RequestsMock, sleeps: Sleeps
) -> None:
    api.get(JOB_URL, body=requests.ConnectionError("refused"))
    api.get(JOB_URL, body=requests.exceptions.ReadTimeout("slow"))
    api.get(JOB_URL, json={"ok": True})
    assert json_body(transport(sleeps).get_json(JOB_PATH)) == {"ok": True}
    assert len(api.calls) == 3
    assert len(sleeps.delays) == 2
    # Full jitter below a doubling ceiling: 0.5 then 1.0.
    assert 0 <= sleeps.delays[0] <= 0.5
    assert 0 <= sleeps.delays[1] <= 1.0


def test_retry_statuses_then_success(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    for status in (429, 502, 503, 504):
        api.get(JOB_URL, status=status, body="busy")
    api.get(JOB_URL, json={"ok": 1})
    assert json_body(transport(sleeps).get_json(JOB_PATH)) == {"ok": 1}
    assert len(api.calls) == 5
    assert len(sleeps.delays) == 4


def test_retries_are_bounded(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    for _ in range(3):
        api.get(JOB_URL, status=503, body="down")
    with pytest.raises(ApiError) as info:
        transport(sleeps, retries=2).get_json(JOB_PATH)
    assert info.value.status_code == 503
    assert len(api.calls) == 3
    assert len(sleeps.delays) == 2


def test_connection_errors_bounded_and_chained(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    cause = requests.ConnectionError("connection refused")
    api.get(JOB_URL, body=cause)
    api.get(JOB_URL, body=cause)
    with pytest.raises(TransportError) as info:
        transport(sleeps, retries=1).get_json(JOB_PATH)
    assert info.value.__cause__ is cause
    assert "GET /registry/v2/jobs/build/j1" in str(info.value)
    assert "ConnectionError" in str(info.value)
    assert len(api.calls) == 2


def test_zero_retries(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(JOB_URL, status=503)
    with pytest.raises(ApiError):
        transport(sleeps, retries=0).get_json(JOB_PATH)
    assert sleeps.delays == []


def test_tls_errors_are_not_retried(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(JOB_URL, body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(TransportError, match="SSLError") as info:
        transport(sleeps).get_json(JOB_PATH)
    assert sleeps.delays == []
    assert "plain HTTP" not in str(info.value)  # a real TLS server: no hint


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 501, 505])
def test_other_statuses_are_not_retried(
    api: responses.RequestsMock, sleeps: Sleeps, status: int
) -> None:
    api.get(JOB_URL, status=status, json={"error": "no", "statusCode": status})
    with pytest.raises(ApiError) as info:
        transport(sleeps).get_json(JOB_PATH)
    assert info.value.status_code == status
    assert len(api.calls) == 1
    assert sleeps.delays == []


def test_retry_after_seconds_is_a_floor(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(JOB_URL, status=429, headers={"Retry-After": "7"})
    api.get(JOB_URL, json={})
    transport(sleeps).get_json(JOB_PATH)
    assert sleeps.delays == [7.0]


def test_retry_after_http_date(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    now = 1_700_000_000.0
    api.get(
        JOB_URL, status=503, headers={"Retry-After": email.utils.formatdate(now + 12, usegmt=True)}
    )
    api.get(
        JOB_URL, status=503, headers={"Retry-After": email.utils.formatdate(now - 60, usegmt=True)}
    )
    api.get(JOB_URL, status=503, headers={"Retry-After": "soon-ish"})
    api.get(JOB_URL, status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 -0000"})
    api.get(JOB_URL, json={})
    transport(sleeps, _wall_clock=lambda: now).get_json(JOB_PATH)
    assert sleeps.delays[0] == pytest.approx(12.0)
    assert sleeps.delays[1] <= 1.0  # a date in the past: just the backoff
    assert sleeps.delays[2] <= 2.0  # unparsable: ignored
    assert sleeps.delays[3] <= 4.0  # no time zone: ignored


def test_too_long_retry_after_raises_at_once(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(JOB_URL, status=503, headers={"Retry-After": "3600"}, body="maintenance")
    with pytest.raises(ApiError, match="503") as info:
        transport(sleeps).get_json(JOB_PATH)
    assert info.value.response is not None
    assert info.value.response.headers["Retry-After"] == "3600"
    assert sleeps.delays == []


# -- errors -----------------------------------------------------------------------------------


def test_html_502_page(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(JOB_URL, status=502, body=HTML_502, content_type="text/html; charset=utf-8")
    with pytest.raises(ApiError) as info:
        transport(sleeps, retries=0).get_json(JOB_PATH)
    error = info.value
    assert type(error) is ApiError
    assert error.status_code == 502
    assert error.data is None
    assert error.response is not None
    assert error.response.status_code == 502
    message = str(error)
    assert message.startswith(
        "GET /registry/v2/jobs/build/j1: expected 200 application/json, got 502 text/html: "
        "<html> <head><title>502 Bad Gateway</title></head> <body>"
    )
    assert "\n" not in message
    assert "\r" not in message
    assert len(message) < 320
    assert error.error is not None
    assert error.error.startswith("<html>")


def test_json_404(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    body = {"error": "Job build/j1 not found", "statusCode": 404}
    api.get(JOB_URL, status=404, json=body)
    with pytest.raises(NotFoundError) as info:
        transport(sleeps).get_json(JOB_PATH)
    assert info.value.status_code == 404
    assert info.value.error == "Job build/j1 not found"
    assert info.value.data == body
    assert "expected 200 application/json, got 404 application/json" in str(info.value)


@pytest.mark.parametrize("status", [401, 403])
def test_auth_statuses(api: responses.RequestsMock, sleeps: Sleeps, status: int) -> None:
    body = {"error": "forbidden", "code": "NO", "statusCode": status}
    api.get(JOB_URL, status=status, json=body)
    with pytest.raises(AuthError) as info:
        transport(sleeps).get_json(JOB_PATH)
    assert info.value.status_code == status
    assert info.value.data == body


def test_empty_error_body(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(JOB_URL, status=500, body=b"")
    with pytest.raises(ApiError, match=r"got 500 .* with an empty body") as info:
        transport(sleeps).get_json(JOB_PATH)
    assert info.value.error is None


def test_200_that_is_not_json(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(JOB_URL, body="<html>login</html>", content_type="text/html")
    with pytest.raises(ApiError, match="expected 200 application/json, got 200 text/html: <html>"):
        transport(sleeps).get_json(JOB_PATH)


def test_200_json_content_type_with_broken_body(
    api: responses.RequestsMock, sleeps: Sleeps
) -> None:
    api.get(JOB_URL, body='{"job": ', content_type="application/json")
    response = transport(sleeps).get_json(JOB_PATH)
    with pytest.raises(ApiError, match="valid JSON") as info:
        json_body(response)
    assert isinstance(info.value.__cause__, ValueError)


def test_vendor_json_content_type_accepted(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(JOB_URL, body='{"a": 1}', content_type="application/hal+json; charset=utf-8")
    assert json_body(transport(sleeps).get_json(JOB_PATH)) == {"a": 1}


def test_raw_response_is_returned_unchecked(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(JOB_URL, status=404, body="nope", content_type="text/plain")
    response = transport(sleeps).get_json(JOB_PATH, raw_response=True)
    assert response.status_code == 404
    assert response.text == "nope"


# -- 401 renewal ------------------------------------------------------------------------------


def test_401_renews_once_and_retries(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    auth = RotatingAuth()
    api.get(JOB_URL, status=401, json={"error": "expired"})
    api.get(JOB_URL, json={"ok": True})
    assert json_body(transport(sleeps, auth=auth).get_json(JOB_PATH)) == {"ok": True}
    assert auth.renewals == ["Bearer token-0"]
    assert [c.request.headers["Authorization"] for c in api.calls] == [
        "Bearer token-0",
        "Bearer token-1",
    ]
    assert sleeps.delays == []


def test_401_twice_raises(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    auth = RotatingAuth()
    api.get(JOB_URL, status=401, json={"error": "no"})
    api.get(JOB_URL, status=401, json={"error": "still no"})
    with pytest.raises(AuthError, match="401"):
        transport(sleeps, auth=auth).get_json(JOB_PATH)
    assert len(auth.renewals) == 1


def test_401_without_renewable_auth_raises_at_once(
    api: responses.RequestsMock, sleeps: Sleeps
) -> None:
    api.get(JOB_URL, status=401, json={"error": "no"})
    with pytest.raises(AuthError):
        transport(sleeps).get_json(JOB_PATH)
    assert len(api.calls) == 1


# -- streams ----------------------------------------------------------------------------------

EVENTS_PATH = "/registry/v2/jobs/events"
EVENTS_URL = GATEWAY + EVENTS_PATH


def test_stream_request_shape(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(EVENTS_URL, body=b"event: ack\ndata: hi\n\n", content_type="text/event-stream")
    response = transport(sleeps).open_stream(
        EVENTS_PATH, [("type", "build"), ("children", "true")], timeout=(2, 45)
    )
    with response:
        request = api.calls[0].request
        assert request.path_url == "/registry/v2/jobs/events?type=build&children=true"
        assert request.headers["Accept"] == "text/event-stream"
        assert request.headers["Accept-Encoding"] == "identity"
        assert request.headers["Cache-Control"] == "no-cache"
        assert request.headers["User-Agent"] == USER_AGENT
        assert request.req_kwargs["stream"] is True  # type: ignore[attr-defined]
        assert request.req_kwargs["timeout"] == (2.0, 45.0)  # type: ignore[attr-defined]
        assert response.raw.read() == b"event: ack\ndata: hi\n\n"


def test_stream_error_is_the_same_exception_as_get(
    api: responses.RequestsMock, sleeps: Sleeps
) -> None:
    body = {"error": "not allowed", "code": "FORBIDDEN", "statusCode": 403}
    api.get(JOB_URL, status=403, json=body)
    api.get(EVENTS_URL, status=403, json=body)
    t = transport(sleeps)
    with pytest.raises(AuthError) as plain:
        t.get_json(JOB_PATH)
    with pytest.raises(AuthError) as streamed:
        t.open_stream(EVENTS_PATH, timeout=5)
    assert streamed.value.data == plain.value.data == body
    assert streamed.value.error == "not allowed"
    assert "expected 200 text/event-stream, got 403 application/json" in str(streamed.value)
    assert len(api.calls) == 2  # no retry


def test_stream_of_the_wrong_content_type_is_closed(
    api: responses.RequestsMock, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.get(EVENTS_URL, body="<html>" + "y" * 10_000, content_type="text/html")
    closed: list[requests.Response] = []
    original = requests.Response.close

    def close(self: requests.Response) -> None:
        closed.append(self)
        original(self)

    monkeypatch.setattr(requests.Response, "close", close)
    with pytest.raises(
        ApiError, match="expected 200 text/event-stream, got 200 text/html: <html>yy"
    ) as info:
        transport(sleeps).open_stream(EVENTS_PATH, timeout=5)
    assert info.value.status_code == 200
    assert any(response is info.value.response for response in closed)


def test_stream_503_is_not_retried(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(EVENTS_URL, status=503, body="busy")
    with pytest.raises(ApiError) as info:
        transport(sleeps).open_stream(EVENTS_PATH, timeout=5)
    assert info.value.status_code == 503
    assert len(api.calls) == 1
    assert sleeps.delays == []


def test_stream_401_renews_once(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    auth = RotatingAuth()
    api.get(EVENTS_URL, status=401, json={"error": "expired"})
    api.get(EVENTS_URL, body=b"event: ack\ndata: x\n\n", content_type="text/event-stream")
    with transport(sleeps, auth=auth).open_stream(EVENTS_PATH, timeout=5) as response:
        assert response.status_code == 200
    assert auth.renewals == ["Bearer token-0"]


def test_stream_transport_error(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    cause = requests.ConnectionError("reset")
    api.get(EVENTS_URL, body=cause)
    with pytest.raises(TransportError) as info:
        transport(sleeps).open_stream(EVENTS_PATH, timeout=5)
    assert info.value.__cause__ is cause
    assert len(api.calls) == 1


def test_stream_bad_timeout(sleeps: Sleeps) -> None:
    with pytest.raises(InvalidArgument, match="timeout"):
        transport(sleeps).open_stream(EVENTS_PATH, timeout=-1)


class BrokenBody(io.RawIOBase):
    """A body whose connection resets before it could be read."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise urllib3.exceptions.ProtocolError("Connection reset by peer")


def test_stream_error_body_cut_short(monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps) -> None:
    def send(
        self: requests.Session, request: requests.PreparedRequest, **_: object
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = 429
        response.headers["Content-Type"] = "application/json"
        response.raw = urllib3.HTTPResponse(
            body=BrokenBody(), preload_content=False, headers=response.headers
        )
        response.request = request
        return response

    monkeypatch.setattr(requests.Session, "send", send)
    with pytest.raises(ApiError) as info:
        transport(sleeps).open_stream(EVENTS_PATH, timeout=5)
    assert info.value.status_code == 429
    assert str(info.value).endswith(
        "got 429 application/json: [body unreadable: ChunkedEncodingError]"
    )


def test_content_type_without_a_media_type(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(JOB_URL, status=500, body="x", headers={"Content-Type": "; charset=utf-8"})
    with pytest.raises(ApiError, match="got 500 no content type: x"):
        transport(sleeps).get_json(JOB_PATH)


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("text/html", "<p>Café fermé</p>"),  # no charset: UTF-8, not requests' ISO-8859-1
        ("text/html; charset=utf-8", "<p>Café fermé</p>"),
        ("text/plain; charset=latin-1", "<p>Caf\xe9 ferm\xe9</p>"),
        ("text/plain; charset=no-such-codec", "<p>Café fermé</p>"),
    ],
)
def test_error_body_charsets(
    api: responses.RequestsMock, sleeps: Sleeps, content_type: str, text: str
) -> None:
    encoded = text.encode("latin-1") if "latin-1" in content_type else text.encode("utf-8")
    api.get(JOB_URL, status=500, body=encoded, headers={"Content-Type": content_type})
    with pytest.raises(ApiError) as info:
        transport(sleeps).get_json(JOB_PATH)
    assert str(info.value).endswith(": <p>Café fermé</p>")


def test_error_without_content_type(api: responses.RequestsMock, sleeps: Sleeps) -> None:
    api.get(JOB_URL, status=500, body="x", content_type=None)
    with pytest.raises(ApiError, match="got 500 no content type: x"):
        transport(sleeps).get_json(JOB_PATH)

"""The HTTP core without I/O: requests and tokens as data, answers to exceptions."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path
from typing import Any, Optional

import pytest

from waylay_jobs import ApiError, AuthError, NotFoundError, TransportError
from waylay_jobs._http import core
from waylay_jobs._http.core import (
    JSON_EXPECTED,
    MAX_ERROR_BODY,
    MAX_WRONG_BODY,
    STREAM_EXPECTED,
    USER_AGENT,
    Answer,
    api_error,
    body_snippet,
    encoding,
    is_json,
    json_accepted,
    media_type,
    plain_http_hint,
    request_headers,
    stream_refused,
    token_from_answer,
    token_request,
    token_url,
    transport_error,
)

GATEWAY = "https://gw.example"
TOKEN_URL = GATEWAY + "/accounts/v1/tokens"
API_KEY = "abcdef0123456789"
API_SECRET = "SECRET-never-shown"
NOW = 1_700_000_000.0


def jwt(**claims: object) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256'})}.{part(claims)}.c2ln"


def answer(
    status: int = 200,
    body: Any = None,
    content_type: Optional[str] = "application/json",
    retry_after: Optional[str] = None,
) -> Answer:
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    return Answer(status, content_type, raw, retry_after)


def test_the_core_imports_no_http_client() -> None:
    tree = ast.parse(Path(core.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0] for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    }  # fmt: skip
    assert not imported & {"requests", "httpx", "urllib3", "socket", "ssl", "asyncio"}


# -- requests -----------------------------------------------------------------------------------


def test_request_headers() -> None:
    assert request_headers() == {"User-Agent": USER_AGENT, "Accept": "application/json"}
    streamed = request_headers(core.STREAM_HEADERS, "Bearer t")
    assert streamed == {
        "User-Agent": USER_AGENT,
        "Accept": "text/event-stream",
        "Accept-Encoding": "identity",
        "Cache-Control": "no-cache",
        "Authorization": "Bearer t",
    }


def test_token_url() -> None:
    assert token_url("gw.example/") == TOKEN_URL
    assert (
        token_url(GATEWAY, "https://accounts.example/v1/") == "https://accounts.example/v1/tokens"
    )


def test_token_request_client_credentials() -> None:
    request = token_request(TOKEN_URL, API_KEY, API_SECRET)
    assert request.url == TOKEN_URL
    assert request.params == {"grant_type": "client_credentials"}
    assert request.body == {"clientId": API_KEY, "clientSecret": API_SECRET}
    assert request.what == f"POST {TOKEN_URL}?grant_type=client_credentials"


def test_token_request_application_credentials() -> None:
    request = token_request(TOKEN_URL, API_KEY, API_SECRET, "tenant-1")
    assert request.params == {"grant_type": "application_credentials", "tenant": "tenant-1"}
    assert request.body == {"applicationId": API_KEY, "applicationSecret": API_SECRET}
    assert request.what == f"POST {TOKEN_URL}?grant_type=application_credentials"


def test_a_token_request_never_shows_its_secret() -> None:
    request = token_request(TOKEN_URL, API_KEY, API_SECRET)
    assert API_SECRET not in repr(request)
    assert API_KEY not in repr(request)
    assert "abcd…" in repr(request)


# -- token answers ------------------------------------------------------------------------------


def test_a_token_is_renewed_a_margin_before_it_expires() -> None:
    token = jwt(exp=NOW + 3600)
    request = token_request(TOKEN_URL, API_KEY, API_SECRET)
    got = token_from_answer(request, answer(body={"token": token}), now=NOW)
    assert got == (token, NOW + 3600 - 60)
    assert token_from_answer(request, answer(body={"token": token}), now=NOW, renew_margin=10) == (
        token,
        NOW + 3590,
    )


def test_a_short_lived_token_is_renewed_at_half_life() -> None:
    token = jwt(exp=NOW + 40)
    request = token_request(TOKEN_URL, API_KEY, API_SECRET)
    assert token_from_answer(request, answer(body={"token": token}), now=NOW) == (token, NOW + 20)


def test_a_token_without_expiry_is_kept() -> None:
    request = token_request(TOKEN_URL, API_KEY, API_SECRET)
    assert token_from_answer(request, answer(body={"token": "opaque"}), now=NOW) == (
        "opaque",
        float("inf"),
    )


def test_a_refusal_says_which_key_and_what_the_server_said() -> None:
    request = token_request(TOKEN_URL, API_KEY, API_SECRET)
    refused = answer(401, {"error": "invalid client credentials", "statusCode": 401})
    with pytest.raises(AuthError) as info:
        token_from_answer(request, refused, now=NOW, response="the response")
    error = info.value
    assert str(error) == (
        f"POST {TOKEN_URL}?grant_type=client_credentials: expected 200 with a token for api key "
        "'abcd…', got 401 application/json: "
        '{"error": "invalid client credentials", "statusCode": 401}'
    )
    assert (error.status_code, error.error) == (401, "invalid client credentials")
    assert error.data == {"error": "invalid client credentials", "statusCode": 401}
    assert error.response == "the response"
    assert error.retry_after is None
    assert API_KEY not in str(error)
    assert API_SECRET not in str(error)


def test_a_busy_token_endpoint_carries_its_retry_after() -> None:
    request = token_request(TOKEN_URL, API_KEY, API_SECRET)
    busy = answer(503, b"<h1>Busy</h1>", "text/html", retry_after="7")
    with pytest.raises(AuthError, match=r"got 503 text/html: <h1>Busy</h1>$") as info:
        token_from_answer(request, busy, now=NOW)
    assert (info.value.error, info.value.data, info.value.retry_after) == (
        "<h1>Busy</h1>",
        None,
        7.0,
    )


def test_an_empty_refusal() -> None:
    request = token_request(TOKEN_URL, API_KEY, API_SECRET)
    with pytest.raises(AuthError) as info:
        token_from_answer(request, answer(500, b"", None), now=NOW)
    assert str(info.value).endswith("got 500 no content type")
    assert info.value.error is None


@pytest.mark.parametrize(
    ("body", "content_type", "shape"),
    [
        ({"access_token": "LEAKY-TOKEN"}, "application/json", "keys ['access_token']"),
        ({"token": ""}, "application/json", "keys ['token']"),
        ({"token": ["LEAKY-TOKEN"]}, "application/json", "keys ['token']"),
        (["LEAKY-TOKEN"], "application/json", "application/json that is not a JSON object"),
        (b"LEAKY-TOKEN", "text/plain", "text/plain that is not a JSON object"),
    ],
)
def test_a_2xx_without_a_token_is_never_quoted(body: Any, content_type: str, shape: str) -> None:
    request = token_request(TOKEN_URL, API_KEY, API_SECRET)
    with pytest.raises(AuthError) as info:
        token_from_answer(request, answer(200, body, content_type), now=NOW)
    message = str(info.value)
    assert message == (
        f"POST {TOKEN_URL}?grant_type=client_credentials: expected a JSON object with a 'token' "
        f"string, got 200 {'a JSON object with ' if shape.startswith('keys') else ''}{shape}"
    )
    assert "LEAKY-TOKEN" not in message
    assert info.value.error is None
    assert info.value.data is None


# -- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, AuthError), (403, AuthError), (404, NotFoundError), (400, ApiError), (502, ApiError),
     (200, ApiError)],
)  # fmt: skip
def test_the_exception_class_follows_the_status(status: int, cls: type[ApiError]) -> None:
    error = api_error(
        method="GET",
        target="/registry/v2/jobs/build/x",
        answer=answer(status, {"error": "nope"}),
        expected=JSON_EXPECTED,
        now=NOW,
    )
    assert type(error) is cls
    assert str(error) == (
        f"GET /registry/v2/jobs/build/x: expected 200 application/json, got {status} "
        'application/json: {"error": "nope"}'
    )
    assert (error.status_code, error.error, error.data) == (status, "nope", {"error": "nope"})


def test_an_error_answer_message_body_and_retry_after() -> None:
    page = b"<html>\r\n<body>\n  Bad   Gateway\n" + b"x" * 400 + b"</body></html>"
    error = api_error(
        method="GET",
        target="",
        answer=answer(502, page, "text/html; charset=utf-8", retry_after="3"),
        expected=STREAM_EXPECTED,
        now=NOW,
    )
    message = str(error)
    assert message.startswith(
        "GET /: expected 200 text/event-stream, got 502 text/html: <html> <body> Bad Gateway x"
    )
    assert message.endswith("…")
    assert error.data is None
    assert error.error is not None
    assert error.error.startswith("<html>")
    assert error.retry_after == 3.0
    assert error.response is None


def test_an_empty_error_answer() -> None:
    error = api_error(
        method="GET", target="/x", answer=answer(500, b"", None), expected=JSON_EXPECTED, now=NOW
    )
    assert (
        str(error)
        == "GET /x: expected 200 application/json, got 500 no content type with an empty body"
    )
    assert error.error is None


@pytest.mark.parametrize(
    ("header", "media"),
    [
        (None, "no content type"),
        ("", "no content type"),
        ("; charset=utf-8", "no content type"),
        ("Text/HTML; charset=utf-8", "text/html"),
        (" application/json ", "application/json"),
    ],
)
def test_media_type(header: Optional[str], media: str) -> None:
    assert media_type(header) == media


@pytest.mark.parametrize(
    ("media", "json_ok"),
    [
        ("application/json", True),
        ("application/hal+json", True),
        ("application/problem+json", True),
        ("text/json", False),
        ("application/jsonx", False),
        ("text/html", False),
        ("no content type", False),
    ],
)
def test_is_json(media: str, json_ok: bool) -> None:
    assert is_json(media) is json_ok


def test_json_accepted() -> None:
    assert json_accepted(200, "application/json; charset=utf-8")
    assert json_accepted(204, "application/vnd.waylay+json")
    assert not json_accepted(200, "text/html")
    assert not json_accepted(404, "application/json")
    assert not json_accepted(200, None)


def test_stream_refused_says_how_much_body_to_read() -> None:
    assert stream_refused(200, "text/event-stream; charset=utf-8") is None
    assert stream_refused(503, "text/event-stream") == MAX_ERROR_BODY
    assert stream_refused(401, "application/json") == MAX_ERROR_BODY
    assert stream_refused(200, "text/html") == MAX_WRONG_BODY


@pytest.mark.parametrize(
    ("header", "codec"),
    [
        (None, "utf-8"),
        ("text/html", "utf-8"),  # not requests' ISO-8859-1 guess
        ("text/plain; charset=latin-1", "iso8859-1"),
        ('text/plain; Charset="UTF-8"', "utf-8"),
        ("text/plain; charset=no-such-codec", "utf-8"),
        ("text/plain; charset=", "utf-8"),
    ],
)
def test_encoding(header: Optional[str], codec: str) -> None:
    assert encoding(header) == codec


def test_body_snippet() -> None:
    assert body_snippet(b"  a\r\n\tb  ") == "a b"
    assert body_snippet("Café".encode("latin-1"), "iso8859-1") == "Café"
    assert body_snippet(b"\xff ok") == "\ufffd ok"
    long = body_snippet(b"y" * 500)
    assert len(long) == core.SNIPPET_LENGTH
    assert long.endswith("…")
    assert body_snippet(b"") == ""


# -- failures -----------------------------------------------------------------------------------


def test_plain_http_hint() -> None:
    text = "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"
    assert plain_http_hint(text, "https://gw.local:8080/x") == (
        "; is the gateway plain HTTP? use http://gw.local:8080"
    )
    assert (
        plain_http_hint("[SSL: RECORD_LAYER_FAILURE] record layer failure", "")
        == "; is the gateway plain HTTP? use http://..."
    )
    assert plain_http_hint("certificate verify failed", "https://gw.local") == ""


def test_transport_error() -> None:
    cause = OSError("refused")
    error = transport_error("GET /x", cause, connect_failed=True, hint="; h")
    assert isinstance(error, TransportError)
    assert str(error) == "GET /x: expected a response, got OSError: refused; h"
    assert error.connect_failed
    assert error.__cause__ is cause
    token = transport_error("POST /t", cause, connect_failed=False, expected="a token")
    assert str(token) == "POST /t: expected a token, got OSError: refused"
    assert not token.connect_failed

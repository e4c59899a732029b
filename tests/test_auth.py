"""Authentication: static tokens, the key/secret token flow, renewal, threads, secrecy."""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
from collections.abc import Iterator

import pytest
import requests
import responses
from requests.auth import AuthBase
from responses import matchers

from waylay_jobs import AuthError, InvalidArgument, NotFoundError, TransportError
from waylay_jobs._http.auth import ApiKeyAuth, TokenAuth, jwt_claims, token_expiry
from waylay_jobs._http.blocking import USER_AGENT, Transport

GATEWAY = "https://gw.example"
TOKEN_URL = GATEWAY + "/accounts/v1/tokens"
JOB_PATH = "/registry/v2/jobs/build/j1"
JOB_URL = GATEWAY + JOB_PATH
API_KEY = "abcdef0123456789abcdef01"
API_SECRET = "SECRET-c2VjcmV0LXNlY3JldC1zZWNyZXQ="
NOW = 1_700_000_000.0


def jwt(**claims: object) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


TOKEN_1 = jwt(sub="u1", tenant="t", domain="d", exp=NOW + 3600, n=1)
TOKEN_2 = jwt(sub="u1", tenant="t", domain="d", exp=NOW + 7200, n=2)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def setup(
    clock: Clock | None = None, *, retries: int = 0, **options: object
) -> tuple[Transport, ApiKeyAuth]:
    transport = Transport(GATEWAY, retries=retries, _sleep=lambda _: None, _rng=random.Random(1))
    auth = ApiKeyAuth(
        GATEWAY,
        API_KEY,
        API_SECRET,
        session=transport.session,
        _clock=clock or Clock(),
        **options,  # type: ignore[arg-type]
    )
    transport.auth = auth
    return transport, auth


def token_reply(api: responses.RequestsMock, token: str) -> None:
    api.post(TOKEN_URL, json={"token": token})


def authorizations(api: responses.RequestsMock) -> list[str]:
    return [
        c.request.headers.get("Authorization", "-") for c in api.calls if c.request.method == "GET"
    ]


def posts(api: responses.RequestsMock) -> int:
    return sum(1 for c in api.calls if c.request.method == "POST")


# -- static token -----------------------------------------------------------------------------


def test_static_token_header(api: responses.RequestsMock) -> None:
    api.get(JOB_URL, json={})
    Transport(GATEWAY, auth=TokenAuth(" tok.en.x \n")).get_json(JOB_PATH)
    assert authorizations(api) == ["Bearer tok.en.x"]
    assert repr(TokenAuth(TOKEN_1)) == "TokenAuth(token='***')"
    assert TokenAuth(TOKEN_1).expires_at == NOW + 3600
    assert TokenAuth("opaque").expires_at is None


@pytest.mark.parametrize("bad", ["", "  ", "a b", "abc\r\nX-Evil: 1", "tab\there", "nul\x00"])
def test_unusable_tokens_refused_without_echo(bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        TokenAuth(bad)
    if bad.strip():
        assert bad.strip() not in str(info.value)


def test_token_must_be_a_string() -> None:
    with pytest.raises(InvalidArgument, match="token"):
        TokenAuth(b"bytes")  # type: ignore[arg-type]


# -- the key/secret flow ----------------------------------------------------------------------


def test_token_flow_request_shape(api: responses.RequestsMock) -> None:
    api.post(
        TOKEN_URL,
        json={"token": TOKEN_1},
        match=[
            matchers.query_param_matcher({"grant_type": "client_credentials"}),
            matchers.json_params_matcher({"clientId": API_KEY, "clientSecret": API_SECRET}),
            matchers.header_matcher({"User-Agent": USER_AGENT, "Accept": "application/json"}),
        ],
    )
    api.get(JOB_URL, json={})
    api.get(JOB_URL, json={})
    transport, _ = setup()
    transport.get_json(JOB_PATH)
    transport.get_json(JOB_PATH)
    assert posts(api) == 1
    assert authorizations(api) == [f"Bearer {TOKEN_1}"] * 2
    token_request = api.calls[0].request
    assert "Authorization" not in token_request.headers
    assert token_request.headers["Content-Type"] == "application/json"


def test_token_not_fetched_before_the_first_request(api: responses.RequestsMock) -> None:
    setup()
    assert len(api.calls) == 0


def test_renewed_shortly_before_expiry(api: responses.RequestsMock) -> None:
    clock = Clock()
    token_reply(api, TOKEN_1)
    token_reply(api, TOKEN_2)
    for _ in range(3):
        api.get(JOB_URL, json={})
    transport, _ = setup(clock)
    transport.get_json(JOB_PATH)
    clock.now = NOW + 3600 - 61  # still more than the 60 s margin left
    transport.get_json(JOB_PATH)
    clock.now = NOW + 3600 - 59
    transport.get_json(JOB_PATH)
    assert posts(api) == 2
    assert authorizations(api) == [f"Bearer {TOKEN_1}"] * 2 + [f"Bearer {TOKEN_2}"]


def test_short_lived_tokens_renew_at_half_life(api: responses.RequestsMock) -> None:
    clock = Clock()
    token_reply(api, jwt(exp=NOW + 30))
    token_reply(api, jwt(exp=NOW + 60))
    for _ in range(3):
        api.get(JOB_URL, json={})
    transport, _ = setup(clock)
    transport.get_json(JOB_PATH)
    clock.now = NOW + 14
    transport.get_json(JOB_PATH)
    assert posts(api) == 1
    clock.now = NOW + 16
    transport.get_json(JOB_PATH)
    assert posts(api) == 2


def test_token_without_expiry_is_kept_until_a_401(api: responses.RequestsMock) -> None:
    clock = Clock()
    token_reply(api, "opaque-1")
    token_reply(api, "opaque-2")
    api.get(JOB_URL, json={})
    api.get(JOB_URL, status=401, json={"error": "expired"})
    api.get(JOB_URL, json={})
    transport, _ = setup(clock)
    transport.get_json(JOB_PATH)
    clock.now = NOW + 10 * 365 * 86400
    transport.get_json(JOB_PATH)
    assert authorizations(api) == ["Bearer opaque-1", "Bearer opaque-1", "Bearer opaque-2"]


def test_401_renews_once_and_retries(api: responses.RequestsMock) -> None:
    token_reply(api, TOKEN_1)
    token_reply(api, TOKEN_2)
    api.get(JOB_URL, status=401, json={"error": "revoked"})
    api.get(JOB_URL, json={"ok": 1})
    transport, _ = setup()
    assert transport.get_json(JOB_PATH).json() == {"ok": 1}
    assert authorizations(api) == [f"Bearer {TOKEN_1}", f"Bearer {TOKEN_2}"]
    assert posts(api) == 2


def test_a_second_401_is_raised(api: responses.RequestsMock) -> None:
    token_reply(api, TOKEN_1)
    token_reply(api, TOKEN_2)
    api.get(JOB_URL, status=401, json={"error": "revoked"})
    api.get(JOB_URL, status=401, json={"error": "still revoked"})
    transport, _ = setup()
    with pytest.raises(AuthError, match="401") as info:
        transport.get_json(JOB_PATH)
    assert info.value.error == "still revoked"
    assert posts(api) == 2


def test_403_is_not_a_reason_to_renew(api: responses.RequestsMock) -> None:
    token_reply(api, TOKEN_1)
    api.get(JOB_URL, status=403, json={"error": "not your tenant"})
    transport, _ = setup()
    with pytest.raises(AuthError):
        transport.get_json(JOB_PATH)
    assert posts(api) == 1


def test_a_stale_401_does_not_discard_a_newer_token(api: responses.RequestsMock) -> None:
    token_reply(api, TOKEN_1)
    _, auth = setup()
    assert auth.token() == TOKEN_1
    # Another thread's request failed with a token that was already replaced.
    assert auth.renew_after_401("Bearer some-older-token") is True
    assert auth.token() == TOKEN_1
    assert posts(api) == 1


def test_many_threads_share_one_token_request(api: responses.RequestsMock) -> None:
    threads_count = 16
    entered = threading.Semaphore(0)

    class Counting(AuthBase):
        """Counts the requests that reached the auth before delegating to it."""

        def __init__(self, inner: ApiKeyAuth) -> None:
            self.inner = inner

        def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
            entered.release()
            return self.inner(request)

    def token_callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        # Hold the token request until every thread is asking for a token: they now queue
        # on the lock, and must all reuse this one token.
        for _ in range(threads_count):
            assert entered.acquire(timeout=10), "not every thread reached the auth"
        return 200, {}, json.dumps({"token": TOKEN_1})

    api.add_callback(
        responses.POST, TOKEN_URL, callback=token_callback, content_type="application/json"
    )
    for _ in range(threads_count):
        api.get(JOB_URL, json={})
    transport, auth = setup()
    transport.auth = Counting(auth)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            transport.get_json(JOB_PATH)
        except Exception as exc:  # noqa: BLE001 - handed to the main thread's assert
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=20)
    assert not any(worker.is_alive() for worker in workers)
    assert errors == []
    assert posts(api) == 1
    assert authorizations(api) == [f"Bearer {TOKEN_1}"] * threads_count


# -- token endpoint failures ------------------------------------------------------------------


def test_rejected_credentials(api: responses.RequestsMock) -> None:
    api.post(TOKEN_URL, status=401, json={"error": "invalid client credentials", "statusCode": 401})
    transport, _ = setup()
    with pytest.raises(AuthError) as info:
        transport.get_json(JOB_PATH)
    error = info.value
    message = str(error)
    assert error.status_code == 401
    assert error.error == "invalid client credentials"
    assert message.startswith(
        "POST https://gw.example/accounts/v1/tokens?grant_type=client_credentials: expected 200 "
        "with a token for api key 'abcd…', got 401 application/json: "
    )
    assert API_SECRET not in message
    assert API_KEY not in message
    assert error.response is not None
    assert error.response.request.body is None
    assert len(api.calls) == 1  # the API itself was never called


def test_token_endpoint_html_error(api: responses.RequestsMock) -> None:
    api.post(TOKEN_URL, status=500, body="<h1>Oops</h1>", content_type="text/html")
    transport, _ = setup()
    with pytest.raises(AuthError, match="got 500 text/html: <h1>Oops</h1>") as info:
        transport.get_json(JOB_PATH)
    assert info.value.data is None


@pytest.mark.parametrize(
    ("body", "shape"),
    [
        ({"access_token": "LEAKY-TOKEN"}, "keys ['access_token']"),
        ({"token": ""}, "keys ['token']"),
        (["LEAKY-TOKEN"], "not a JSON object"),
        ("LEAKY-TOKEN", "text/plain that is not a JSON object"),
    ],
)
def test_token_reply_without_token(api: responses.RequestsMock, body: object, shape: str) -> None:
    if isinstance(body, str):
        api.post(TOKEN_URL, body=body, content_type="text/plain")
    else:
        api.post(TOKEN_URL, json=body)
    transport, _ = setup()
    with pytest.raises(AuthError, match="expected a JSON object with a 'token' string") as info:
        transport.get_json(JOB_PATH)
    assert shape in str(info.value)
    assert "LEAKY-TOKEN" not in str(info.value)


def test_token_request_does_not_follow_redirects(api: responses.RequestsMock) -> None:
    api.post(TOKEN_URL, status=307, headers={"Location": "https://elsewhere.example/steal"})
    transport, _ = setup()
    with pytest.raises(AuthError, match="got 307") as info:
        transport.get_json(JOB_PATH)
    assert info.value.status_code == 307
    assert len(api.calls) == 1


def test_token_endpoint_unreachable(api: responses.RequestsMock) -> None:
    cause = requests.ConnectionError("no route to host")
    api.post(TOKEN_URL, body=cause)
    transport, _ = setup()
    with pytest.raises(TransportError, match="expected a token") as info:
        transport.get_json(JOB_PATH)
    assert info.value.__cause__ is cause


def test_token_endpoint_failures_are_retried_by_gets(api: responses.RequestsMock) -> None:
    api.post(TOKEN_URL, body=requests.ConnectionError("reset"))
    api.post(TOKEN_URL, status=503, body="busy")
    token_reply(api, TOKEN_1)
    api.get(JOB_URL, json={})
    transport, _ = setup(retries=3)
    transport.get_json(JOB_PATH)
    assert posts(api) == 3
    assert authorizations(api) == [f"Bearer {TOKEN_1}"]


def test_token_endpoint_retry_after_too_long(api: responses.RequestsMock) -> None:
    api.post(TOKEN_URL, status=429, headers={"Retry-After": "900"}, body="slow down")
    transport, _ = setup(retries=3)
    with pytest.raises(AuthError, match="429"):
        transport.get_json(JOB_PATH)
    assert posts(api) == 1


# -- variants ---------------------------------------------------------------------------------


def test_legacy_accounts_url_is_the_token_prefix(api: responses.RequestsMock) -> None:
    api.post("https://accounts-api.example/tokens", json={"token": TOKEN_1})
    api.get(JOB_URL, json={})
    transport, auth = setup(accounts_url="accounts-api.example/")
    assert auth.token_url == "https://accounts-api.example/tokens"
    transport.get_json(JOB_PATH)


def test_application_credentials(api: responses.RequestsMock) -> None:
    api.post(
        TOKEN_URL,
        json={"token": TOKEN_1},
        match=[
            matchers.query_param_matcher(
                {"grant_type": "application_credentials", "tenant": "t-1"}
            ),
            matchers.json_params_matcher(
                {"applicationId": API_KEY, "applicationSecret": API_SECRET}
            ),
        ],
    )
    _, auth = setup(tenant_id="t-1")
    assert auth.token() == TOKEN_1


@pytest.mark.parametrize(
    ("key", "secret"), [("", API_SECRET), (API_KEY, ""), (API_KEY, "a b"), (None, API_SECRET)]
)
def test_bad_key_pairs_refused_before_any_request(
    api: responses.RequestsMock, key: object, secret: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        ApiKeyAuth(GATEWAY, key, secret, session=requests.Session())  # type: ignore[arg-type]
    assert API_SECRET not in str(info.value)
    assert len(api.calls) == 0


# -- secrecy ----------------------------------------------------------------------------------


def test_no_secret_in_reprs_messages_or_logs(
    api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_reply(api, TOKEN_1)
    token_reply(api, TOKEN_2)
    api.get(JOB_URL, status=401, json={"error": "expired"})
    api.get(JOB_URL, status=503, body="busy")
    api.get(JOB_URL, status=404, json={"error": "Job build/j1 not found"})
    transport, auth = setup(retries=2)
    with pytest.raises(NotFoundError) as failed:
        transport.get_json(JOB_PATH)  # 401 -> renew -> 503 -> retry -> 404
    texts = [repr(auth), str(auth), repr(transport), str(failed.value), caplog.text]
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        for secret in (API_SECRET, TOKEN_1, TOKEN_2, API_KEY):
            assert secret not in text
    assert (
        repr(auth)
        == "ApiKeyAuth(api_key='abcd…', token_url='https://gw.example/accounts/v1/tokens')"
    )
    assert any("fetched a token" in record.getMessage() for record in caplog.records)


def test_not_found_after_renewal_is_not_found(api: responses.RequestsMock) -> None:
    token_reply(api, TOKEN_1)
    token_reply(api, TOKEN_2)
    api.get(JOB_URL, status=401, json={"error": "expired"})
    api.get(JOB_URL, status=404, json={"error": "Job build/j1 not found"})
    transport, _ = setup()
    with pytest.raises(NotFoundError, match="404"):
        transport.get_json(JOB_PATH)


# -- JWT decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.!!!.c",
        "a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c",
        "a." + base64.urlsafe_b64encode(b"\xff\xfe").decode() + ".c",
        "a.b.c.d",
    ],
)
def test_undecodable_tokens_have_no_claims(token: str) -> None:
    assert jwt_claims(token) == {}
    assert token_expiry(token) is None


def test_claims_decoded_without_verification() -> None:
    assert jwt_claims(TOKEN_1)["exp"] == NOW + 3600
    assert token_expiry(jwt(exp="soon")) is None
    assert token_expiry(jwt(exp=True)) is None

"""Secrets never reach a log record, an exception's text, or a repr.

Marked credentials go through every path: list, get, events and wait_for, the token
request, renewal (a revoked token, a 401 fault, tokens that are expired on arrival) and the
error paths (404, 502, refused credentials, a gateway that is down). Every log record at
DEBUG (the library's, urllib3's, the fake's) and every exception raised, with its causes,
is searched for the marked values and for every bearer token the fake issued.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from waylay_jobs import (
    ApiError,
    AuthError,
    JobsClient,
    JobsError,
    NotFoundError,
    TransportError,
)
from waylay_jobs.testing import FakeRegistry, Faults

from .waits import wait_with

KEY = "KEY-7f3a1d9e0b2c4f6a"
SECRET = "SECRET-9c1e5b7d3f2a8e4c"
WRONG_SECRET = "SECRET-WRONG-4d2b8f6e1a3c"
TOKEN = "TOKEN-b41d7e9a2c5f8e3d"
WRONG_TOKEN = "TOKEN-WRONG-6e2a9c4f1b7d"
MARKED = (KEY, SECRET, WRONG_SECRET, TOKEN, WRONG_TOKEN)


def _tails(values: tuple[str, ...]) -> list[str]:
    # mask() may show the first 4 characters of a key; nothing after them may show.
    return [*values, *(value[4:] for value in values)]


def _exception_texts(exc: BaseException) -> list[str]:
    texts: list[str] = []
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), *map(repr, current.args)]
        if isinstance(current, ApiError):
            texts += [repr(current.error), repr(current.data)]
            if current.response is not None:
                request = current.response.request
                texts += [repr(request.body), str(request.url)]
        stack += [current.__cause__, current.__context__]
    return texts


def _record_texts(record: logging.LogRecord) -> list[str]:
    texts = [record.getMessage(), str(record.msg), repr(record.args)]
    if record.exc_info and record.exc_info[1] is not None:
        texts += _exception_texts(record.exc_info[1])
    if record.exc_text:
        texts.append(record.exc_text)
    return texts


class Watch:
    """Collects everything a secret could leak into, then searches it."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.texts: list[str] = []
        self.errors: list[BaseException] = []

    def raises(self, error: type[BaseException], call: Callable[[], Any]) -> BaseException:
        with pytest.raises(error) as info:
            call()
        self.errors.append(info.value)
        self.texts += _exception_texts(info.value)
        return info.value

    def show(self, *objects: Any) -> None:
        self.texts += [repr(obj) for obj in objects] + [str(obj) for obj in objects]

    def assert_no_secret(self, registry: FakeRegistry | None = None) -> None:
        issued = set()
        if registry is not None:
            for request in registry.requests:
                value = dict(request.headers).get("Authorization", "")
                if value.startswith("Bearer "):
                    issued.add(value[len("Bearer ") :])
        assert self.caplog.records, "expected log records to search"
        texts = self.texts + [t for r in self.caplog.records for t in _record_texts(r)]
        for secret in [*_tails(MARKED), *issued]:
            leaks = [text for text in texts if secret in text]
            assert leaks == [], f"a secret leaked: {leaks[:3]}"


@pytest.fixture
def watch(caplog: pytest.LogCaptureFixture) -> Watch:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    caplog.set_level(logging.DEBUG, logger="waylay_jobs")
    return Watch(caplog)


def _everything(client: JobsClient, registry: FakeRegistry, watch: Watch) -> None:
    """The four calls, each on the happy path, with the client's reprs."""
    done = registry.add_job("build", "finished")
    assert any(job.id == done for job in client.list(type="build").jobs)
    assert client.get("build", done).job.state == "completed"
    live = registry.add_job("build", "success", start="subscribe")
    assert [e.event for e in client.events(type="build", id=live)][-1] == "close"
    other = registry.add_job("deploy", "success")
    assert client.wait_for(("deploy", other), timeout=30).job.state == "completed"
    watch.show(client, client.transport, client.transport.auth)


def _error_paths(client: JobsClient, registry: FakeRegistry, watch: Watch) -> None:
    watch.raises(NotFoundError, lambda: client.get("build", "no-such-job"))
    watch.raises(NotFoundError, lambda: client.wait_for("no-such-job", timeout=30))
    broken = registry.add_job(
        "build", "manual", faults=[Faults(endpoint="get", status=502, html=True)]
    )
    error = watch.raises(ApiError, lambda: client.get("build", broken))
    assert "got 502 text/html" in str(error)
    refused = registry.add_job("build", "manual", faults=Faults(status=403))
    watch.raises(AuthError, lambda: client.events(type="build", id=refused))


class TestApiKey:
    @pytest.fixture
    def registry(self, make_fake_registry: Callable[..., FakeRegistry]) -> FakeRegistry:
        return make_fake_registry(api_key=KEY, api_secret=SECRET, speed=0.005)

    @pytest.fixture
    def client(self, registry: FakeRegistry) -> Iterator[JobsClient]:
        with JobsClient(registry.url, api_key=KEY, api_secret=SECRET, retries=0) as client:
            yield client

    def test_happy_paths_renewal_and_errors(
        self, registry: FakeRegistry, client: JobsClient, watch: Watch
    ) -> None:
        _everything(client, registry, watch)
        # Renewal: every token revoked, then a 401 fault on get and on events.
        registry.revoke_tokens()
        assert client.list(state="completed").jobs
        done = registry.add_job(
            "build",
            "finished",
            faults=[Faults(endpoint="get", status=401, times=1), Faults(status=401, times=1)],
        )
        assert client.get("build", done).job.state == "completed"
        assert [e.event for e in client.events(type="build", id=done)] == ["ack", "close"]
        assert wait_with(client, ("build", done), timeout=30).job.state == "completed"
        _error_paths(client, registry, watch)
        tokens = [r for r in registry.requests if r.path == "/accounts/v1/tokens"]
        assert len(tokens) == 4  # first, after the revocation, after each 401 fault
        watch.assert_no_secret(registry)

    def test_tokens_that_are_expired_on_arrival(
        self, make_fake_registry: Callable[..., FakeRegistry], watch: Watch
    ) -> None:
        # A negative lifetime: every token is already expired when it arrives (clock skew).
        registry = make_fake_registry(api_key=KEY, api_secret=SECRET, token_ttl=-1)
        job_id = registry.add_job("build", "finished")
        with JobsClient(registry.url, api_key=KEY, api_secret=SECRET, retries=0) as client:
            error = watch.raises(AuthError, lambda: client.get("build", job_id))
            assert "Bearer token expired" in str(error)
            watch.raises(AuthError, lambda: client.events(type="build", id=job_id))
            watch.raises(AuthError, lambda: client.wait_for(("build", job_id), timeout=30))
            watch.show(client)
        watch.assert_no_secret(registry)

    def test_refused_credentials(self, registry: FakeRegistry, watch: Watch) -> None:
        job_id = registry.add_job("build", "finished")
        with JobsClient(registry.url, api_key=KEY, api_secret=WRONG_SECRET, retries=0) as client:
            error = watch.raises(AuthError, lambda: client.get("build", job_id))
            assert "Invalid client credentials" in str(error)
            assert isinstance(error, AuthError)
            assert error.response is not None
            assert error.response.request.body is None  # it held the secret
            watch.raises(AuthError, lambda: client.list())
            watch.raises(AuthError, lambda: client.events(type="build", id=job_id))
            watch.raises(AuthError, lambda: client.wait_for(("build", job_id), timeout=30))
            watch.show(client)
        watch.assert_no_secret(registry)

    def test_gateway_down(
        self, make_fake_registry: Callable[..., FakeRegistry], watch: Watch
    ) -> None:
        gone = make_fake_registry()
        url = gone.url
        gone.stop()
        with JobsClient(url, api_key=KEY, api_secret=SECRET, retries=0) as client:
            watch.raises(TransportError, lambda: client.get("build", "x"))
            watch.raises(TransportError, lambda: client.events(type="build", id="x"))
            watch.show(client)
        logging.getLogger("waylay_jobs").debug("the gateway is down")  # at least one record
        watch.assert_no_secret()


class TestStaticToken:
    @pytest.fixture
    def registry(self, make_fake_registry: Callable[..., FakeRegistry]) -> FakeRegistry:
        return make_fake_registry(tokens=[TOKEN], speed=0.005)

    def test_happy_paths_and_errors(self, registry: FakeRegistry, watch: Watch) -> None:
        with JobsClient(registry.url, token=TOKEN, retries=0) as client:
            _everything(client, registry, watch)
            _error_paths(client, registry, watch)
            job_id = registry.add_job("build", "finished", faults=Faults(status=401, times=1))
            watch.raises(AuthError, lambda: client.wait_for(("build", job_id), timeout=30))
        watch.assert_no_secret(registry)

    def test_refused_token(self, registry: FakeRegistry, watch: Watch) -> None:
        job_id = registry.add_job("build", "finished")
        with JobsClient(registry.url, token=WRONG_TOKEN, retries=0) as client:
            error = watch.raises(AuthError, lambda: client.get("build", job_id))
            assert "Invalid bearer token" in str(error)
            watch.raises(AuthError, lambda: client.list(state="failed"))
            watch.raises(AuthError, lambda: client.events(type="build", id=job_id))
            watch.raises(AuthError, lambda: client.wait_for(job_id, timeout=30))
            watch.show(client)
        watch.assert_no_secret(registry)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"token": f"{TOKEN} with a space"}, id="token-with-space"),
        pytest.param({"token": f"{TOKEN}\r\nX-Injected: 1"}, id="token-with-crlf"),
        pytest.param({"api_key": KEY, "api_secret": f"{SECRET} x"}, id="secret"),
        pytest.param({"api_key": f"{KEY} x", "api_secret": SECRET}, id="key"),
        pytest.param({"token": TOKEN, "api_key": KEY, "api_secret": SECRET}, id="both"),
        pytest.param({"api_key": KEY}, id="key-alone"),
        pytest.param({"api_secret": SECRET}, id="secret-alone"),
    ],
)
def test_rejected_credentials_are_not_echoed(options: dict[str, Any], watch: Watch) -> None:
    watch.raises(JobsError, lambda: JobsClient("http://127.0.0.1:9", **options))
    logging.getLogger("waylay_jobs").debug("constructed nothing")
    watch.assert_no_secret()

"""Every fault of the fake registry, crossed with ``events()`` and ``wait_for()``.

Each test asserts the exact outcome (the events seen, the final state, or the exception and
the key part of its message) and that nothing is left behind: the server saw every stream
end, no client socket stays open once the client is closed, and no thread outlives the
registry. ``test_event_stream.py`` and ``test_wait.py`` test single faults in depth; this
file is the full cross product, with leak checks on every cell.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pytest

from waylay_jobs import (
    AckEvent,
    ApiError,
    AuthError,
    CloseEvent,
    Event,
    EventDecodeError,
    EventTooLarge,
    IdleTimeout,
    JobEvent,
    JobFailed,
    JobsClient,
    JobsError,
    StreamInterrupted,
    UnknownEvent,
)
from waylay_jobs._policy import DEFAULT_POLICY
from waylay_jobs.testing import FakeRegistry, Faults

from .netcheck import client_connections
from .waits import wait_with

SPEED = 0.005  # one nominal second of a script takes 5 ms
STALL_IDLE = 0.2  # idle timeout where a stall is involved
QUIET_IDLE = 5.0  # idle timeout where none is: only a hung stream would reach it
FULL = ["ack", "waiting", "active", "completed", "close"]
REASON = "npm ERR! code ELIFECYCLE"
NOTHING_WITHIN = "expected more of the event stream, got nothing within"  # the idle timeout
KEY, SECRET = "hardening-key", "hardening-secret"
TOKEN_PATH = "/accounts/v1/tokens"
EVENTS_PATH = "/registry/v2/jobs/events"


@dataclass
class Env:
    """A registry, a client on it, and the threads that existed before either."""

    registry: FakeRegistry
    client: JobsClient
    threads_before: set[threading.Thread] = field(default_factory=set)

    def requests_to(self, path: str, method: str = "GET") -> int:
        return sum(1 for r in self.registry.requests if r.path == path and r.method == method)

    def gets(self) -> int:
        return sum(
            1
            for r in self.registry.requests
            if r.method == "GET" and r.path.startswith("/registry/v2/jobs/build/")
        )

    def assert_nothing_left_behind(self) -> None:
        registry = self.registry
        port = registry.port
        # The server noticed every stream end: the client hung up (or read to the end).
        registry.wait_for_open_streams(0, timeout=5)
        self.client.close()
        assert client_connections(port) == 0
        assert registry.errors == []
        registry.stop()
        leftover = [t.name for t in threading.enumerate() if t not in self.threads_before]
        assert leftover == []


@pytest.fixture
def make_env(make_fake_registry: Callable[..., FakeRegistry]) -> Iterator[Callable[..., Env]]:
    clients: list[JobsClient] = []

    def make(client_options: Optional[dict[str, Any]] = None, **registry_options: Any) -> Env:
        before = set(threading.enumerate())
        options = {"speed": SPEED, "keepalive_interval": 60, **registry_options}
        registry = make_fake_registry(**options)
        client = JobsClient(registry.url, **{"retries": 0, **(client_options or {})})
        clients.append(client)
        return Env(registry, client, before)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()


def _consume(stream_factory: Callable[[], Any]) -> tuple[list[Event], Optional[BaseException]]:
    """Read a stream to its end; the events seen and the exception that ended it, if any."""
    seen: list[Event] = []
    try:
        with stream_factory() as stream:
            for event in stream:
                seen.append(event)
    except JobsError as exc:
        return seen, exc
    return seen, None


def _names(events: list[Event]) -> list[str]:
    return [e.event for e in events]


# -- events() ----------------------------------------------------------------------------------


STATUS_FAULTS = [
    pytest.param(
        Faults(status=429, retry_after="7"), ApiError, 429, "got 429 application/json", "7",
        id="429-retry-after",
    ),
    pytest.param(
        Faults(status=503, retry_after="3"), ApiError, 503, "got 503 application/json", "3",
        id="503-retry-after",
    ),
    pytest.param(
        Faults(status=502, html=True), ApiError, 502, "got 502 text/html: <html>", None,
        id="html-502",
    ),
    pytest.param(
        Faults(content_type="text/html"), ApiError, 200, "got 200 text/html: <html>", None,
        id="wrong-content-type",
    ),
    pytest.param(
        Faults(content_type="application/json"), ApiError, 200, "got 200 application/json",
        None, id="json-instead-of-stream",
    ),
    pytest.param(
        Faults(status=401, times=1), AuthError, 401, "got 401 application/json", None,
        id="401-without-credentials",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("fault", "error", "status", "text", "retry_after"), STATUS_FAULTS)
def test_events_with_an_error_response(
    env: Env,
    fault: Faults,
    error: type[ApiError],
    status: int,
    text: str,
    retry_after: Optional[str],
) -> None:
    job_id = env.registry.add_job("build", "success", start="subscribe", faults=fault)
    with pytest.raises(ApiError) as info:
        env.client.events(type="build", id=job_id, idle_timeout=QUIET_IDLE)
    exc = info.value
    assert type(exc) is error
    assert exc.status_code == status
    assert "expected 200 text/event-stream" in str(exc)
    assert text in str(exc)
    assert exc.response is not None
    assert exc.response.headers.get("Retry-After") == retry_after
    assert env.registry.subscriptions == 0
    assert env.requests_to(EVENTS_PATH) == 1  # events() never retries on its own
    env.assert_nothing_left_behind()


STREAM_FAULTS = [
    pytest.param(Faults(framing="close"), {}, FULL, None, None, id="close-delimited"),
    pytest.param(Faults(line_ending="\n"), {}, FULL, None, None, id="lf"),
    pytest.param(Faults(line_ending="\r"), {}, FULL, None, None, id="cr"),
    pytest.param(Faults(bom=True), {}, FULL, None, None, id="bom"),
    pytest.param(
        Faults(bom=True, line_ending="\r", framing="close"), {}, FULL, None, None,
        id="bom-cr-close-delimited",
    ),
    pytest.param(
        Faults(unknown_event=True), {},
        ["ack", "progress", "waiting", "active", "completed", "close"], None, None,
        id="unknown-event",
    ),
    pytest.param(
        Faults(drop_after=0), {}, ["ack"], StreamInterrupted, "got a broken connection",
        id="drop-after-0",
    ),
    pytest.param(
        Faults(drop_after=1), {}, ["ack", "waiting"], StreamInterrupted, "got a broken connection",
        id="drop-after-1",
    ),
    pytest.param(
        Faults(drop_after=2, framing="close"), {}, ["ack", "waiting", "active"],
        StreamInterrupted, "until its close event, got the end of the stream",
        id="drop-after-2-close-delimited",
    ),
    pytest.param(
        Faults(stall_after=0), {"idle_timeout": STALL_IDLE}, ["ack"], IdleTimeout,
        NOTHING_WITHIN, id="stall-after-0",
    ),
    pytest.param(
        Faults(stall_after=2, framing="close"), {"idle_timeout": STALL_IDLE},
        ["ack", "waiting", "active"], IdleTimeout, NOTHING_WITHIN,
        id="stall-after-2-close-delimited",
    ),
    pytest.param(
        Faults(truncate_terminal=True), {}, ["ack", "waiting", "active"], StreamInterrupted,
        "bytes of an unterminated event were dropped", id="truncated-terminal",
    ),
    pytest.param(
        Faults(truncate_terminal=True, framing="close", line_ending="\n"), {},
        ["ack", "waiting", "active"], StreamInterrupted,
        "bytes of an unterminated event were dropped", id="truncated-terminal-close-lf",
    ),
    pytest.param(
        Faults(malformed_json=True), {}, ["ack"], EventDecodeError,
        "expected JSON in the data of the 'waiting' event", id="malformed-json",
    ),
    pytest.param(
        Faults(malformed_json=True, line_ending="\r", framing="close"), {}, ["ack"],
        EventDecodeError, "expected JSON in the data of the 'waiting' event",
        id="malformed-json-cr-close",
    ),
    pytest.param(
        Faults(oversized=3_000_000), {"max_event_size": 1_000_000}, ["ack"], EventTooLarge,
        "expected events of at most 1000000 bytes", id="oversized-many-reads",
    ),
    pytest.param(
        Faults(oversized=3_000_000, framing="close"), {"max_event_size": 1_000_000}, ["ack"],
        EventTooLarge, "expected events of at most 1000000 bytes",
        id="oversized-close-delimited",
    ),
    # One write of ~20 kB usually arrives in one read: the limit must hold all the same.
    pytest.param(
        Faults(oversized=20_000), {"max_event_size": 10_000}, ["ack"], EventTooLarge,
        "expected events of at most 10000 bytes", id="oversized-in-one-read",
    ),
    pytest.param(
        Faults(oversized=20_000), {}, FULL, None, None, id="large-but-allowed",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("fault", "options", "expected", "error", "text"), STREAM_FAULTS)
def test_events_with_a_stream_fault(
    env: Env,
    fault: Faults,
    options: dict[str, Any],
    expected: list[str],
    error: Optional[type[JobsError]],
    text: Optional[str],
) -> None:
    job_id = env.registry.add_job("build", "success", start="subscribe", faults=fault)
    kwargs = {"idle_timeout": QUIET_IDLE, **options}
    seen, exc = _consume(lambda: env.client.events(type="build", id=job_id, **kwargs))
    assert _names(seen) == expected
    if error is None:
        assert exc is None
        assert isinstance(seen[0], AckEvent)
        assert isinstance(seen[-1], CloseEvent)
        job_events = [e for e in seen if isinstance(e, JobEvent)]
        assert [e.state for e in job_events] == ["waiting", "active", "completed"]
        assert all(e.job_id == job_id for e in job_events)
        unknown = [e for e in seen if isinstance(e, UnknownEvent)]
        assert [e.event for e in unknown] == (["progress"] if fault.unknown_event else [])
    else:
        assert type(exc) is error, repr(exc)
        assert text is not None
        assert text in str(exc)
    env.assert_nothing_left_behind()


def test_events_renew_the_token_after_one_401(make_env: Callable[..., Env]) -> None:
    env = make_env({"api_key": KEY, "api_secret": SECRET}, api_key=KEY, api_secret=SECRET)
    fault = Faults(status=401, times=1)
    job_id = env.registry.add_job("build", "success", start="subscribe", faults=fault)
    seen, exc = _consume(lambda: env.client.events(type="build", id=job_id))
    assert exc is None
    assert _names(seen) == FULL
    assert env.requests_to(TOKEN_PATH, "POST") == 2  # the first token, and one after the 401
    assert env.requests_to(EVENTS_PATH) == 2
    env.assert_nothing_left_behind()


def test_events_with_a_static_token_raise_on_a_401(make_env: Callable[..., Env]) -> None:
    env = make_env({"token": "static-token"}, tokens=["static-token"])
    fault = Faults(status=401, times=1)
    job_id = env.registry.add_job("build", "success", start="subscribe", faults=fault)
    with pytest.raises(AuthError, match="expected 200 text/event-stream, got 401"):
        env.client.events(type="build", id=job_id)
    assert env.requests_to(EVENTS_PATH) == 1  # a static token cannot be renewed: no retry
    env.assert_nothing_left_behind()


# -- wait_for() --------------------------------------------------------------------------------


class Driver:
    """Moves a ``manual`` job as the waiter observes it, so every run is the same.

    The job becomes ``active`` when the first ``ack`` arrives, and ends (``completed``, or
    ``failed`` with :data:`REASON`) when the waiter sees the ``active`` event or first
    backs off, whichever comes first. Records the events seen and the delays asked for.
    """

    def __init__(self, registry: FakeRegistry, job_id: str, final: str) -> None:
        self.registry = registry
        self.job_id = job_id
        self.final = final
        self.events: list[str] = []
        self.sleeps: list[float] = []
        self.started = False
        self.ended = False

    def on_event(self, event: Event) -> None:
        self.events.append(event.event)
        if event.event == "ack" and not (self.started or self.ended):
            self.started = True
            self.registry.transition("build", self.job_id, "active")
        elif event.event == "active":
            self.end()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.end()

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        if self.final == "failed":
            self.registry.transition("build", self.job_id, "failed", failed_reason=REASON)
        else:
            self.registry.transition("build", self.job_id, "completed")


def _wait_with(env: Env, driver: Driver, **options: Any) -> Any:
    return wait_with(
        env.client,
        ("build", driver.job_id),
        timeout=30,
        on_event=driver.on_event,
        _sleep=driver.sleep,
        **options,
    )


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# (fault, events the waiter sees, backoff sleeps, events requests, idle timeout)
WAIT_FAULTS = [
    pytest.param(Faults(status=429, retry_after="7"), [], [7.0], 2, QUIET_IDLE, id="429"),
    pytest.param(Faults(status=503, retry_after="3"), [], [3.0], 2, QUIET_IDLE, id="503"),
    pytest.param(Faults(status=502, html=True), [], ["backoff"], 2, QUIET_IDLE, id="html-502"),
    pytest.param(
        Faults(content_type="text/html"), [], ["backoff"], 2, QUIET_IDLE,
        id="wrong-content-type",
    ),
    pytest.param(
        Faults(framing="close"), ["ack", "active", "END", "close"], [], 1, QUIET_IDLE,
        id="close-delimited",
    ),
    pytest.param(
        Faults(line_ending="\n"), ["ack", "active", "END", "close"], [], 1, QUIET_IDLE, id="lf",
    ),
    pytest.param(
        Faults(line_ending="\r"), ["ack", "active", "END", "close"], [], 1, QUIET_IDLE, id="cr",
    ),
    pytest.param(
        Faults(bom=True), ["ack", "active", "END", "close"], [], 1, QUIET_IDLE, id="bom",
    ),
    pytest.param(
        Faults(unknown_event=True), ["ack", "progress", "active", "END", "close"], [], 1,
        QUIET_IDLE, id="unknown-event",
    ),
    pytest.param(Faults(drop_after=0), ["ack", "ack"], ["backoff"], 2, QUIET_IDLE, id="drop-0"),
    pytest.param(Faults(drop_after=1), ["ack", "active"], [], 1, QUIET_IDLE, id="drop-1"),
    pytest.param(
        Faults(stall_after=0), ["ack", "ack"], ["backoff"], 2, STALL_IDLE, id="stall-0",
    ),
    pytest.param(Faults(stall_after=1), ["ack", "active"], [], 1, STALL_IDLE, id="stall-1"),
    pytest.param(
        Faults(truncate_terminal=True), ["ack", "active"], [], 1, QUIET_IDLE,
        id="truncated-terminal",
    ),
    pytest.param(
        Faults(malformed_json=True), ["ack", "ack"], ["backoff"], 2, QUIET_IDLE,
        id="malformed-json",
    ),
    pytest.param(
        Faults(oversized=9_000_000), ["ack", "ack"], ["backoff"], 2, QUIET_IDLE,
        id="oversized-beyond-the-default-limit",
    ),
]  # fmt: skip


@pytest.mark.parametrize("final", ["completed", "failed"])
@pytest.mark.parametrize(("fault", "events", "sleeps", "subscribes", "idle"), WAIT_FAULTS)
def test_wait_for_through_a_fault(
    env: Env,
    fault: Faults,
    events: list[str],
    sleeps: list[Any],
    subscribes: int,
    idle: float,
    final: str,
) -> None:
    job_id = env.registry.add_job("build", "manual", faults=fault)
    driver = Driver(env.registry, job_id, final)
    if final == "completed":
        result = _wait_with(env, driver, idle_timeout=idle)
        assert result.job.state == "completed"
        assert result.job.job.id == job_id
    else:
        with pytest.raises(JobFailed) as info:
            _wait_with(env, driver, idle_timeout=idle)
        assert str(info.value) == f"build job {job_id} failed: {REASON}"
        assert info.value.reason == REASON
        assert info.value.job.job.state == "failed"
    assert driver.events == [final if name == "END" else name for name in events]
    assert len(driver.sleeps) == len(sleeps)
    for slept, wanted in zip(driver.sleeps, sleeps):
        if wanted == "backoff":  # the first backoff: full jitter below 0.5 s
            assert 0 <= slept <= DEFAULT_POLICY.backoff
        else:  # Retry-After is a floor
            assert slept == wanted
    assert env.requests_to(EVENTS_PATH) == subscribes
    env.assert_nothing_left_behind()


def test_wait_for_honours_a_retry_after_date(env: Env) -> None:
    job_id = env.registry.add_job(
        "build", "manual", faults=Faults(status=503, retry_after=_http_date(30))
    )
    driver = Driver(env.registry, job_id, "completed")
    assert _wait_with(env, driver).job.state == "completed"
    assert len(driver.sleeps) == 1
    assert 20 < driver.sleeps[0] <= 30
    env.assert_nothing_left_behind()


def test_wait_for_with_raise_on_failure_false_returns_the_failed_job(env: Env) -> None:
    job_id = env.registry.add_job("build", "manual", faults=Faults(truncate_terminal=True))
    driver = Driver(env.registry, job_id, "failed")
    result = _wait_with(env, driver, raise_on_failure=False)
    assert result.job.state == "failed"
    assert result.job.job.failed_reason == REASON
    env.assert_nothing_left_behind()


GET_FAULTS = [
    pytest.param(Faults(endpoint="get", status=503, retry_after="0", times=2), id="get-503"),
    pytest.param(Faults(endpoint="get", status=429, retry_after="0", times=2), id="get-429"),
    pytest.param(Faults(endpoint="get", status=502, html=True, times=2), id="get-html-502"),
    pytest.param(Faults(endpoint="get", content_type="text/html", times=2), id="get-html-200"),
]


@pytest.mark.parametrize("fault", GET_FAULTS)
def test_wait_for_rides_out_failing_state_checks(env: Env, fault: Faults) -> None:
    job_id = env.registry.add_job("build", "manual", faults=fault)
    driver = Driver(env.registry, job_id, "completed")
    assert _wait_with(env, driver).job.state == "completed"
    # The check after ack and the one after close failed; a third one, after one backoff
    # pause (the retry policy's first, full jitter), saw the end.
    assert driver.events == ["ack", "active", "completed", "close"]
    assert len(driver.sleeps) == 1
    assert 0 <= driver.sleeps[0] <= DEFAULT_POLICY.backoff
    assert env.gets() == 3
    assert env.requests_to(EVENTS_PATH) == 1
    env.assert_nothing_left_behind()


@pytest.mark.parametrize("endpoint", ["events", "get"])
def test_wait_for_renews_the_token_after_one_401(
    make_env: Callable[..., Env], endpoint: str
) -> None:
    env = make_env({"api_key": KEY, "api_secret": SECRET}, api_key=KEY, api_secret=SECRET)
    job_id = env.registry.add_job(
        "build", "manual", faults=Faults(endpoint=endpoint, status=401, times=1)
    )
    driver = Driver(env.registry, job_id, "completed")
    assert _wait_with(env, driver).job.state == "completed"
    assert driver.events == ["ack", "active", "completed", "close"]
    assert env.requests_to(TOKEN_PATH, "POST") == 2
    env.assert_nothing_left_behind()


@pytest.mark.parametrize("endpoint", ["events", "get"])
def test_wait_for_with_a_static_token_stops_at_a_401(
    make_env: Callable[..., Env], endpoint: str
) -> None:
    env = make_env({"token": "static-token"}, tokens=["static-token"])
    job_id = env.registry.add_job(
        "build", "manual", faults=Faults(endpoint=endpoint, status=401, times=1)
    )
    driver = Driver(env.registry, job_id, "completed")
    with pytest.raises(AuthError, match="got 401 application/json") as info:
        _wait_with(env, driver)
    assert info.value.status_code == 401
    assert driver.sleeps == []  # not retried: a refused token does not get better
    # Refused at the subscription, or at the state check that follows the ack.
    assert driver.events == ([] if endpoint == "events" else ["ack"])
    env.assert_nothing_left_behind()


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Faults(endpoint="token", status=503, retry_after="0", times=1), id="503"),
        pytest.param(Faults(endpoint="token", status=429, retry_after="0", times=1), id="429"),
        pytest.param(Faults(endpoint="token", status=502, html=True, times=1), id="html-502"),
    ],
)
def test_wait_for_rides_out_a_busy_token_endpoint(
    make_env: Callable[..., Env], fault: Faults
) -> None:
    # A 429/5xx of the token endpoint is the gateway being busy, not a refusal of the
    # credentials: wait_for must back off and go on, as get() does with retries.
    env = make_env(
        {"api_key": KEY, "api_secret": SECRET}, api_key=KEY, api_secret=SECRET, faults=fault
    )
    job_id = env.registry.add_job("build", "manual")
    driver = Driver(env.registry, job_id, "completed")
    assert _wait_with(env, driver).job.state == "completed"
    assert env.requests_to(TOKEN_PATH, "POST") == 2
    env.assert_nothing_left_behind()

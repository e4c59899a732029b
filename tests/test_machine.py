"""The wait machine on its own: every decision fed by hand, on a fake clock, with no I/O.

The first part is one table run for both scopes: one job's own stream (``wait_for``) and the
tenant stream (``wait_all``), so that what they share is tested once, alike. The rest tests
what only one of them does.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import random
from pathlib import Path
from typing import Any, Optional

import pytest

from waylay_jobs import (
    ApiError,
    AuthError,
    EventDecodeError,
    IdleTimeout,
    JobFailed,
    JobResponse,
    JobsFailed,
    JobsResponse,
    NotFoundError,
    TransportError,
    WaitCancelled,
    WaitTimeout,
)
from waylay_jobs._models import Event, decode_job_response, parse_event
from waylay_jobs._policy import RetryPolicy
from waylay_jobs._wait.machine import (
    PROBE_ORDER,
    Done,
    Dropped,
    Ended,
    Fail,
    Get,
    JobScope,
    ListJobs,
    Read,
    SharedScope,
    Sleep,
    Subscribe,
    TenantScope,
    Waiter,
    WaitOptions,
    created_time,
    error_kind,
)
from waylay_jobs._wait.targets import Target

A = Target("build", "a")
CREATED = "2026-05-02T09:14:03.512Z"
EXAMPLE = json.loads(
    (Path(__file__).parent / "data" / "examples" / "job_build_completed.json").read_text()
)
SCOPES = ["job", "tenant"]
#: The retry policy of a client built with ``retries=0`` (the default has 4).
NO_RETRIES = RetryPolicy(retries=0)


def job(target: Target, state: str, reason: str = "", created: str = CREATED) -> JobResponse:
    document = copy.deepcopy(EXAMPLE)
    document["job"].update(type=target.type, state=state, createdAt=created)
    document["job"]["job"]["id"] = target.id
    if reason:
        document["job"]["job"]["failedReason"] = reason
    return decode_job_response(document)


def event(name: str, target: Target = A) -> Event:
    if name in ("ack", "keep-alive", "close"):
        return parse_event(name, name)
    data = {"job": {"type": target.type, "id": target.id}, "data": {}, "timestamp": CREATED}
    return parse_event(name, json.dumps(data))


def listing(
    job_type: str, *items: tuple[str, str], limit: int = 1000, created: str = CREATED
) -> JobsResponse:
    return JobsResponse.from_wire(
        {
            "limit": limit,
            "jobs": [
                {"type": job_type, "id": i, "state": s, "createdAt": created, "operation": "x"}
                for i, s in items
            ],
        }
    )


def api_error(status: int, retry_after: Optional[float] = None, cls: type = ApiError) -> Any:
    return cls(f"status {status}", status_code=status, retry_after=retry_after)


REFUSED = TransportError("refused", connect_failed=True)
RESET = TransportError("connection reset")


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0


class Run:
    """A machine, its fake clock, and helpers that play the driver's part.

    ``scope`` is ``"job"`` (one job's own stream) or ``"tenant"``; for the table, the helpers
    hide how the two differ where the outcome is the same.
    """

    def __init__(
        self,
        scope: str = "job",
        targets: Optional[list[Target]] = None,
        policy: RetryPolicy = NO_RETRIES,
        **options: Any,
    ) -> None:
        self.scope = scope
        self.targets = [A] if targets is None else targets
        self.clock = Clock()
        self.waiter = Waiter(
            list(self.targets),
            WaitOptions(**options),
            JobScope() if scope == "job" else TenantScope(),
            clock=lambda: self.clock.now,
            policy=policy,
            rng=random.Random(3),
        )

    @property
    def now(self) -> float:
        return self.clock.now

    def next(self) -> Any:
        """The next action; a :class:`Read` of what has already arrived finds nothing."""
        action = self.waiter.next_action(self.now)
        if action == Read(0.0) and self.scope == "tenant" and self.waiter.keeps_stream:
            self.waiter.nothing_received(self.now)
            action = self.waiter.next_action(self.now)
        return action

    def expect(self, kind: type) -> Any:
        action = self.next()
        assert isinstance(action, kind), action
        return action

    def get(self, state: str, target: Target = A) -> None:
        """Expect a get of ``target`` and answer it."""
        assert self.next() == Get(str(target.type), target.id)
        self.waiter.job_received(self.now, job(target, state))

    def go_live(self) -> None:
        """Subscribe and receive ack: the stream has answered, and the first check starts."""
        self.expect(Subscribe)
        self.waiter.subscribed(self.now)
        self.waiter.event_received(self.now, event("ack"))

    def subscribe(self, first: str = "active") -> None:
        """Subscribe, receive ack, pass the first check (``first``): then the stream is read."""
        self.go_live()
        self.get(first)
        self.expect(Read)

    def end_on_stream(self, name: str = "completed") -> None:
        """The job's end arrives on the stream (a job's stream then sends close); its
        confirmation is asked with get."""
        self.waiter.event_received(self.now, event(name))
        if self.scope == "job":
            self.expect(Read)  # a job's stream: its close confirms
            self.waiter.event_received(self.now, event("close"))

    def finish(self) -> Any:
        """Skip the hand-over of ended jobs: the final action."""
        action = self.next()
        while isinstance(action, Ended):
            action = self.next()
        return action


# -- one table for both scopes -------------------------------------------------------------------


@pytest.mark.parametrize("scope", SCOPES)
def test_subscribe_then_check_then_confirm_the_end(scope: str) -> None:
    run = Run(scope, timeout=60)
    run.subscribe()
    assert run.waiter.keeps_stream
    run.end_on_stream("completed")
    final = job(A, "completed")
    assert run.next() == Get("build", "a")
    assert not run.waiter.over
    run.waiter.job_received(run.now, final)
    assert run.next() == Ended(final, (0,))
    assert run.next() == Done((final,))
    assert run.next() == Done((final,))  # the outcome stays
    assert not run.waiter.keeps_stream


@pytest.mark.parametrize("scope", SCOPES)
def test_a_job_that_already_ended_is_done_at_the_first_check(scope: str) -> None:
    run = Run(scope)
    run.go_live()
    run.get("completed")
    assert isinstance(run.finish(), Done)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("raise_on_failure", [True, False])
def test_a_failed_job(scope: str, raise_on_failure: bool) -> None:
    run = Run(scope, raise_on_failure=raise_on_failure)
    run.subscribe()
    run.end_on_stream("failed")
    assert run.next() == Get("build", "a")
    run.waiter.job_received(run.now, job(A, "failed", reason="boom"))
    action = run.finish()
    if not raise_on_failure:
        assert isinstance(action, Done)
        assert action.results[0].job.state == "failed"
        return
    assert isinstance(action, Fail)
    assert isinstance(action.error, JobFailed)
    assert action.error.reason == "boom"
    if scope == "job":
        assert type(action.error) is JobFailed
        assert str(action.error) == "build job a failed: boom"
    else:
        assert isinstance(action.error, JobsFailed)
        assert str(action.error) == "1 of the 1 jobs failed; the first, build job a: boom"


@pytest.mark.parametrize("scope", SCOPES)
def test_a_failure_followed_by_a_retry_is_not_the_end(scope: str) -> None:
    run = Run(scope)
    run.subscribe()
    run.waiter.event_received(run.now, event("failed"))
    if scope == "tenant":  # confirmed at once: get says the job is waiting again
        run.get("delayed")
        run.expect(Read)
        run.end_on_stream("completed")
        run.get("completed")
        assert isinstance(run.finish(), Done)
    else:  # a job's stream goes on after a failed attempt: only close is confirmed
        run.expect(Read)
        run.waiter.event_received(run.now, event("delayed"))
        run.end_on_stream("completed")
        run.get("completed")
        assert isinstance(run.finish(), Done)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize(
    "fail",
    [
        lambda r: r.waiter.stream_ended(r.now),
        lambda r: r.waiter.stream_failed(r.now, EventDecodeError("bad", event="x", snippet="{")),
        lambda r: r.waiter.stream_failed(r.now, RESET),
        lambda r: r.waiter.stream_failed(r.now, IdleTimeout("no bytes within the read timeout")),
    ],
    ids=["eof", "malformed-event", "broken-connection", "socket-idle-timeout"],
)
def test_a_broken_stream_is_checked_then_reconnected(scope: str, fail: Any) -> None:
    run = Run(scope)
    run.subscribe()
    fail(run)
    assert not run.waiter.keeps_stream  # the driver closes it now
    run.get("active")
    pause = run.expect(Sleep)
    assert 0 <= pause.seconds <= 0.5  # the policy's first backoff, full jitter
    run.expect(Subscribe)


@pytest.mark.parametrize("scope", SCOPES)
def test_a_broken_stream_whose_check_shows_the_end_is_done(scope: str) -> None:
    run = Run(scope)
    run.subscribe()
    run.waiter.stream_ended(run.now)
    run.get("completed")
    assert isinstance(run.finish(), Done)


@pytest.mark.parametrize("scope", SCOPES)
def test_no_event_within_the_idle_timeout_is_a_dead_stream(scope: str) -> None:
    run = Run(scope, idle_timeout=20)
    run.subscribe()
    run.clock.now += 15
    run.waiter.event_received(run.now, event("keep-alive"))  # an event: the idle time restarts
    assert run.next() == Read(20)
    run.clock.now += 12  # a drip of bytes may have come meanwhile; no event did
    run.waiter.nothing_received(run.now)
    assert run.waiter.keeps_stream  # 12 s without an event: not yet
    assert run.next() == Read(8)  # the idle time left, recomputed for this read
    run.clock.now += 8
    run.waiter.nothing_received(run.now)
    assert not run.waiter.keeps_stream
    run.get("active")
    run.expect(Sleep)


@pytest.mark.parametrize("scope", SCOPES)
def test_every_read_is_cut_to_the_time_left(scope: str) -> None:
    run = Run(scope, timeout=10, idle_timeout=60)
    assert run.expect(Subscribe).read_timeout == 10
    run.clock.now += 1
    run.waiter.subscribed(run.now)
    assert run.next() == Read(9)
    run.clock.now += 2.5
    run.waiter.event_received(run.now, event("ack"))  # a keep-alive would do the same
    run.get("active")
    assert run.next() == Read(6.5)
    run.clock.now += 6.5
    run.waiter.nothing_received(run.now)
    action = run.next()
    assert isinstance(action, Fail)
    assert isinstance(action.error, WaitTimeout)
    assert action.error.last_state == "active"


@pytest.mark.parametrize("scope", SCOPES)
def test_backoff_grows_and_a_job_event_resets_it(scope: str) -> None:
    run = Run(scope, max_stream_failures=10)
    for attempt in range(4):
        run.expect(Subscribe)
        run.waiter.subscribe_failed(run.now, api_error(502))
        run.get("active")
        assert 0 <= run.expect(Sleep).seconds <= 0.5 * 2**attempt
    run.subscribe()
    run.waiter.event_received(run.now, event("active"))
    run.waiter.stream_ended(run.now)
    run.get("active")
    assert run.expect(Sleep).seconds <= 0.5  # back to the first ceiling


@pytest.mark.parametrize("scope", SCOPES)
def test_the_servers_retry_field_sets_the_backoff_base(scope: str) -> None:
    run = Run(scope)
    run.subscribe()
    run.waiter.stream_retry(100)
    run.waiter.stream_ended(run.now)
    run.get("active")
    assert run.expect(Sleep).seconds <= 0.1


@pytest.mark.parametrize("scope", SCOPES)
def test_a_retry_after_is_a_floor_for_the_reconnect(scope: str) -> None:
    run = Run(scope, timeout=60)
    run.expect(Subscribe)
    run.waiter.subscribe_failed(run.now, api_error(503, retry_after=7))
    run.get("active")
    assert run.expect(Sleep) == Sleep(7)


@pytest.mark.parametrize("scope", SCOPES)
def test_falls_back_to_polling_after_max_stream_failures(
    scope: str, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(scope, max_stream_failures=2, poll_interval=3)
    caplog.set_level(logging.WARNING, logger="waylay_jobs")
    for failure in range(2):
        if failure:
            run.expect(Sleep)
        run.expect(Subscribe)
        run.waiter.subscribe_failed(run.now, RESET)
        run.get("active")
    assert run.waiter.polling
    assert run.next() == Sleep(3)
    assert run.next() == Get("build", "a")
    run.waiter.request_failed(run.now, api_error(503, retry_after=5))
    assert run.next() == Sleep(5)  # Retry-After beats the poll interval
    run.get("active")
    assert run.next() == Sleep(3)
    run.get("completed")
    assert isinstance(run.finish(), Done)
    polling = [r.getMessage() for r in caplog.records if "polling" in r.getMessage()]
    assert len(polling) == 1
    assert "failed 2 times in a row; polling" in polling[0]
    assert "every 3.0s instead" in polling[0]


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("retries", [0, 1, 3])
def test_a_failed_request_is_asked_again_as_often_as_the_policy_retries(
    scope: str, retries: int
) -> None:
    run = Run(scope, policy=RetryPolicy(retries=retries), timeout=600)
    run.expect(Subscribe)
    run.waiter.subscribe_failed(run.now, api_error(503))
    for attempt in range(retries):
        assert run.next() == Get("build", "a")
        run.waiter.request_failed(run.now, api_error(503))
        assert 0 <= run.expect(Sleep).seconds <= 0.5 * 2**attempt  # the policy's backoff
    assert run.next() == Get("build", "a")
    run.waiter.request_failed(run.now, api_error(503))
    # The retries are spent: no layer asks at once again; the wait rides it out at the pace
    # of its reconnections (the first backoff here: the stream has not failed before).
    assert 0 <= run.expect(Sleep).seconds <= 0.5
    run.get("active")  # the same check, asked once more after that
    run.expect(Sleep)
    run.expect(Subscribe)


@pytest.mark.parametrize("scope", SCOPES)
def test_a_final_error_ends_the_wait_without_asking_again(scope: str) -> None:
    run = Run(scope, policy=RetryPolicy(retries=4))
    run.subscribe()
    run.waiter.stream_ended(run.now)
    assert run.next() == Get("build", "a")
    error = api_error(401, cls=AuthError)
    run.waiter.request_failed(run.now, error)
    assert run.next() == Fail(error)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("status", [401, 403, 404, 400, 501])
def test_a_refused_subscription_ends_the_wait(scope: str, status: int) -> None:
    run = Run(scope)
    run.expect(Subscribe)
    error = api_error(
        status, cls={401: AuthError, 403: AuthError, 404: NotFoundError}.get(status, ApiError)
    )
    run.waiter.subscribe_failed(run.now, error)
    assert run.next() == Fail(error)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("retries", [0, 2])
def test_refused_everywhere_before_any_answer_is_the_transport_error(
    scope: str, retries: int
) -> None:
    run = Run(scope, policy=RetryPolicy(retries=retries))
    run.expect(Subscribe)
    run.waiter.subscribe_failed(run.now, REFUSED)
    for _ in range(retries):  # one more route, asked as often as the policy retries
        assert run.next() == Get("build", "a")
        run.waiter.request_failed(run.now, REFUSED)
        run.expect(Sleep)
    assert run.next() == Get("build", "a")
    run.waiter.request_failed(run.now, REFUSED)
    assert run.next() == Fail(REFUSED)


@pytest.mark.parametrize("scope", SCOPES)
def test_refused_everywhere_is_the_transport_error_even_when_the_time_is_up(scope: str) -> None:
    run = Run(scope, timeout=2, policy=RetryPolicy(retries=4))
    run.expect(Subscribe)
    run.waiter.subscribe_failed(run.now, REFUSED)
    assert run.next() == Get("build", "a")
    run.waiter.request_failed(run.now, REFUSED)
    run.clock.now += 2  # the pause before asking again used up the time
    assert run.next() == Fail(REFUSED)


@pytest.mark.parametrize("scope", SCOPES)
def test_refused_after_the_server_has_answered_is_ridden_out(scope: str) -> None:
    run = Run(scope)
    run.subscribe()
    run.waiter.stream_failed(run.now, RESET)
    assert run.next() == Get("build", "a")
    run.waiter.request_failed(run.now, REFUSED)
    run.expect(Sleep)
    run.get("active")


@pytest.mark.parametrize("scope", SCOPES)
def test_a_retry_after_beyond_the_deadline_ends_the_wait_at_once(scope: str) -> None:
    run = Run(scope, timeout=5, idle_timeout=60)
    run.expect(Subscribe)
    run.waiter.subscribe_failed(run.now, api_error(503, retry_after=4))
    assert run.next() == Get("build", "a")
    run.clock.now += 3  # the check took 3 s
    run.waiter.job_received(run.now, job(A, "waiting"))
    # 4 s asked for, 2 s left: waiting cannot help, so the wait ends now.
    action = run.next()
    assert isinstance(action, Fail)
    assert isinstance(action.error, WaitTimeout)
    assert "the server asked to retry after 4s, more than the 2.0s left" in str(action.error)
    assert action.error.last_state == "waiting"
    assert action.error.last_job is not None


@pytest.mark.parametrize("scope", SCOPES)
def test_a_get_answered_with_a_retry_after_beyond_the_deadline_ends_the_wait(scope: str) -> None:
    run = Run(scope, timeout=5)
    run.subscribe()
    run.waiter.stream_ended(run.now)
    assert run.next() == Get("build", "a")
    busy = api_error(503, retry_after=60)
    run.waiter.request_failed(run.now, busy)
    action = run.next()
    assert isinstance(action.error, WaitTimeout)
    assert "retry after 60s, more than the 5.0s left" in str(action.error)
    assert action.error.__cause__ is busy


@pytest.mark.parametrize("scope", SCOPES)
def test_a_pause_is_cut_to_the_time_left_then_the_wait_times_out(scope: str) -> None:
    run = Run(scope, timeout=1, max_stream_failures=1, poll_interval=10)
    run.expect(Subscribe)
    run.waiter.subscribe_failed(run.now, RESET)
    assert run.next() == Get("build", "a")
    run.clock.now += 0.5
    run.waiter.job_received(run.now, job(A, "active"))
    assert run.next() == Sleep(0.5)
    run.clock.now += 0.5
    action = run.next()
    assert isinstance(action.error, WaitTimeout)
    assert action.error.timeout == 1


@pytest.mark.parametrize("scope", SCOPES)
def test_an_error_at_the_deadline_is_the_cause_of_the_timeout(scope: str) -> None:
    run = Run(scope, timeout=2)
    run.subscribe()
    run.clock.now += 2
    run.waiter.stream_failed(run.now, IdleTimeout("nothing within the read timeout"))
    action = run.next()
    assert isinstance(action.error, WaitTimeout)
    assert isinstance(action.error.__cause__, IdleTimeout)


@pytest.mark.parametrize("scope", SCOPES)
def test_timeout_zero_fails_before_any_request(scope: str) -> None:
    action = Run(scope, timeout=0).next()
    assert isinstance(action, Fail)
    assert isinstance(action.error, WaitTimeout)


@pytest.mark.parametrize("scope", SCOPES)
def test_a_bare_id_is_probed_type_by_type(scope: str) -> None:
    run = Run(scope, [Target(None, "a")])
    assert run.next() == Get(PROBE_ORDER[0], "a")
    run.waiter.request_failed(run.now, api_error(404, cls=NotFoundError))
    assert run.next() == Get(PROBE_ORDER[1], "a")
    run.waiter.job_received(run.now, job(Target(PROBE_ORDER[1], "a"), "active"))
    subscribe = run.expect(Subscribe)
    assert subscribe.job_type == PROBE_ORDER[1]


@pytest.mark.parametrize("scope", SCOPES)
def test_a_bare_id_of_an_ended_job_is_done_without_subscribing(scope: str) -> None:
    run = Run(scope, [Target(None, "a")])
    run.get("completed")
    assert isinstance(run.next(), Ended)
    assert isinstance(run.next(), Done)


@pytest.mark.parametrize("scope", SCOPES)
def test_a_bare_id_that_no_type_knows_is_not_found(scope: str) -> None:
    run = Run(scope, [Target(None, "a")])
    for _ in PROBE_ORDER:
        run.expect(Get)
        run.waiter.request_failed(run.now, api_error(404, cls=NotFoundError))
    action = run.next()
    assert isinstance(action.error, NotFoundError)
    if scope == "job":
        assert str(action.error).startswith("no job with id 'a': probed the job types build")
    else:
        assert str(action.error) == "1 of the 1 jobs do not exist: job a (of no job type)"


@pytest.mark.parametrize("scope", SCOPES)
def test_a_busy_probe_pauses_and_asks_the_same_type_again(scope: str) -> None:
    run = Run(scope, [Target(None, "a")], timeout=60)
    run.expect(Get)
    run.waiter.request_failed(run.now, api_error(503, retry_after=2))
    assert run.next() == Sleep(2)
    assert run.next() == Get(PROBE_ORDER[0], "a")


@pytest.mark.parametrize("scope", SCOPES)
def test_a_probe_cut_by_the_deadline_names_the_job_without_a_type(scope: str) -> None:
    run = Run(scope, [Target(None, "a")], timeout=2)
    run.expect(Get)
    run.clock.now += 2
    run.waiter.request_failed(run.now, RESET)
    action = run.next()
    assert isinstance(action.error, WaitTimeout)
    assert action.error.job_type is None
    assert action.error.job_id == "a"


@pytest.mark.parametrize("scope", SCOPES)
def test_cancelled_ends_the_wait_with_the_last_known_state(scope: str) -> None:
    run = Run(scope)
    run.subscribe()
    run.waiter.cancelled(run.now)
    action = run.next()
    assert isinstance(action.error, WaitCancelled)
    assert action.error.last_state == "active"
    assert action.error.job_id == "a"
    assert not run.waiter.keeps_stream


@pytest.mark.parametrize("scope", SCOPES)
def test_log_lines_carry_the_time_of_what_they_report(
    scope: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="waylay_jobs")
    run = Run(scope)
    run.subscribe()
    run.next()  # a read begins at 0.0 s ...
    run.clock.now += 3.7  # ... and its event comes 3.7 s later
    run.waiter.event_received(run.now, event("waiting"))
    assert "build job a is waiting (3.7s)" in [r.getMessage() for r in caplog.records]


# -- one job's own stream -------------------------------------------------------------------------


def test_a_job_stream_subscribes_with_the_id_and_children() -> None:
    run = Run("job", children=True, idle_timeout=20)
    subscribe = run.expect(Subscribe)
    assert subscribe == Subscribe("build", "a", True, 20)
    assert subscribe.params() == [("type", "build"), ("id", "a"), ("children", "true")]


def test_a_job_stream_passes_every_event_and_logs_the_childrens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    caplog.set_level(logging.INFO, logger="waylay_jobs")
    run = Run("job", children=True, on_event=lambda e: seen.append(e.event))
    run.subscribe()
    run.waiter.event_received(run.now, event("keep-alive"))
    run.waiter.event_received(run.now, event("completed", Target("deploy", "child-1")))
    run.waiter.event_received(run.now, event("failed", Target("deploy", "child-2")))
    run.expect(Read)  # children never end the parent
    assert seen == ["ack", "keep-alive", "completed", "failed"]
    messages = [r.getMessage() for r in caplog.records]
    assert "build job a: child deploy job child-2 is failed (0.0s)" in messages


def test_a_failed_check_on_a_job_stream_goes_back_to_reading() -> None:
    run = Run("job")
    run.go_live()
    assert run.next() == Get("build", "a")
    run.waiter.request_failed(run.now, api_error(503))
    run.expect(Read)  # its close is checked anyway
    assert run.waiter.keeps_stream


def test_close_but_not_ended_is_a_stream_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="waylay_jobs")
    run = Run("job")
    run.subscribe()
    run.end_on_stream("failed")
    run.get("active")  # a retry after all
    assert 0 <= run.expect(Sleep).seconds <= 0.5
    run.expect(Subscribe)
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "build job a: event stream interrupted (the stream sent close but the job is active)"
        in messages
    )


def test_a_failing_confirmation_after_close_is_asked_again_after_a_pause() -> None:
    run = Run("job")
    run.subscribe()
    run.end_on_stream("completed")
    assert run.next() == Get("build", "a")
    run.waiter.request_failed(run.now, api_error(502))
    run.expect(Sleep)
    run.get("completed")  # not a new subscription: the stream has said all it will
    assert isinstance(run.finish(), Done)


def test_a_job_wait_that_times_out_says_so_for_the_job() -> None:
    run = Run("job", timeout=1)
    run.subscribe("waiting")
    run.clock.now += 1
    action = run.next()
    assert str(action.error) == "build job a did not end within 1s; last known state: waiting"
    assert action.error.pending == []


# -- the tenant stream ----------------------------------------------------------------------------


B, C = Target("build", "b"), Target("deploy", "c")


@pytest.mark.parametrize("children", [False, True])
def test_the_tenant_stream_filters_on_the_type_only_when_it_can(children: bool) -> None:
    subscribe = Run("tenant", [A, B], children=children).expect(Subscribe)
    assert subscribe.job_type == (None if children else "build")
    assert subscribe.params() == ([] if children else [("type", "build")])
    assert Run("tenant", [A, C]).expect(Subscribe).job_type is None


def test_the_first_check_lists_a_type_shared_by_several_jobs() -> None:
    run = Run("tenant", [A, B, C], max_stream_failures=5)
    run.go_live()
    assert run.next() == Get("deploy", "c")
    run.waiter.job_received(run.now, job(C, "active"))
    first = run.expect(ListJobs)
    assert (first.job_type, first.states, first.created_after) == ("build", (), None)
    run.waiter.listed(run.now, listing("build", ("a", "active"), ("b", "completed")))
    assert run.next() == Get("build", "b")  # an end on the list is confirmed with get
    run.waiter.job_received(run.now, job(B, "completed"))
    assert isinstance(run.next(), Ended)
    run.expect(Read)
    run.waiter.stream_ended(run.now)
    run.get("active", A)  # one build job left, one deploy job: a get each
    run.get("active", C)


def test_a_check_after_a_fault_lists_the_final_states_since_the_oldest_job() -> None:
    run = Run("tenant", [A, B])
    run.go_live()
    run.expect(ListJobs)
    run.waiter.listed(run.now, listing("build", ("a", "active"), ("b", "active")))
    run.expect(Read)
    run.waiter.stream_ended(run.now)
    later = run.expect(ListJobs)
    assert later.states == ("completed", "failed")
    assert later.created_after == created_time(CREATED) - dt.timedelta(seconds=1)


def test_a_creation_time_without_an_offset_puts_no_time_bound_on_a_later_check() -> None:
    run = Run("tenant", [A, B])
    run.go_live()
    run.expect(ListJobs)
    naive = "2026-05-02T09:14:03"  # in what zone? one ahead of UTC would hide the jobs
    run.waiter.listed(run.now, listing("build", ("a", "active"), ("b", "active"), created=naive))
    run.expect(Read)
    run.waiter.stream_ended(run.now)
    later = run.expect(ListJobs)
    assert (later.states, later.created_after) == (("completed", "failed"), None)


def test_events_already_on_the_stream_are_read_before_each_request_of_a_check() -> None:
    run = Run("tenant", [A, C])
    run.go_live()
    assert run.waiter.next_action(run.now) == Read(0.0)  # an event may be waiting
    run.waiter.event_received(run.now, event("completed", C))
    assert run.waiter.next_action(run.now) == Read(0.0)  # and another one
    run.waiter.nothing_received(run.now)
    assert run.waiter.next_action(run.now) == Get("build", "a")
    run.waiter.job_received(run.now, job(A, "active"))
    assert run.waiter.next_action(run.now) == Read(0.0)
    run.waiter.nothing_received(run.now)
    assert run.waiter.next_action(run.now) == Get("deploy", "c")


def test_a_failed_get_on_the_tenant_stream_is_asked_again_while_reading() -> None:
    run = Run("tenant")
    run.go_live()
    assert run.next() == Get("build", "a")
    run.waiter.request_failed(run.now, api_error(503, retry_after=2))
    read = run.expect(Read)
    assert read.timeout >= 2  # the stream is read during the pause
    assert run.waiter.keeps_stream
    run.clock.now += read.timeout
    run.waiter.nothing_received(run.now)
    run.get("completed")
    assert run.next() == Ended(job(A, "completed"), (0,))


def test_a_failed_list_falls_back_to_a_get_each() -> None:
    run = Run("tenant", [A, B])
    run.go_live()
    run.expect(ListJobs)
    run.waiter.request_failed(run.now, api_error(400))
    run.get("active", A)
    run.get("active", B)
    run.expect(Read)


def test_a_list_refused_for_the_credentials_ends_the_wait() -> None:
    run = Run("tenant", [A, B])
    run.go_live()
    run.expect(ListJobs)
    error = api_error(403, cls=AuthError)
    run.waiter.request_failed(run.now, error)
    assert run.next() == Fail(error)


def test_a_job_missing_from_a_full_listing_is_paged_for_then_asked_with_get() -> None:
    run = Run("tenant", [A, B])
    run.go_live()
    run.expect(ListJobs)
    run.waiter.listed(run.now, listing("build", ("a", "active"), ("zz", "active"), limit=2))
    page = run.expect(ListJobs)  # the next page, before the oldest of this one
    assert page.created_before is not None
    run.waiter.listed(run.now, listing("build", ("a", "active"), ("zz", "active"), limit=2))
    assert run.next() == Get("build", "b")


def test_missing_jobs_are_named_together_before_any_job_is_handed_over() -> None:
    run = Run("tenant", [A, C, Target(None, "x")])
    for _ in PROBE_ORDER:
        run.expect(Get)
        run.waiter.request_failed(run.now, api_error(404, cls=NotFoundError))
    run.go_live()
    assert run.next() == Get("build", "a")
    run.waiter.job_received(run.now, job(A, "completed"))
    assert run.next() == Get("deploy", "c")
    run.waiter.request_failed(run.now, api_error(404, cls=NotFoundError))
    action = run.next()
    assert isinstance(action, Fail)
    assert str(action.error) == (
        "2 of the 3 jobs do not exist: job x (of no job type), deploy job c"
    )


def test_a_job_deleted_during_the_wait_ends_it() -> None:
    run = Run("tenant")
    run.subscribe()
    run.waiter.event_received(run.now, event("failed"))
    assert run.next() == Get("build", "a")
    gone = api_error(404, cls=NotFoundError)
    run.waiter.request_failed(run.now, gone)
    assert run.next() == Fail(gone)


def test_a_close_on_the_tenant_stream_is_a_fault() -> None:
    run = Run("tenant")
    run.subscribe()
    run.waiter.event_received(run.now, event("close"))
    assert not run.waiter.keeps_stream
    run.get("active")
    run.expect(Sleep)


@pytest.mark.parametrize("children", [False, True])
def test_other_jobs_events_reach_on_event_only_with_children(children: bool) -> None:
    seen: list[Any] = []
    run = Run("tenant", children=children, on_event=seen.append)
    run.subscribe()
    other = event("active", Target("deploy", "other"))
    run.waiter.event_received(run.now, other)
    run.waiter.event_received(run.now, event("active"))
    assert [e.event for e in seen] == ["ack", "active", "active"][: 3 if children else 2]
    assert (other in seen) == children


def test_a_tenant_wait_that_times_out_names_the_jobs_pending() -> None:
    run = Run("tenant", [A, Target(None, "x")], timeout=1)
    assert run.next() == Get("build", "x")
    run.waiter.request_failed(run.now, RESET)
    run.expect(Sleep)
    run.clock.now += 2
    action = run.next()
    assert isinstance(action.error, WaitTimeout)
    assert action.error.pending == [A, Target(None, "x")]
    assert str(action.error) == (
        "2 of the 2 jobs did not end within 1s: build job a (unknown), job x (type not found yet)"
    )


def test_a_retry_after_beyond_the_deadline_while_probing_names_the_probe() -> None:
    run = Run("tenant", [Target(None, "x")], timeout=5)
    assert run.next() == Get("build", "x")
    run.waiter.request_failed(run.now, api_error(429, retry_after=30))
    action = run.next()
    assert isinstance(action.error, WaitTimeout)
    assert action.error.pending == [Target(None, "x")]
    assert "finding the type of job x" in str(action.error)


# -- the small parts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (REFUSED, "unreachable"),
        (RESET, "transient"),
        (api_error(429), "transient"),
        (api_error(500), "transient"),
        (api_error(503), "transient"),
        (api_error(200), "transient"),  # a 2xx body of the wrong kind
        (api_error(501), "fatal"),
        (api_error(400), "fatal"),
        (api_error(404, cls=NotFoundError), "fatal"),
        (api_error(401, cls=AuthError), "fatal"),
        (api_error(503, cls=AuthError), "transient"),  # a busy token endpoint
        (EventDecodeError("x", event="a", snippet="b"), "fatal"),
    ],
)
def test_error_kinds(error: Any, kind: str) -> None:
    assert error_kind(error) == kind


def test_created_time_reads_the_wire_forms_and_takes_no_time_without_an_offset() -> None:
    utc = dt.timezone.utc
    assert created_time(CREATED) == dt.datetime(2026, 5, 2, 9, 14, 3, 512000, tzinfo=utc)
    assert created_time("2026-05-02T09:14:03Z") == dt.datetime(2026, 5, 2, 9, 14, 3, tzinfo=utc)
    assert created_time("2026-05-02T09:14:03.5+02:00") == dt.datetime(
        2026, 5, 2, 7, 14, 3, 500000, tzinfo=utc
    )
    aware = dt.datetime(2026, 5, 2, tzinfo=utc)
    assert created_time(aware) is aware
    # Without an offset the zone is a guess: one ahead of UTC would put the bound after the job.
    assert created_time(dt.datetime(2026, 5, 2)) is None
    assert created_time("2026-05-02T09:14:03") is None
    assert created_time("yesterday") is None
    assert created_time(None) is None


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": -1},
        {"timeout": float("nan")},
        {"idle_timeout": 0},
        {"poll_interval": -1},
        {"raise_on_failure": "no"},
        {"children": 1},
        {"max_stream_failures": 0},
        {"max_stream_failures": True},
        {"on_event": "print"},
        {"cancel": True},
    ],
)
def test_bad_options_are_refused_before_anything_happens(options: dict[str, Any]) -> None:
    name = next(iter(options))
    with pytest.raises(ValueError, match=name):
        WaitOptions(**options)


# -- the shared scope: jobs join and leave a running wait ----------------------------------------

D = Target("deploy", "d")


def shared_run(*targets: Target) -> Run:
    run = Run("tenant", targets=[], timeout=None)
    run.waiter.scope = SharedScope()
    for target in targets:
        run.waiter.add(run.now, target)
    return run


def test_a_shared_wait_subscribes_to_every_type_and_checks_the_jobs_it_was_given() -> None:
    run = shared_run(A)
    assert run.next() == Subscribe(None, None, None, run.waiter.options.idle_timeout)
    run.waiter.subscribed(run.now)
    run.waiter.event_received(run.now, event("ack"))
    run.get("active")
    run.expect(Read)


def test_a_job_that_joins_a_live_stream_is_checked_at_once_and_followed() -> None:
    run = shared_run(A)
    run.subscribe()
    run.waiter.add(run.now, D)
    run.get("running", D)  # an end before it joined is seen by this get
    run.expect(Read)
    run.waiter.event_received(run.now, event("completed", D))
    run.get("completed", D)
    ended = run.next()
    assert isinstance(ended, Ended)
    assert ended.job.job.job.id == "d"
    run.expect(Read)  # A is still followed
    assert [job.target for job in run.waiter.pending()] == [A]


def test_a_job_that_joins_before_the_stream_answers_is_in_the_first_check() -> None:
    run = shared_run(A)
    run.expect(Subscribe)
    run.waiter.add(run.now, D)
    run.waiter.subscribed(run.now)
    run.waiter.event_received(run.now, event("ack"))
    asked = {run.next(), None}
    run.waiter.job_received(run.now, job(A, "active"))
    asked.add(run.next())
    run.waiter.job_received(run.now, job(D, "active"))
    assert asked == {Get("build", "a"), Get("deploy", "d"), None}
    run.expect(Read)


def test_a_job_that_leaves_is_no_longer_followed_and_its_answer_is_ignored() -> None:
    run = shared_run(A, D)
    run.go_live()
    run.get("active")  # A's ...
    assert run.next() == Get("deploy", "d")
    run.waiter.remove(("deploy", "d"))  # ... and D leaves while its get is under way
    run.waiter.job_received(run.now, job(D, "completed"))
    run.expect(Read)
    assert list(run.waiter.jobs) == [("build", "a")]
    run.waiter.remove(("build", "a"))
    assert run.next() == Done(())  # nobody left: the wait ends, and the stream with it
    assert not run.waiter.keeps_stream


def test_a_long_shared_wait_keeps_nothing_of_the_jobs_that_left() -> None:
    # A triggerer's shared wait may run for days while triggers come and go.
    run = shared_run(A)
    run.subscribe()
    for n in range(100):
        passing = Target("deploy", f"d{n}")
        run.waiter.add(run.now, passing)
        run.waiter.remove(("deploy", passing.id))
    assert list(run.waiter.items.values()) == [A]
    assert list(run.waiter.jobs) == [("build", "a")]


def test_one_jobs_404_drops_that_job_and_the_others_go_on() -> None:
    run = shared_run(A, D)
    run.go_live()
    gone = NotFoundError("no such job", status_code=404)
    assert run.next() == Get("build", "a")
    run.waiter.request_failed(run.now, gone)
    assert run.next() == Dropped(A, gone)
    run.get("active", D)
    run.expect(Read)
    assert list(run.waiter.jobs) == [("deploy", "d")]


def test_refused_credentials_end_the_shared_wait_for_every_job() -> None:
    run = shared_run(A, D)
    run.go_live()
    refused = AuthError("forbidden", status_code=403)
    assert run.next() == Get("build", "a")
    run.waiter.request_failed(run.now, refused)
    assert run.next() == Fail(refused)

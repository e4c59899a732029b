"""The wait machine on its own: every decision, fed by hand, with a fake clock and no I/O."""

from __future__ import annotations

import copy
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
    NotFoundError,
    TransportError,
    WaitCancelled,
    WaitTimeout,
)
from waylay_jobs._models import Event, decode_job_response, parse_event
from waylay_jobs._policy import Deadline
from waylay_jobs._waiting import (
    PROBE_ORDER,
    Fail,
    Finish,
    Get,
    JobWaiter,
    Pause,
    Read,
    Subscribe,
    Target,
    WaitOptions,
    error_kind,
)

JOB_ID = "j-1"
BUILD = Target("build", JOB_ID)
EXAMPLE = json.loads(
    (Path(__file__).parent / "data" / "examples" / "job_build_completed.json").read_text()
)


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def job(state: str, job_type: str = "build", job_id: str = JOB_ID, reason: str = "") -> JobResponse:
    document = copy.deepcopy(EXAMPLE)
    document["job"].update(type=job_type, state=state)
    document["job"]["job"]["id"] = job_id
    if reason:
        document["job"]["job"]["failedReason"] = reason
    return decode_job_response(document)


def event(name: str, job_type: str = "build", job_id: str = JOB_ID) -> Event:
    if name in ("ack", "keep-alive", "close"):
        return parse_event(name, name)
    data = {
        "job": {"type": job_type, "id": job_id},
        "data": {},
        "timestamp": "2024-05-02T09:14:03Z",
    }
    return parse_event(name, json.dumps(data))


def api_error(status: int, retry_after: Optional[float] = None, cls: type = ApiError) -> Any:
    return cls(f"status {status}", status_code=status, retry_after=retry_after)


REFUSED = TransportError("refused", connect_failed=True)
TIMED_OUT = TransportError("read timed out")


class Run:
    """A machine, its fake clock, and the actions it asked for."""

    def __init__(self, target: Target = BUILD, **options: Any) -> None:
        self.clock = Clock()
        start = self.clock()
        self.waiter = JobWaiter(
            target,
            WaitOptions(**options),
            deadline=Deadline(options.get("timeout"), clock=self.clock, start=start),
            start=start,
            rng=random.Random(3),
        )

    def next(self) -> Any:
        return self.waiter.next_action(self.clock())

    def expect(self, kind: type) -> Any:
        action = self.next()
        assert isinstance(action, kind), action
        return action

    def subscribe(self) -> None:
        """Subscribe, receive ack, check: the state in which the stream is read."""
        self.expect(Subscribe)
        self.waiter.subscribed()
        self.expect(Read)
        self.waiter.event_received(event("ack"))
        self.expect(Get)
        self.waiter.job_received(job("active"))
        self.expect(Read)


# -- the happy paths ----------------------------------------------------------------------------


def test_subscribe_then_check_then_read_until_close_then_confirm() -> None:
    run = Run(timeout=60, idle_timeout=20)
    assert run.expect(Subscribe) == Subscribe("build", JOB_ID, False, 20)
    run.waiter.subscribed()
    assert run.expect(Read) == Read()
    run.waiter.event_received(event("ack"))
    # The first event proves the subscription is live: check now, keeping the stream.
    assert run.expect(Get) == Get("build", JOB_ID)
    assert run.waiter.keeps_stream
    run.waiter.job_received(job("active"))
    run.expect(Read)
    run.waiter.event_received(event("completed"))
    run.expect(Read)
    run.waiter.event_received(event("close"))
    run.expect(Get)
    assert not run.waiter.keeps_stream  # the driver closes the stream now
    final = job("completed")
    assert not run.waiter.over
    run.waiter.job_received(final)
    assert run.waiter.over
    assert run.next() == Finish(final)
    assert run.next() == Finish(final)  # the outcome stays


def test_a_job_that_already_ended_finishes_at_the_first_check() -> None:
    run = Run()
    run.expect(Subscribe)
    run.waiter.subscribed()
    run.expect(Read)
    run.waiter.event_received(event("ack"))
    run.expect(Get)
    run.waiter.job_received(job("completed"))
    assert isinstance(run.next(), Finish)


@pytest.mark.parametrize("raise_on_failure", [True, False])
def test_a_failed_job(raise_on_failure: bool) -> None:
    run = Run(raise_on_failure=raise_on_failure)
    run.subscribe()
    run.waiter.event_received(event("close"))
    run.expect(Get)
    run.waiter.job_received(job("failed", reason="boom"))
    action = run.next()
    if raise_on_failure:
        assert isinstance(action, Fail)
        assert isinstance(action.error, JobFailed)
        assert action.error.reason == "boom"
        assert str(action.error) == f"build job {JOB_ID} failed: boom"
    else:
        assert isinstance(action, Finish)
        assert action.job.job.state == "failed"


def test_other_jobs_events_are_ignored_without_children(caplog: pytest.LogCaptureFixture) -> None:
    run = Run()
    caplog.set_level(logging.INFO, logger="waylay_jobs")
    run.subscribe()
    run.waiter.event_received(event("completed", "deploy", "someone-else"))
    run.expect(Read)
    assert run.waiter.last_state == "active"
    assert not any("someone-else" in r.getMessage() for r in caplog.records)


def test_on_event_sees_every_event_and_children_do_not_end_the_parent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    run = Run(children=True, on_event=lambda e: seen.append(e.event))
    caplog.set_level(logging.INFO, logger="waylay_jobs")
    run.subscribe()
    run.waiter.event_received(event("keep-alive"))
    run.waiter.event_received(event("completed", "deploy", "child-1"))
    run.waiter.event_received(event("failed", "deploy", "child-2"))
    run.expect(Read)
    assert seen == ["ack", "keep-alive", "completed", "failed"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("child deploy job child-2 is failed" in m for m in messages), messages


# -- stream faults ------------------------------------------------------------------------------


def test_close_but_not_ended_is_a_stream_failure_then_backoff_then_resubscribe() -> None:
    # A failed that is followed by a retry: the stream said close, get says active again.
    run = Run(timeout=60)
    run.subscribe()
    run.waiter.event_received(event("failed"))
    run.waiter.event_received(event("close"))
    run.expect(Get)
    run.waiter.job_received(job("active"))
    pause = run.expect(Pause)
    assert 0 <= pause.seconds <= 0.5  # the policy's first backoff, full jitter
    run.expect(Subscribe)


@pytest.mark.parametrize(
    "fail",
    [
        lambda w: w.stream_ended(),
        lambda w: w.stream_failed(IdleTimeout("nothing within the idle timeout")),
        lambda w: w.stream_failed(EventDecodeError("bad json", event="active", snippet="{")),
        lambda w: w.stream_failed(TIMED_OUT),
    ],
    ids=["eof-before-close", "idle-timeout", "malformed-event", "broken-connection"],
)
def test_a_broken_stream_is_checked_then_reconnected(fail: Any) -> None:
    run = Run()
    run.subscribe()
    fail(run.waiter)
    run.expect(Get)
    assert not run.waiter.keeps_stream
    run.waiter.job_received(job("active"))
    run.expect(Pause)
    run.expect(Subscribe)


def test_a_broken_stream_whose_check_shows_the_end_finishes() -> None:
    run = Run()
    run.subscribe()
    run.waiter.stream_ended()
    run.expect(Get)
    run.waiter.job_received(job("completed"))
    assert isinstance(run.next(), Finish)


def test_backoff_grows_and_a_job_event_resets_it() -> None:
    run = Run(max_stream_failures=10)
    ceilings = []
    for attempt in range(4):
        run.expect(Subscribe)
        run.waiter.subscribe_failed(api_error(502))
        run.expect(Get)
        run.waiter.job_received(job("active"))
        ceilings.append((run.expect(Pause).seconds, 0.5 * 2**attempt))
    assert all(0 <= seconds <= ceiling for seconds, ceiling in ceilings)
    run.subscribe()
    run.waiter.event_received(event("active"))
    run.waiter.stream_ended()
    run.expect(Get)
    run.waiter.job_received(job("active"))
    assert run.expect(Pause).seconds <= 0.5  # back to the first ceiling


def test_the_servers_retry_field_sets_the_backoff_base() -> None:
    run = Run()
    run.subscribe()
    run.waiter.stream_retry(40_000)
    run.waiter.stream_ended()
    run.expect(Get)
    run.waiter.job_received(job("active"))
    assert run.expect(Pause).seconds <= 30.0  # 40 s, capped by the policy's max backoff


def test_a_retry_after_is_a_floor_for_the_reconnect() -> None:
    run = Run(timeout=60)
    run.expect(Subscribe)
    run.waiter.subscribe_failed(api_error(503, retry_after=7))
    run.expect(Get)
    run.waiter.job_received(job("active"))
    assert run.expect(Pause).seconds == 7


def test_falls_back_to_polling_after_max_stream_failures(caplog: pytest.LogCaptureFixture) -> None:
    run = Run(max_stream_failures=2, poll_interval=3)
    caplog.set_level(logging.WARNING, logger="waylay_jobs")
    for failure in range(2):
        if failure:
            run.expect(Pause)
        run.expect(Subscribe)
        run.waiter.subscribe_failed(TIMED_OUT)
        run.expect(Get)
        run.waiter.job_received(job("active"))
    assert run.waiter.polling
    assert run.expect(Pause) == Pause(3)
    run.expect(Get)
    run.waiter.get_failed(api_error(503, retry_after=5))
    assert run.expect(Pause) == Pause(5)  # Retry-After beats the poll interval
    run.expect(Get)
    run.waiter.job_received(job("active"))
    assert run.expect(Pause) == Pause(3)
    run.expect(Get)
    run.waiter.job_received(job("completed"))
    assert isinstance(run.next(), Finish)
    assert sum("polling get every 3.0s" in r.getMessage() for r in caplog.records) == 1


# -- failing checks -----------------------------------------------------------------------------


def test_a_failing_check_while_the_stream_is_open_goes_back_to_reading() -> None:
    run = Run()
    run.expect(Subscribe)
    run.waiter.subscribed()
    run.waiter.event_received(event("ack"))
    run.expect(Get)
    run.waiter.get_failed(api_error(503))
    run.expect(Read)
    assert run.waiter.keeps_stream


def test_a_failing_confirmation_after_close_is_asked_again_after_a_pause() -> None:
    run = Run()
    run.subscribe()
    run.waiter.event_received(event("close"))
    run.expect(Get)
    run.waiter.get_failed(api_error(502))
    run.expect(Pause)
    run.expect(Get)  # not a new subscription: the stream has said all it will
    run.waiter.job_received(job("completed"))
    assert isinstance(run.next(), Finish)


@pytest.mark.parametrize(
    "error",
    [
        api_error(404, cls=NotFoundError),
        api_error(401, cls=AuthError),
        api_error(403, cls=AuthError),
        api_error(400),
        api_error(501),
    ],
    ids=["404", "401", "403", "400", "501"],
)
def test_a_final_error_ends_the_wait(error: ApiError) -> None:
    run = Run()
    run.expect(Subscribe)
    run.waiter.subscribe_failed(error)
    assert run.next() == Fail(error)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (REFUSED, "unreachable"),
        (TIMED_OUT, "transient"),
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


# -- a gateway that never answered --------------------------------------------------------------


def test_refused_everywhere_before_any_answer_is_the_transport_error() -> None:
    run = Run()
    run.expect(Subscribe)
    run.waiter.subscribe_failed(REFUSED)
    run.expect(Get)  # one more route, with the transport's own retries
    run.waiter.get_failed(REFUSED)
    assert run.next() == Fail(REFUSED)


def test_refused_everywhere_is_the_transport_error_even_when_the_retries_took_the_time() -> None:
    run = Run(timeout=2)
    run.expect(Subscribe)
    run.waiter.subscribe_failed(REFUSED)
    run.expect(Get)
    run.clock.now += 2  # the transport's own retries used up the time
    run.waiter.get_failed(REFUSED)
    assert run.next() == Fail(REFUSED)


def test_refused_after_the_server_has_answered_is_ridden_out() -> None:
    run = Run()
    run.subscribe()
    run.waiter.stream_failed(TIMED_OUT)
    run.expect(Get)
    run.waiter.get_failed(REFUSED)
    run.expect(Pause)
    run.expect(Subscribe)


# -- the deadline -------------------------------------------------------------------------------


def test_reads_and_pauses_never_outlive_the_deadline() -> None:
    run = Run(timeout=5, idle_timeout=60)
    assert run.expect(Subscribe).read_timeout == 5
    run.waiter.subscribe_failed(api_error(503, retry_after=4))
    run.expect(Get)
    run.clock.now += 3  # the check took 3 s
    run.waiter.job_received(job("waiting"))
    # 4 s asked for, 2 s left: the wait cannot be helped by waiting, so it ends now.
    action = run.next()
    assert isinstance(action, Fail)
    assert isinstance(action.error, WaitTimeout)
    assert "the server asked to retry after 4s, more than the 2.0s left" in str(action.error)
    assert action.error.last_state == "waiting"
    assert action.error.last_job is not None


def test_a_pause_is_cut_to_the_time_left_and_then_the_wait_times_out() -> None:
    run = Run(timeout=1, max_stream_failures=1, poll_interval=10)
    run.expect(Subscribe)
    run.waiter.subscribe_failed(TIMED_OUT)
    run.expect(Get)
    run.clock.now += 0.5
    run.waiter.job_received(job("active"))
    assert run.expect(Pause) == Pause(0.5)
    run.clock.now += 0.5
    action = run.next()
    assert isinstance(action, Fail)
    assert isinstance(action.error, WaitTimeout)
    assert (
        str(action.error) == f"build job {JOB_ID} did not end within 1s; last known state: active"
    )


def test_a_retry_after_beyond_the_deadline_on_a_get_ends_the_wait_at_once() -> None:
    run = Run(timeout=2)
    run.subscribe()
    run.waiter.stream_ended()
    run.expect(Get)
    run.waiter.get_failed(api_error(429, retry_after=30))
    action = run.next()
    assert isinstance(action, Fail)
    assert isinstance(action.error, WaitTimeout)
    assert "retry after 30s" in str(action.error)


def test_an_error_at_the_deadline_is_the_cause_of_the_timeout() -> None:
    run = Run(timeout=2)
    run.subscribe()
    run.clock.now += 2
    run.waiter.stream_failed(IdleTimeout("nothing within the idle timeout"))
    action = run.next()
    assert isinstance(action.error, WaitTimeout)
    assert isinstance(action.error.__cause__, IdleTimeout)


def test_timeout_zero_fails_before_any_request() -> None:
    run = Run(timeout=0)
    action = run.next()
    assert isinstance(action, Fail)
    assert isinstance(action.error, WaitTimeout)


# -- resolving a bare id ------------------------------------------------------------------------


def test_a_bare_id_is_probed_type_by_type() -> None:
    run = Run(Target(None, JOB_ID))
    assert run.expect(Get) == Get(PROBE_ORDER[0], JOB_ID)
    run.waiter.get_failed(api_error(404, cls=NotFoundError))
    assert run.expect(Get) == Get(PROBE_ORDER[1], JOB_ID)
    run.waiter.job_received(job("active", PROBE_ORDER[1]))
    assert run.waiter.target == Target(PROBE_ORDER[1], JOB_ID)
    assert run.expect(Subscribe).job_type == PROBE_ORDER[1]


def test_a_bare_id_of_an_ended_job_finishes_without_subscribing() -> None:
    run = Run(Target(None, JOB_ID))
    run.expect(Get)
    run.waiter.job_received(job("completed"))
    assert isinstance(run.next(), Finish)


def test_a_bare_id_that_no_type_knows_is_not_found() -> None:
    run = Run(Target(None, JOB_ID))
    for _ in PROBE_ORDER:
        run.expect(Get)
        run.waiter.get_failed(api_error(404, cls=NotFoundError))
    action = run.next()
    assert isinstance(action.error, NotFoundError)
    assert f"no job with id {JOB_ID!r}: probed the job types build" in str(action.error)


def test_a_busy_probe_pauses_and_asks_the_same_type_again() -> None:
    run = Run(Target(None, JOB_ID), timeout=60)
    run.expect(Get)
    run.waiter.get_failed(api_error(503, retry_after=2))
    assert run.expect(Pause) == Pause(2)
    assert run.expect(Get) == Get(PROBE_ORDER[0], JOB_ID)


def test_a_probe_that_times_out_names_the_job_without_a_type() -> None:
    run = Run(Target(None, JOB_ID), timeout=2)
    run.expect(Get)
    run.clock.now += 2
    run.waiter.get_failed(TIMED_OUT)
    action = run.next()
    assert isinstance(action.error, WaitTimeout)
    assert action.error.job_type is None
    assert str(action.error).startswith(f"job {JOB_ID} did not end within 2s")


# -- cancel -------------------------------------------------------------------------------------


def test_cancelled_ends_the_wait_with_the_last_known_state() -> None:
    run = Run()
    run.subscribe()
    run.waiter.cancelled()
    action = run.next()
    assert isinstance(action.error, WaitCancelled)
    assert action.error.last_state == "active"
    assert not run.waiter.keeps_stream


# -- options ------------------------------------------------------------------------------------


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

"""The many-jobs wait machine on its own: a fake clock, no server, no sleeps."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any, Optional

import pytest

from waylay_jobs import (
    ApiError,
    AuthError,
    EventDecodeError,
    JobResponse,
    JobsResponse,
    NotFoundError,
    TransportError,
    WaitTimeout,
)
from waylay_jobs._models import parse_event
from waylay_jobs._policy import Deadline
from waylay_jobs._waiting import Fail, Get, Pause, Read, Target, WaitOptions
from waylay_jobs._waiting_many import (
    AllEnded,
    Ended,
    ListJobs,
    ManyWaiter,
    ReadReady,
    SubscribeAll,
    created_time,
)

CREATED = "2026-05-02T09:14:03.512Z"


def job(job_type: str, job_id: str, state: str, created: str = CREATED) -> JobResponse:
    return JobResponse.from_wire(
        {
            "job": {
                "type": job_type,
                "state": state,
                "createdAt": created,
                "job": {"id": job_id, "name": job_type, "progress": 0, "attemptsMade": 0},
            },
            "_links": {},
        }
    )


def listing(job_type: str, *items: tuple[str, str], limit: int = 1000) -> JobsResponse:
    return JobsResponse.from_wire(
        {
            "limit": limit,
            "jobs": [
                {"type": job_type, "id": i, "state": s, "createdAt": CREATED, "operation": "x"}
                for i, s in items
            ],
        }
    )


def job_event(name: str, job_type: str, job_id: str) -> Any:
    envelope = {
        "job": {"type": job_type, "id": job_id},
        "data": {},
        "timestamp": CREATED,
        "_links": {},
        "function": {"functionType": "plugs", "name": "f"},
    }
    return parse_event(name, json.dumps(envelope))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def machine(
    targets: list[Target], timeout: Optional[float] = 60, **options: Any
) -> tuple[ManyWaiter, Clock]:
    clock = Clock()
    waiter = ManyWaiter(
        list(targets),
        targets,
        WaitOptions(timeout=timeout, **options),
        deadline=Deadline(timeout, clock=clock),
        start=clock.now,
        rng=random.Random(1),
    )
    return waiter, clock


def act(waiter: ManyWaiter, clock: Clock) -> Any:
    """The next action, answering "nothing ready" when it first looks at the stream."""
    action = waiter.next_action(clock.now)
    if isinstance(action, ReadReady):
        waiter.nothing_ready()
        action = waiter.next_action(clock.now)
    return action


def subscribe_and_ack(waiter: ManyWaiter, clock: Clock) -> None:
    assert isinstance(act(waiter, clock), SubscribeAll)
    waiter.subscribed()
    waiter.event_received(parse_event("ack", "hi"))


def test_created_time_reads_the_wire_forms() -> None:
    utc = dt.timezone.utc
    assert created_time(CREATED) == dt.datetime(2026, 5, 2, 9, 14, 3, 512000, tzinfo=utc)
    assert created_time("2026-05-02T09:14:03Z") == dt.datetime(2026, 5, 2, 9, 14, 3, tzinfo=utc)
    assert created_time("2026-05-02T09:14:03.5+02:00") == dt.datetime(
        2026, 5, 2, 7, 14, 3, 500000, tzinfo=utc
    )
    naive = dt.datetime(2026, 5, 2)
    assert created_time(naive) == naive.replace(tzinfo=utc)
    assert created_time("2026-05-02T09:14:03") == dt.datetime(2026, 5, 2, 9, 14, 3, tzinfo=utc)
    assert created_time("yesterday") is None
    assert created_time(None) is None


def test_a_failed_get_is_retried_after_a_pause() -> None:
    waiter, clock = machine([Target("build", "a")])
    subscribe_and_ack(waiter, clock)
    assert act(waiter, clock) == Get("build", "a")
    waiter.get_failed(ApiError("busy", status_code=503, retry_after=2.0))
    pause = act(waiter, clock)
    assert isinstance(pause, Pause)
    assert pause.seconds >= 2.0
    assert waiter.keeps_stream  # the stream stays open during the pause
    assert act(waiter, clock) == Get("build", "a")
    waiter.job_received(job("build", "a", "completed"))
    ended = act(waiter, clock)
    assert isinstance(ended, Ended)
    assert ended.positions == (0,)
    assert isinstance(act(waiter, clock), AllEnded)


def test_a_failed_list_falls_back_to_a_get_each() -> None:
    waiter, clock = machine([Target("build", "a"), Target("build", "b")])
    subscribe_and_ack(waiter, clock)
    action = act(waiter, clock)
    assert isinstance(action, ListJobs)
    assert action.states == ()  # the first check proves the jobs exist
    waiter.list_failed(ApiError("bad filter", status_code=400))
    assert act(waiter, clock) == Get("build", "a")
    waiter.job_received(job("build", "a", "active"))
    assert act(waiter, clock) == Get("build", "b")
    waiter.job_received(job("build", "b", "active"))
    assert isinstance(act(waiter, clock), Read)


def test_a_list_refused_for_the_credentials_ends_the_wait() -> None:
    waiter, clock = machine([Target("build", "a"), Target("build", "b")])
    subscribe_and_ack(waiter, clock)
    assert isinstance(act(waiter, clock), ListJobs)
    error = AuthError("no", status_code=403)
    waiter.list_failed(error)
    assert act(waiter, clock) == Fail(error)
    assert waiter.over


def test_a_job_missing_from_an_incomplete_listing_is_asked_with_get() -> None:
    waiter, clock = machine([Target("build", "a"), Target("build", "b")])
    subscribe_and_ack(waiter, clock)
    assert isinstance(act(waiter, clock), ListJobs)
    # A full page without b and nothing older to page to: b is asked directly.
    waiter.listed(listing("build", ("a", "active"), ("zz", "active"), limit=2))
    action = act(waiter, clock)
    assert isinstance(action, ListJobs)  # the next page, before the oldest of this one
    assert action.created_before is not None
    waiter.listed(listing("build", ("a", "active"), ("zz", "active"), limit=2))
    assert act(waiter, clock) == Get("build", "b")


def test_a_retry_after_longer_than_the_time_left_ends_the_wait_at_once() -> None:
    waiter, clock = machine([Target("build", "a")], timeout=5)
    assert isinstance(act(waiter, clock), SubscribeAll)
    waiter.subscribe_failed(ApiError("busy", status_code=503, retry_after=30.0))
    assert act(waiter, clock) == Get("build", "a")  # checked before reconnecting
    waiter.job_received(job("build", "a", "active"))
    action = act(waiter, clock)
    assert isinstance(action, Fail)
    assert isinstance(action.error, WaitTimeout)
    assert "retry after 30s" in str(action.error)
    assert action.error.pending == [Target("build", "a")]


def test_a_broken_event_and_an_unexpected_close_make_it_check_and_reconnect() -> None:
    waiter, clock = machine([Target("build", "a")], max_stream_failures=3)
    subscribe_and_ack(waiter, clock)
    assert act(waiter, clock) == Get("build", "a")
    waiter.job_received(job("build", "a", "active"))
    waiter.stream_retry(100)
    waiter.stream_failed(EventDecodeError("bad json", event="active", snippet="{"))
    assert not waiter.keeps_stream
    assert act(waiter, clock) == Get("build", "a")
    waiter.job_received(job("build", "a", "active"))
    pause = act(waiter, clock)
    assert isinstance(pause, Pause)
    assert pause.seconds <= 0.1  # the server's retry: is the backoff base
    assert isinstance(act(waiter, clock), SubscribeAll)
    waiter.subscribed()
    waiter.event_received(parse_event("close", "bye"))
    assert act(waiter, clock) == Get("build", "a")


def test_a_stream_event_for_another_job_is_ignored_and_an_end_is_confirmed() -> None:
    waiter, clock = machine([Target("build", "a")])
    subscribe_and_ack(waiter, clock)
    assert act(waiter, clock) == Get("build", "a")
    waiter.job_received(job("build", "a", "active"))
    waiter.event_received(job_event("completed", "deploy", "a"))  # same id, other type
    assert isinstance(act(waiter, clock), Read)
    waiter.event_received(job_event("completed", "build", "a"))
    assert act(waiter, clock) == Get("build", "a")


def test_resolving_a_bare_id_that_times_out_reports_it_pending() -> None:
    waiter, clock = machine([Target(None, "x"), Target("build", "a")], timeout=1)
    assert act(waiter, clock) == Get("build", "x")
    waiter.get_failed(TransportError("reset"))
    pause = act(waiter, clock)
    assert isinstance(pause, Pause)
    clock.now += 2
    action = act(waiter, clock)
    assert isinstance(action, Fail)
    assert isinstance(action.error, WaitTimeout)
    assert action.error.pending == [Target(None, "x"), Target("build", "a")]
    assert "type not found yet" in str(action.error)


def test_a_job_deleted_during_the_wait_ends_it() -> None:
    waiter, clock = machine([Target("build", "a")])
    subscribe_and_ack(waiter, clock)
    assert act(waiter, clock) == Get("build", "a")
    waiter.job_received(job("build", "a", "active"))
    waiter.event_received(job_event("failed", "build", "a"))
    assert act(waiter, clock) == Get("build", "a")
    gone = NotFoundError("gone", status_code=404)
    waiter.get_failed(gone)
    assert act(waiter, clock) == Fail(gone)


@pytest.mark.parametrize("children", [False, True])
def test_the_subscription_filters_on_the_type_only_when_it_can(children: bool) -> None:
    waiter, clock = machine([Target("build", "a"), Target("build", "b")], children=children)
    action = act(waiter, clock)
    assert isinstance(action, SubscribeAll)
    assert action.job_type == (None if children else "build")


def test_a_single_wait_probing_a_bare_id_pauses_after_a_transient_error() -> None:
    # Found here: JobWaiter asserted a known type before taking a pause its probe asked for.
    from waylay_jobs._waiting import JobWaiter

    clock = Clock()
    waiter = JobWaiter(
        Target(None, "x"),
        WaitOptions(timeout=60),
        deadline=Deadline(60, clock=clock),
        start=clock.now,
        rng=random.Random(1),
    )
    assert waiter.next_action(clock.now) == Get("build", "x")
    waiter.get_failed(ApiError("busy", status_code=503))
    assert isinstance(waiter.next_action(clock.now), Pause)
    assert waiter.next_action(clock.now) == Get("build", "x")


def test_events_already_on_the_stream_are_read_before_the_requests_of_a_check() -> None:
    waiter, clock = machine([Target("build", "a"), Target("deploy", "b")])
    subscribe_and_ack(waiter, clock)
    assert isinstance(waiter.next_action(clock.now), ReadReady)  # an event may be waiting
    waiter.event_received(job_event("completed", "deploy", "b"))
    assert isinstance(waiter.next_action(clock.now), ReadReady)  # and another one
    waiter.nothing_ready()
    assert waiter.next_action(clock.now) == Get("build", "a")
    waiter.job_received(job("build", "a", "active"))
    assert isinstance(waiter.next_action(clock.now), ReadReady)
    waiter.nothing_ready()
    assert waiter.next_action(clock.now) == Get("deploy", "b")


def test_a_retry_after_beyond_the_deadline_while_probing_keeps_the_id_pending() -> None:
    waiter, clock = machine([Target(None, "x")], timeout=5)
    assert waiter.next_action(clock.now) == Get("build", "x")
    waiter.get_failed(ApiError("busy", status_code=429, retry_after=30.0))
    action = waiter.next_action(clock.now)
    assert isinstance(action, Fail)
    assert isinstance(action.error, WaitTimeout)
    assert action.error.pending == [Target(None, "x")]
    assert "finding the type of job x" in str(action.error)


def test_a_get_answered_with_a_retry_after_beyond_the_deadline_ends_the_wait_at_once() -> None:
    waiter, clock = machine([Target("build", "a")], timeout=5)
    subscribe_and_ack(waiter, clock)
    assert act(waiter, clock) == Get("build", "a")
    busy = ApiError("busy", status_code=503, retry_after=60.0)
    waiter.get_failed(busy)
    action = waiter.next_action(clock.now)
    assert isinstance(action, Fail)
    assert isinstance(action.error, WaitTimeout)
    assert "retry after 60s, more than the 5.0s left" in str(action.error)
    assert action.error.__cause__ is busy

"""The one retry policy and the deadline: backoff, Retry-After, transient statuses."""

from __future__ import annotations

import email.utils
import random
from typing import Optional

import pytest

from waylay_jobs._policy import (
    DEFAULT_POLICY,
    MIN_TIMEOUT,
    Deadline,
    RetryPolicy,
    current_deadline,
    deadline_scope,
    is_transient,
    parse_retry_after,
    past_deadline,
)

NOW = 1_700_000_000.0


def _date(offset: float) -> str:
    return email.utils.formatdate(NOW + offset, usegmt=True)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        (_date(30), 30.0),
        (_date(30).replace("GMT", "-0000"), 30.0),  # a naive date is UTC all the same
        (_date(-30), None),  # in the past: absent, not "now"
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("Mon, 99 Foo 2024 99:99:99 GMT", None),
        ("١٢", None),  # digits, but not ASCII ones
        ("", None),
        (None, None),
    ],
)
def test_retry_after(value: Optional[str], seconds: Optional[float]) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses(status: int) -> None:
    assert is_transient(status)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 409, 501, 505])
def test_final_statuses(status: int) -> None:
    assert not is_transient(status)


def test_backoff_is_full_jitter_below_a_doubling_capped_ceiling() -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=4.0)
    rng = random.Random(5)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0), (500, 4.0)]:
        delays = [policy.backoff_time(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # it does use the whole range
    assert policy.backoff_time(0, rng, base=10.0) <= 4.0


def test_retry_after_is_a_floor_up_to_the_policy_limit() -> None:
    rng = random.Random(1)
    assert DEFAULT_POLICY.pause(0, 7.0, rng) == 7.0
    assert DEFAULT_POLICY.pause(0, 600.0, rng) == DEFAULT_POLICY.max_retry_after


def test_retry_pause_gives_up_when_retries_are_spent() -> None:
    policy = RetryPolicy(retries=2)
    rng = random.Random(1)
    assert policy.retry_pause(0, None, rng) is not None
    assert policy.retry_pause(1, None, rng) is not None
    assert policy.retry_pause(2, None, rng) is None


def test_retry_pause_gives_up_on_a_retry_after_beyond_its_limit() -> None:
    assert DEFAULT_POLICY.retry_pause(0, 61.0, random.Random(1)) is None
    assert DEFAULT_POLICY.retry_pause(0, 60.0, random.Random(1)) == 60.0


def test_retry_pause_never_reaches_the_deadline() -> None:
    now = [0.0]
    deadline = Deadline(2.0, clock=lambda: now[0])
    assert DEFAULT_POLICY.retry_pause(0, 1.0, random.Random(1), deadline) == 1.0
    assert DEFAULT_POLICY.retry_pause(0, 2.0, random.Random(1), deadline) is None
    now[0] = 1.9
    assert DEFAULT_POLICY.retry_pause(0, 0.2, random.Random(1), deadline) is None


def test_deadline_arithmetic() -> None:
    now = [10.0]
    deadline = Deadline(5.0, clock=lambda: now[0])
    assert deadline.remaining() == 5.0
    assert deadline.cap(30.0) == 5.0
    assert deadline.cap(1.0) == 1.0
    assert deadline.cap_timeout((10.0, 30.0)) == (5.0, 5.0)
    assert deadline.cap_timeout((1.0, 30.0)) == (1.0, 5.0)
    assert not deadline.expired()
    now[0] = 16.0
    assert deadline.expired()
    assert deadline.remaining() == -1.0
    assert deadline.cap(1.0) == 0.0
    assert deadline.cap_timeout((10.0, 30.0)) == (MIN_TIMEOUT, MIN_TIMEOUT)
    assert "remaining=-1.0" in repr(deadline)


def test_no_deadline_caps_nothing() -> None:
    deadline = Deadline(None)
    assert deadline.remaining() is None
    assert not deadline.expired()
    assert deadline.cap(30.0) == 30.0
    assert deadline.cap_timeout((10.0, 30.0)) == (10.0, 30.0)


def test_deadline_scope_is_restored() -> None:
    deadline = Deadline(3.0)
    assert current_deadline.get() is None
    with deadline_scope(deadline):
        assert current_deadline.get() is deadline
    assert current_deadline.get() is None


def test_poll_pause_takes_retry_after_as_a_floor_up_to_the_limit() -> None:
    assert DEFAULT_POLICY.poll_pause(3.0, None) == 3.0
    assert DEFAULT_POLICY.poll_pause(3.0, 1.0) == 3.0
    assert DEFAULT_POLICY.poll_pause(3.0, 7.0) == 7.0
    assert DEFAULT_POLICY.poll_pause(3.0, 600.0) == DEFAULT_POLICY.max_retry_after


def test_past_deadline_says_why_only_when_the_server_asks_for_too_long() -> None:
    assert past_deadline(None, 2.0) is None
    assert past_deadline(30.0, None) is None
    assert past_deadline(2.0, 2.0) is None
    assert (
        past_deadline(30.0, 1.94) == "the server asked to retry after 30s, more than the 1.9s left"
    )
    assert (
        past_deadline(30.0, -1.0) == "the server asked to retry after 30s, more than the 0.0s left"
    )

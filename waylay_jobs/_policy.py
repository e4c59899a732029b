"""The one retry policy and the deadline: backoff, ``Retry-After``, transient statuses. No I/O.

The transport retries a GET and the waiter reconnects its stream by the same rules (urllib3's
``Retry`` and tenacity's ``stop_after_delay`` are the models): exponential backoff with full
jitter below a cap, a ``Retry-After`` as a floor, the same set of statuses worth asking again,
and a deadline that no pause may cross. A :class:`Deadline` travels with every request of a wait,
so connect and read timeouts, the token exchange and every pause are bounded by the time left.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timezone
from typing import Callable, Optional

#: Statuses worth asking again: a timeout, rate limiting, or a gateway that could not reach a
#: healthy backend. 501 (not implemented) and 505 will not change by asking again.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

#: The shortest connect or read timeout handed to a socket: zero would mean non-blocking.
MIN_TIMEOUT = 0.001


def is_transient(status: int) -> bool:
    """Whether a response with this status may come out differently if asked again."""
    return status in TRANSIENT_STATUSES


def parse_retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header, or ``None`` when it says nothing usable.

    ``value`` is delay-seconds (``"120"``) or an HTTP date (``"Wed, 21 Oct 2026 07:28:00 GMT"``,
    always UTC); ``now`` is the wall clock in epoch seconds. Garbage, a negative number and a
    date that has passed are treated as absent: never a crash, never a long sleep.
    """
    text = (value or "").strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(text)
    import email.utils  # the rare date form only: importing it costs every cold start 4.7 ms

    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP dates are UTC whatever they say
        when = when.replace(tzinfo=timezone.utc)
    try:
        seconds = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    return seconds if seconds > 0 else None


class Deadline:
    """A point on the monotonic clock by which a whole operation must end, or none.

    Args:
        timeout: seconds from now, or ``None`` for no deadline.
        clock: the monotonic clock (a fake one in tests).
        start: when the operation started, on ``clock`` (default: now).
    """

    __slots__ = ("at", "clock", "timeout")

    def __init__(
        self,
        timeout: Optional[float],
        *,
        clock: Callable[[], float] = time.monotonic,
        start: Optional[float] = None,
    ) -> None:
        self.timeout = timeout
        self.clock = clock
        begun = clock() if start is None else start
        self.at = None if timeout is None else begun + timeout

    def __repr__(self) -> str:
        return f"Deadline(timeout={self.timeout!r}, remaining={self.remaining()!r})"

    def remaining(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left (negative once passed), or ``None`` without a deadline."""
        if self.at is None:
            return None
        return self.at - (self.clock() if now is None else now)

    def expired(self, now: Optional[float] = None) -> bool:
        """Whether the deadline has passed."""
        left = self.remaining(now)
        return left is not None and left <= 0

    def cap(self, seconds: float, now: Optional[float] = None) -> float:
        """``seconds``, or the time left when that is shorter (never below zero)."""
        left = self.remaining(now)
        return seconds if left is None else max(0.0, min(seconds, left))

    def cap_timeout(self, pair: tuple[float, float]) -> tuple[float, float]:
        """A (connect, read) timeout pair that cannot outlive the deadline."""
        left = self.remaining()
        if left is None:
            return pair
        left = max(MIN_TIMEOUT, left)
        return (min(pair[0], left), min(pair[1], left))


#: The deadline of the request being sent on this thread (or task), for the parts of a request
#: that ``requests`` calls back into: the auth's token exchange and its renewal after a 401.
current_deadline: ContextVar[Optional[Deadline]] = ContextVar("waylay_jobs_deadline", default=None)


@contextlib.contextmanager
def deadline_scope(deadline: Optional[Deadline]) -> Iterator[None]:
    """Make ``deadline`` the :data:`current_deadline` while the block runs."""
    token = current_deadline.set(deadline)
    try:
        yield
    finally:
        current_deadline.reset(token)


def past_deadline(retry_after: Optional[float], left: Optional[float]) -> Optional[str]:
    """Why a wait should end now, when the server asks to wait longer than the ``left``
    seconds before its deadline (waiting would only end in a timeout, later); else ``None``."""
    if retry_after is None or left is None or retry_after <= left:
        return None
    return (
        f"the server asked to retry after {retry_after:g}s, "
        f"more than the {max(left, 0.0):.1f}s left"
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How long to pause before asking again, and when to stop asking.

    Args:
        retries: how many times one request is retried after its first attempt.
        backoff: the first backoff ceiling in seconds; it doubles per attempt.
        max_backoff: the largest backoff ceiling in seconds.
        max_retry_after: a longer ``Retry-After`` is not waited for by the transport.
    """

    retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 60.0

    def backoff_time(
        self, attempt: int, rng: random.Random, *, base: Optional[float] = None
    ) -> float:
        """Full jitter: uniform below ``min(max_backoff, base * 2**attempt)``."""
        first = self.backoff if base is None else base
        ceiling = min(self.max_backoff, first * 2 ** min(attempt, 62))
        return rng.uniform(0, ceiling)

    def pause(
        self,
        attempt: int,
        retry_after: Optional[float],
        rng: random.Random,
        *,
        base: Optional[float] = None,
    ) -> float:
        """The pause before the next attempt: the backoff, with ``Retry-After`` as a floor."""
        delay = self.backoff_time(attempt, rng, base=base)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    def poll_pause(self, interval: float, retry_after: Optional[float]) -> float:
        """The pause between two polls: ``interval``, with ``Retry-After`` as a floor."""
        if retry_after is None:
            return interval
        return max(interval, min(retry_after, self.max_retry_after))

    def retry_pause(
        self,
        attempt: int,
        retry_after: Optional[float],
        rng: random.Random,
        deadline: Optional[Deadline] = None,
    ) -> Optional[float]:
        """The pause before retry ``attempt + 1`` of one request, or ``None`` to give up now.

        It gives up when the retries are spent, when the server asks for longer than
        ``max_retry_after``, and when the pause would reach the deadline (the next attempt
        would have no time left).
        """
        if attempt >= self.retries:
            return None
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        delay = self.pause(attempt, retry_after, rng)
        left = None if deadline is None else deadline.remaining()
        if left is not None and delay >= left:
            return None
        return delay


DEFAULT_POLICY = RetryPolicy()

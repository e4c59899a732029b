"""The decisions of a wait, apart from its I/O, as h11 keeps HTTP apart from sockets.

A :class:`JobWaiter` never sends a request, reads a socket or sleeps. Its driver asks
:meth:`JobWaiter.next_action` what to do (get the job, subscribe, read the next event, pause,
finish, fail), does it, and tells the waiter what happened (a job, an event, an error, the end
of the stream). The blocking ``wait_for``, the many-jobs waiter and the async Airflow trigger
are thin drivers of this one machine; its tests need a fake clock and no server.

The rules it keeps: subscribe first, then check the state with ``get`` once the subscription
has answered (a job that ended before it returns at once, and whatever happens after is
queued on the stream); trust an end seen on the stream only once ``get`` confirms it (a
``failed`` followed by a retry is not the end); after a dropped, silent or refused stream,
check again, then reconnect with the retry policy's backoff; after
``max_stream_failures`` failures in a row, poll ``get`` instead. One deadline bounds it all,
and a ``Retry-After`` longer than the time left ends the wait at once. A gateway that never
answered (every connection refused) is an error, not a wait.
"""

from __future__ import annotations

import enum
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from ._checks import check_flag, check_seconds
from ._defaults import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_STREAM_FAILURES,
    DEFAULT_POLL_INTERVAL,
)
from ._exceptions import (
    ApiError,
    AuthError,
    EventDecodeError,
    InvalidArgument,
    JobFailed,
    JobsError,
    NotFoundError,
    TransportError,
    WaitCancelled,
    WaitTimeout,
)
from ._models import TERMINAL_STATES, CloseEvent, Event, JobEvent, JobResponse, JobType
from ._policy import DEFAULT_POLICY, Deadline, RetryPolicy, is_transient, past_deadline

logger = logging.getLogger("waylay_jobs")

#: Job types probed, in this order, when a wait is given a bare id.
PROBE_ORDER: tuple[str, ...] = tuple(t.value for t in JobType)

OnEvent = Callable[[Event], Any]


@dataclass(frozen=True)
class WaitOptions:
    """The options of a wait, declared (and checked) once for every waiter and driver.

    See :meth:`JobsClient.wait_for` for what each one means. ``cancel`` is anything with
    ``is_set()`` and ``wait(seconds)``, such as a ``threading.Event``.
    """

    timeout: Optional[float] = None
    raise_on_failure: bool = True
    on_event: Optional[OnEvent] = None
    children: bool = False
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    poll_interval: float = DEFAULT_POLL_INTERVAL
    max_stream_failures: int = DEFAULT_MAX_STREAM_FAILURES
    cancel: Any = None

    def __post_init__(self) -> None:
        if self.timeout is not None:
            check_seconds("timeout", self.timeout, zero_ok=True)
        check_seconds("idle_timeout", self.idle_timeout)
        check_seconds("poll_interval", self.poll_interval, zero_ok=True)
        check_flag("raise_on_failure", self.raise_on_failure)
        check_flag("children", self.children)
        failures = self.max_stream_failures
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise InvalidArgument(
                f"expected max_stream_failures to be an int >= 1, got {failures!r}"
            )
        if self.on_event is not None and not callable(self.on_event):
            raise InvalidArgument(f"expected on_event to be callable, got {self.on_event!r}")
        if self.cancel is not None and not (
            callable(getattr(self.cancel, "is_set", None))
            and callable(getattr(self.cancel, "wait", None))
        ):
            raise InvalidArgument(
                f"expected cancel to be a threading.Event (or None), got {self.cancel!r}"
            )


@dataclass(frozen=True)
class Target:
    """The job waited for; ``type`` is ``None`` for a bare id until it is resolved."""

    type: Optional[str]
    id: str

    @property
    def label(self) -> str:
        """``build job 1234``, or ``job 1234`` while the type is unknown."""
        return f"{self.type} job {self.id}" if self.type else f"job {self.id}"


# -- what the driver is asked to do ---------------------------------------------------------


@dataclass(frozen=True)
class Get:
    """Get the job (``GET .../jobs/{type}/{id}``); feed :meth:`JobWaiter.job_received` or
    :meth:`JobWaiter.get_failed`. An open stream stays open."""

    job_type: str
    job_id: str


@dataclass(frozen=True)
class Subscribe:
    """Open the job's event stream with this read timeout; feed
    :meth:`JobWaiter.subscribed` or :meth:`JobWaiter.subscribe_failed`."""

    job_type: str
    job_id: str
    children: bool
    read_timeout: float


@dataclass(frozen=True)
class Read:
    """Read the next event of the open stream; feed :meth:`JobWaiter.event_received`,
    :meth:`JobWaiter.stream_ended` or :meth:`JobWaiter.stream_failed`."""


@dataclass(frozen=True)
class Pause:
    """Wait this many seconds (less if cancelled), then ask again."""

    seconds: float


@dataclass(frozen=True)
class Finish:
    """The wait is over: return this job."""

    job: JobResponse


@dataclass(frozen=True)
class Fail:
    """The wait is over: raise this error."""

    error: JobsError


Action = Union[Get, Subscribe, Read, Pause, Finish, Fail]
READ = Read()


class Phase(enum.Enum):
    """Where a wait stands; the stream is open only in ``READ`` and ``CHECK_OPEN``."""

    PROBE = "probing the job type"
    SUBSCRIBE = "subscribing"
    READ = "reading the stream"
    CHECK_OPEN = "checking the state, stream open"
    CHECK = "checking the state after a stream failure"
    CONFIRM_CLOSE = "confirming the end after close"
    PAUSE = "pausing"
    POLL_CHECK = "polling the state"
    OVER = "over"


def log_state(label: str, state: str, progress: Optional[float], elapsed: float) -> None:
    """The INFO line of a state change, as every waiter writes it."""
    if progress is None:
        logger.info("%s is %s (%.1fs)", label, state, elapsed)
    else:
        logger.info("%s is %s, progress %g (%.1fs)", label, state, progress, elapsed)


def error_kind(exc: JobsError) -> str:
    """``"fatal"`` (asking again will not help), ``"transient"`` or ``"unreachable"`` (no
    connection could be made at all) for an error of a request made during a wait."""
    if isinstance(exc, TransportError):
        return "unreachable" if exc.connect_failed else "transient"
    if not isinstance(exc, ApiError) or isinstance(exc, NotFoundError):
        return "fatal"
    if isinstance(exc, AuthError):
        # Raised by the token endpoint too: a 429 or 5xx there is the gateway being busy,
        # not a refusal of the credentials.
        return "transient" if is_transient(exc.status_code) else "fatal"
    # A 2xx here is a body of the wrong kind (a proxy's HTML page): worth another try.
    ok_but_wrong = 200 <= exc.status_code < 300
    return "transient" if is_transient(exc.status_code) or ok_but_wrong else "fatal"


class JobWaiter:
    """The state machine of one wait (see the module docstring).

    Args:
        target: the job; with ``type=None`` the job types are probed with ``get`` in
            :data:`PROBE_ORDER` and the first that knows the id wins.
        options: the wait's options.
        deadline: the wait's deadline; its clock is the one ``now`` is read from.
        start: when the wait started, on that clock (for the elapsed times it logs).
        rng: the jitter source.
        policy: the retry policy (backoff and ``Retry-After`` rules).
    """

    def __init__(
        self,
        target: Target,
        options: WaitOptions,
        *,
        deadline: Deadline,
        start: float,
        rng: random.Random,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.target = target
        self.options = options
        self.deadline = deadline
        self.policy = policy
        self.rng = rng
        self.started = start
        self.phase = Phase.SUBSCRIBE if target.type else Phase.PROBE
        self.last_job: Optional[JobResponse] = None
        self.last_state: Optional[str] = None
        self.polling = False
        self._probes = list(PROBE_ORDER)
        self._answered = False
        self._first_event_checked = False
        self._failures = 0
        self._attempt = 0
        self._backoff_base: Optional[float] = None
        self._resume = Phase.SUBSCRIBE
        self._retry_after: Optional[float] = None
        self._outcome: Optional[Union[Finish, Fail]] = None
        self._last_error: Optional[BaseException] = None
        self._now = self.started

    # -- what to do next ------------------------------------------------------------------

    @property
    def keeps_stream(self) -> bool:
        """Whether an open stream is still wanted; the driver closes it when not."""
        return self.phase in (Phase.READ, Phase.CHECK_OPEN)

    @property
    def over(self) -> bool:
        """Whether the wait has finished or failed."""
        return self._outcome is not None

    def next_action(self, now: float) -> Action:
        """What the driver should do now."""
        self._now = now
        if self._outcome is not None:
            return self._outcome
        if self.deadline.expired(now):
            return self._fail(self._timeout_error(), self._last_error)
        phase = self.phase
        if phase is Phase.PAUSE:
            return self._pause(now)
        if phase is Phase.PROBE:
            return Get(self._probes[0], self.target.id)
        assert self.target.type is not None
        if phase is Phase.SUBSCRIBE:
            read_timeout = self.deadline.cap(self.options.idle_timeout, now)
            return Subscribe(
                self.target.type,
                self.target.id,
                self.options.children,
                max(0.01, read_timeout),
            )
        if phase is Phase.READ:
            return READ
        return Get(self.target.type, self.target.id)

    def _pause(self, now: float) -> Action:
        retry_after, self._retry_after = self._retry_after, None
        if self._asks_too_long(retry_after, now):
            assert self._outcome is not None
            return self._outcome
        if self.polling and self._resume is Phase.POLL_CHECK:
            delay = self.policy.poll_pause(self.options.poll_interval, retry_after)
        else:
            delay = self.policy.pause(self._attempt, retry_after, self.rng, base=self._backoff_base)
            self._attempt += 1
        self.phase = self._resume
        logger.debug("%s: next step in %.2fs", self.target.label, delay)
        return Pause(self.deadline.cap(delay, now))

    # -- what happened ----------------------------------------------------------------------

    def job_received(self, job: JobResponse) -> None:
        """A ``get`` answered with the job."""
        self._answered = True
        phase = self.phase
        if phase is Phase.PROBE:
            self.target = Target(self._probes[0], self.target.id)
            logger.debug("job %s is a %s job", self.target.id, self.target.type)
        self.last_job = job
        state = str(job.job.state or "unknown")
        self._note_state(state, job.job.job.numeric_progress)
        if job.job.state in TERMINAL_STATES:
            self._finish(job)
        elif phase is Phase.PROBE:
            self.phase = Phase.SUBSCRIBE
        elif phase is Phase.CHECK_OPEN:
            self.phase = Phase.READ
        elif phase is Phase.CONFIRM_CLOSE:
            self._stream_failed(f"the stream sent close but the job is {state}")
            self._reconnect()
        elif phase is Phase.CHECK:
            self._reconnect()
        else:  # polling
            self._pause_then(Phase.POLL_CHECK)

    def get_failed(self, exc: JobsError) -> None:
        """A ``get`` raised ``exc`` (an :class:`ApiError` or :class:`TransportError`)."""
        phase = self.phase
        if phase is Phase.PROBE and isinstance(exc, NotFoundError):
            self._answered = True
            self._probes.pop(0)
            if not self._probes:
                self._fail(
                    NotFoundError(
                        f"no job with id {self.target.id!r}: probed the job types "
                        f"{', '.join(PROBE_ORDER)}",
                        status_code=404,
                        error=f"Job {self.target.id} not found",
                    )
                )
            return
        if not self._survivable(exc):
            return
        logger.warning("%s: could not check the state: %s", self.target.label, exc)
        retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        if phase is Phase.CHECK_OPEN:
            self.phase = Phase.READ  # the stream will tell, or fail and check again
        elif phase is Phase.PROBE:
            self._retry_after = retry_after
            self._pause_then(Phase.PROBE)
        elif phase in (Phase.POLL_CHECK, Phase.CONFIRM_CLOSE):
            # After close the stream has nothing more to say: ask get again, after a pause.
            self._retry_after = retry_after
            self._pause_then(phase)
        else:
            self._retry_after = retry_after if retry_after is not None else self._retry_after
            self._reconnect()

    def subscribed(self) -> None:
        """The stream is open (a 2xx ``text/event-stream``)."""
        self._answered = True
        self._first_event_checked = False
        self.phase = Phase.READ

    def subscribe_failed(self, exc: JobsError) -> None:
        """Opening the stream raised ``exc``; the state is checked before reconnecting."""
        if not self._survivable(exc, unreachable_ok=True):
            return
        self._retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        self._stream_failed(f"subscribing failed: {exc}")
        self.phase = Phase.CHECK

    def event_received(self, event: Event) -> None:
        """The stream delivered ``event``; the ``on_event`` callback sees it first."""
        self._answered = True
        if self.options.on_event is not None:
            self.options.on_event(event)
        if isinstance(event, JobEvent):
            self._note_event(event)
        if isinstance(event, CloseEvent):
            self.phase = Phase.CONFIRM_CLOSE
        elif not self._first_event_checked:
            # Subscribed (the server answered, usually with ``ack``): anything the job does
            # from now on is queued on the stream, so a get now cannot miss the end.
            self._first_event_checked = True
            self.phase = Phase.CHECK_OPEN

    def stream_retry(self, milliseconds: int) -> None:
        """The server asked for this reconnection delay with ``retry:``."""
        self._backoff_base = milliseconds / 1000.0

    def stream_ended(self) -> None:
        """The stream ended before its ``close`` event."""
        self._stream_failed("the stream ended without close")
        self.phase = Phase.CHECK

    def stream_failed(self, exc: JobsError) -> None:
        """Reading the stream raised ``exc`` (a ``StreamError`` or ``TransportError``)."""
        self._last_error = exc
        if isinstance(exc, EventDecodeError):
            # Surfaced, never dropped; the state check decides what it meant.
            logger.warning("%s: %s; checking the state with get", self.target.label, exc)
        self._stream_failed(str(exc))
        self.phase = Phase.CHECK

    def cancelled(self) -> None:
        """The wait's ``cancel`` event was set."""
        if self._outcome is None:
            self._fail(
                WaitCancelled(
                    f"waiting for {self.target.label} was cancelled; "
                    f"last known state: {self.last_state or 'unknown'}",
                    job_type=self.target.type,
                    job_id=self.target.id,
                    last_state=self.last_state,
                )
            )

    # -- internals --------------------------------------------------------------------------

    def _survivable(self, exc: JobsError, *, unreachable_ok: bool = False) -> bool:
        """Note an error of a request; fail the wait (and return False) when it is final."""
        self._last_error = exc
        kind = error_kind(exc)
        if isinstance(exc, ApiError):
            self._answered = True
        if kind == "fatal":
            self._fail(exc)
            return False
        if kind == "unreachable" and not self._answered and not unreachable_ok:
            # Nothing ever came back during this wait: a wrong URL or a gateway that is down,
            # after the transport's own retries. Say so rather than wait for nothing,
            # even when the retries used up the time: that is the more useful of the two errors.
            self._fail(exc)
            return False
        if self.deadline.expired():
            # The request was cut short by the deadline: the wait is over, not the server.
            self._fail(self._timeout_error(), exc)
            return False
        retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        return not self._asks_too_long(retry_after, None)

    def _asks_too_long(self, retry_after: Optional[float], now: Optional[float]) -> bool:
        """Fail the wait at once (and return True) when the server asks to wait past the
        deadline: waiting would only end in a timeout, later."""
        why = past_deadline(retry_after, self.deadline.remaining(now))
        if why is None:
            return False
        self._fail(self._timeout_error(why), self._last_error)
        return True

    def _stream_failed(self, why: str) -> None:
        self._failures += 1
        logger.info("%s: event stream interrupted (%s)", self.target.label, why)

    def _reconnect(self) -> None:
        if self._failures >= self.options.max_stream_failures:
            if not self.polling:
                self.polling = True
                logger.warning(
                    "%s: the event stream failed %d times in a row; "
                    "polling get every %.1fs instead",
                    self.target.label,
                    self._failures,
                    self.options.poll_interval,
                )
            self._pause_then(Phase.POLL_CHECK)
        else:
            self._pause_then(Phase.SUBSCRIBE)

    def _pause_then(self, phase: Phase) -> None:
        self._resume = phase
        self.phase = Phase.PAUSE

    def _note_event(self, event: JobEvent) -> None:
        if event.job_id == self.target.id and event.job_type == self.target.type:
            # A real event from our job: the stream works, so the backoff starts over.
            self._attempt = 0
            self._failures = 0
            self._note_state(event.state, None)
        elif self.options.children:
            self._attempt = 0
            self._failures = 0
            logger.info(
                "%s: child %s job %s is %s (%.1fs)",
                self.target.label,
                event.job_type,
                event.job_id,
                event.state,
                self._now - self.started,
            )

    def _note_state(self, state: str, progress: Optional[float]) -> None:
        if state == self.last_state:
            return
        self.last_state = state
        log_state(self.target.label, state, progress, self._now - self.started)

    def _finish(self, job: JobResponse) -> None:
        if job.job.state == "failed" and self.options.raise_on_failure:
            reason = job.job.job.failed_reason
            self._fail(
                JobFailed(
                    f"{self.target.label} failed: {reason or 'the server gave no reason'}",
                    job=job,
                    reason=reason,
                )
            )
        else:
            self._outcome = Finish(job)
            self.phase = Phase.OVER

    def _fail(self, error: JobsError, cause: Optional[BaseException] = None) -> Fail:
        if cause is not None and error.__cause__ is None and cause is not error:
            error.__cause__ = cause
        self._outcome = Fail(error)
        self.phase = Phase.OVER
        return self._outcome

    def _timeout_error(self, why: str = "") -> WaitTimeout:
        timeout = self.deadline.timeout or 0.0
        return WaitTimeout(
            f"{self.target.label} did not end within {timeout:g}s; "
            f"last known state: {self.last_state or 'unknown'}" + (f"; {why}" if why else ""),
            job_type=self.target.type,
            job_id=self.target.id,
            last_job=self.last_job,
            last_state=self.last_state,
            timeout=timeout,
        )

"""The wait machine: the decisions of a wait for one job or many, apart from its I/O.

A :class:`Waiter` never sends a request, reads a socket or sleeps, and reads the driver's clock
only once, when it starts. Its driver asks :meth:`Waiter.next_action` what to do (get or list
jobs, subscribe, read the stream for at most so long, sleep, hand over an ended job, finish,
fail), does it, and tells the machine what happened, with the time it happened (as h11 keeps
HTTP apart from sockets). The blocking driver and the asyncio driver are short loops over it;
its tests need a fake clock, no server.

One job is the N=1 case of many (a Kubernetes informer: one watch, many keys). What differs
is the :class:`Scope` of the subscription: :class:`JobScope` follows one job's own stream
(``id=``, ``children``; the server ends it with ``close``) and words its errors as
``wait_for``; :class:`TenantScope` follows the tenant's stream for many jobs, matched by
``(type, id)``. The rules they share:

* **Resolve, subscribe, then check.** Bare ids are probed type by type with ``get``. Once the
  stream has answered (its first event), every job still pending is checked (one ``list`` per
  job type where two or more share it, else ``get``): a job that ended before the subscription
  is seen at once; anything later is on the stream. Events that have already arrived are read
  before each request of a check, so that no end waits behind it.
* **Confirm every end.** An end seen on the stream (a terminal event on the tenant stream,
  ``close`` on a job's) only leads to a ``get``; a job ends when that authoritative state is
  final (a ``failed`` followed by a retry is not).
* **One retry layer.** A failed request is asked again up to ``policy.retries`` times, after
  the policy's backoff (``Retry-After`` a floor). When those are spent the subscription is
  given up: the stream is closed and the machine reconnects with backoff, and after
  ``max_stream_failures`` failures in a row it polls with its checks every ``poll_interval``.
  A dropped, silent (no event within ``idle_timeout``) or refused stream is checked, then
  reconnected, the same way.
* **One deadline.** Every read, sleep and retry is cut to the time left; a ``Retry-After``
  longer than the time left ends the wait at once. A gateway that never answered (every
  connection refused) is an error, not a wait.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn, Optional, Union

from .._checks import check_flag, check_seconds
from .._codec import parse_time
from .._defaults import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_STREAM_FAILURES, DEFAULT_POLL_INTERVAL
from .._exceptions import (
    ApiError,
    AuthError,
    EventDecodeError,
    IdleTimeout,
    InvalidArgument,
    JobFailed,
    JobsError,
    JobsFailed,
    NotFoundError,
    TransportError,
    WaitCancelled,
    WaitTimeout,
)
from .._models import (
    TERMINAL_STATES,
    CloseEvent,
    Event,
    JobEvent,
    JobResponse,
    JobsResponse,
    JobType,
)
from .._policy import DEFAULT_POLICY, Deadline, RetryPolicy, is_transient, past_deadline
from .._query import ListFilters, Params, encode_events_query, encode_list_query
from .targets import Target, target_of

logger = logging.getLogger("waylay_jobs")

Key = tuple[str, str]
OnEvent = Callable[[Event], Any]

#: Job types probed, in this order, when a wait is given a bare id.
PROBE_ORDER: tuple[str, ...] = tuple(t.value for t in JobType)
#: Job types the list endpoint filters on (its ``type`` filter has no ``cleanup``).
LISTABLE_TYPES = frozenset({"build", "deploy", "verify", "undeploy", "scale", "batch", "notify"})
#: Jobs of one type from which a check lists instead of getting each one.
LIST_FROM = 2
#: The page size asked for; the server applies its own maximum and says which in ``limit``.
LIST_LIMIT = 1000
#: Pages one check reads per job type before it asks ``get`` about the jobs not yet seen.
MAX_PAGES = 10
#: Margin taken off the oldest creation time in a ``createdAfter`` filter: clocks and the
#: millisecond precision of the wire format must not hide a job.
CREATED_MARGIN = dt.timedelta(seconds=1)
_FINAL_STATES = ("completed", "failed")


@dataclass(frozen=True)
class WaitOptions:
    """The options of a wait, declared (and checked) once for every scope and driver.

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


# -- what the driver is asked to do -----------------------------------------------------------


@dataclass(frozen=True)
class Get:
    """``GET .../jobs/{type}/{id}``; feed :meth:`Waiter.job_received` or
    :meth:`Waiter.request_failed`. An open stream stays open."""

    job_type: str
    job_id: str


@dataclass(frozen=True)
class ListJobs:
    """``GET /registry/v2/jobs/`` with these filters; feed :meth:`Waiter.listed` or
    :meth:`Waiter.request_failed`. An open stream stays open."""

    job_type: str
    states: tuple[str, ...]
    created_after: Optional[dt.datetime]
    created_before: Optional[dt.datetime]
    limit: int

    def params(self) -> Params:
        """The query string of the request."""
        filters: ListFilters = {"type": self.job_type, "limit": self.limit}
        if self.states:
            filters["state"] = list(self.states)
        if self.created_after is not None:
            filters["created_after"] = self.created_after
        if self.created_before is not None:
            filters["created_before"] = self.created_before
        return encode_list_query(**filters)


@dataclass(frozen=True)
class Subscribe:
    """Open the event stream (``type``, ``id`` and ``children`` as given; ``None`` leaves a
    filter out), its reads timing out after ``read_timeout`` seconds without a byte; feed
    :meth:`Waiter.subscribed` or :meth:`Waiter.subscribe_failed`."""

    job_type: Optional[str]
    job_id: Optional[str]
    children: Optional[bool]
    read_timeout: float

    def params(self) -> Params:
        """The query string of the request."""
        return encode_events_query(type=self.job_type, id=self.job_id, children=self.children)


@dataclass(frozen=True)
class Read:
    """Wait at most ``timeout`` seconds (0: not at all) for the next item of the open stream;
    feed :meth:`Waiter.event_received`, :meth:`Waiter.stream_ended`,
    :meth:`Waiter.stream_failed`, or :meth:`Waiter.nothing_received` when none came."""

    timeout: float


@dataclass(frozen=True)
class Sleep:
    """No stream is open and nothing is to be sent for ``seconds`` (less if cancelled)."""

    seconds: float


@dataclass(frozen=True)
class Ended:
    """A job ended (its final state confirmed): hand ``job`` over once per position."""

    job: JobResponse
    positions: tuple[int, ...]


@dataclass(frozen=True)
class Dropped:
    """A job left the wait with ``error`` (a scope that isolates jobs: one job's 404 or
    refusal is that job's outcome, not the wait's)."""

    target: Target
    error: JobsError


@dataclass(frozen=True)
class Done:
    """Every job ended: the final jobs, one per position, in the order given."""

    results: tuple[JobResponse, ...]

    def settle(self) -> tuple[JobResponse, ...]:
        """The wait's results (as :meth:`Fail.settle` raises its error)."""
        return self.results


@dataclass(frozen=True)
class Fail:
    """The wait is over: raise ``error``."""

    error: JobsError

    def settle(self) -> NoReturn:
        """Raise the wait's error."""
        raise self.error


Action = Union[Get, ListJobs, Subscribe, Read, Sleep, Ended, Dropped, Done, Fail]


def log_state(label: str, state: str, progress: Optional[float], elapsed: float) -> None:
    """The INFO line of a state change."""
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


def created_time(value: Any) -> Optional[dt.datetime]:
    """A ``createdAt`` value (wire text or ``datetime``) as an aware datetime, or ``None`` when
    it has no UTC offset: a guessed zone could put a check's ``createdAfter`` after the job."""
    if isinstance(value, str):
        value = parse_time(value)
    return value if isinstance(value, dt.datetime) and value.tzinfo else None


@dataclass
class Job:
    """One distinct job waited for (a job given twice has two positions)."""

    target: Target
    positions: list[int]
    last: Optional[JobResponse] = None
    state: Optional[str] = None
    created: Optional[dt.datetime] = None
    final: Optional[JobResponse] = None


def job_timed_out(target: Target, job: Optional[Job], timeout: float, why: str = "") -> WaitTimeout:
    """The :class:`WaitTimeout` of one job's wait (``why``: what ended it early, or "")."""
    state = job.state if job is not None else None
    return WaitTimeout(
        f"{target.label} did not end within {timeout:g}s; "
        f"last known state: {state or 'unknown'}" + (f"; {why}" if why else ""),
        job_type=target.type,
        job_id=target.id,
        last_job=job.last if job is not None else None,
        last_state=state,
        timeout=timeout,
    )


@dataclass
class _Probe:
    """A bare id whose type is being looked for: the types not yet asked."""

    job_id: str
    types: list[str] = field(default_factory=lambda: list(PROBE_ORDER))


@dataclass
class _ListPlan:
    """The pages of one check for one job type."""

    job_type: str
    unseen: set[str]
    states: tuple[str, ...]
    created_after: Optional[dt.datetime]
    created_before: Optional[dt.datetime] = None
    pages: int = 0
    seen: set[str] = field(default_factory=set)

    def action(self) -> ListJobs:
        return ListJobs(
            self.job_type, self.states, self.created_after, self.created_before, LIST_LIMIT
        )


_Request = Union[Key, _ListPlan, _Probe]


# -- the scopes ---------------------------------------------------------------------------------


class Scope:
    """What a subscription covers, and how the wait's outcome reads (see the subclasses)."""

    #: Whether ``close`` is this stream's normal end (then the jobs are checked), not a fault.
    closes: bool = False
    #: Whether a terminal event of a job waited for is confirmed with ``get`` at once.
    confirms_events: bool = True
    #: Whether events that have arrived are taken before each request of a check, so that
    #: the ends of other jobs do not wait behind it.
    drains: bool = True
    #: The requests of a check, as the log line about polling names them.
    polls_with = "list and get"
    #: Whether a job's own 404 or refusal drops that job (:class:`Dropped`) instead of
    #: failing the wait.
    isolates = False

    def subscription(self, waiter: Waiter, read_timeout: float) -> Subscribe:
        """The subscription for the jobs of ``waiter``."""
        raise NotImplementedError

    def passes(self, waiter: Waiter, event: Event, job: Optional[Job]) -> bool:
        """Whether ``on_event`` sees ``event`` (``job``: the job waited for it is about)."""
        raise NotImplementedError

    def other_job(self, waiter: Waiter, event: JobEvent) -> None:
        """An event about a job not waited for arrived."""

    def subject(self, waiter: Waiter) -> str:
        """What the wait's log lines name: the job, or the jobs pending."""
        raise NotImplementedError

    def missing(self, waiter: Waiter, target: Target, error: Optional[NotFoundError]) -> None:
        """``target`` does not exist (``error``: the 404; ``None`` for a bare id no type knows)."""
        raise NotImplementedError

    def failed(self, waiter: Waiter, failed: list[JobResponse]) -> JobsError:
        """The error when these jobs ended failed and failures raise."""
        raise NotImplementedError

    def timed_out(self, waiter: Waiter, why: str) -> WaitTimeout:
        """The error when the deadline passed (``why``: what ended the wait early, or "")."""
        raise NotImplementedError

    def cancelled(self, waiter: Waiter) -> WaitCancelled:
        """The error when the wait was cancelled."""
        raise NotImplementedError


class JobScope(Scope):
    """One job's own stream: ``type`` and ``id`` (and ``children``), ended by ``close``, after
    which the job is checked; the outcome reads as ``wait_for``'s (:class:`JobFailed`)."""

    closes = True
    confirms_events = False  # the stream's close does, and sends no extra get per attempt
    drains = False  # its one end is the close, which the check confirms anyway
    polls_with = "get"

    def _only(self, waiter: Waiter) -> tuple[Target, Optional[Job]]:
        job = next(iter(waiter.jobs.values()), None)
        if job is not None:
            return job.target, job
        return Target(None, waiter.probes[0].job_id if waiter.probes else ""), None

    def subscription(self, waiter: Waiter, read_timeout: float) -> Subscribe:
        target, _ = self._only(waiter)
        return Subscribe(target.type, target.id, waiter.options.children, read_timeout)

    def passes(self, waiter: Waiter, event: Event, job: Optional[Job]) -> bool:
        return True

    def other_job(self, waiter: Waiter, event: JobEvent) -> None:
        if waiter.options.children:
            logger.info(
                "%s: child %s job %s is %s (%.1fs)",
                self.subject(waiter),
                event.job_type,
                event.job_id,
                event.state,
                waiter.elapsed,
            )

    def subject(self, waiter: Waiter) -> str:
        return self._only(waiter)[0].label

    def missing(self, waiter: Waiter, target: Target, error: Optional[NotFoundError]) -> None:
        if error is None:
            error = NotFoundError(
                f"no job with id {target.id!r}: probed the job types {', '.join(PROBE_ORDER)}",
                status_code=404,
                error=f"Job {target.id} not found",
            )
        waiter.fail(error)

    def failed(self, waiter: Waiter, failed: list[JobResponse]) -> JobsError:
        target, _ = self._only(waiter)
        reason = failed[0].job.job.failed_reason
        return JobFailed(
            f"{target.label} failed: {reason or 'the server gave no reason'}",
            job=failed[0],
            reason=reason,
        )

    def timed_out(self, waiter: Waiter, why: str) -> WaitTimeout:
        target, job = self._only(waiter)
        return job_timed_out(target, job, waiter.deadline.timeout or 0.0, why)

    def cancelled(self, waiter: Waiter) -> WaitCancelled:
        target, job = self._only(waiter)
        state = job.state if job is not None else None
        return WaitCancelled(
            f"waiting for {target.label} was cancelled; last known state: {state or 'unknown'}",
            job_type=target.type,
            job_id=target.id,
            last_state=state,
        )


class TenantScope(Scope):
    """The tenant's stream for many jobs (``type`` when all share one, no ``id``), matched by
    ``(type, id)``; it has no ``close``. The outcome reads as ``wait_all``'s
    (:class:`JobsFailed` once every job has ended, the jobs pending in a timeout)."""

    def subscription(self, waiter: Waiter, read_timeout: float) -> Subscribe:
        types = {key[0] for key in waiter.jobs}
        only = types.pop() if len(types) == 1 and not waiter.options.children else None
        return Subscribe(only, None, None, read_timeout)

    def passes(self, waiter: Waiter, event: Event, job: Optional[Job]) -> bool:
        return job is not None or not isinstance(event, JobEvent) or waiter.options.children

    def subject(self, waiter: Waiter) -> str:
        return f"{len(waiter.pending())} pending jobs"

    def missing(self, waiter: Waiter, target: Target, error: Optional[NotFoundError]) -> None:
        waiter.missing.append(target.label if target.type else f"job {target.id} (of no job type)")

    def failed(self, waiter: Waiter, failed: list[JobResponse]) -> JobsError:
        first = failed[0]
        reason = first.job.job.failed_reason or "the server gave no reason"
        label = Target(str(first.job.type), str(first.job.job.id)).label
        return JobsFailed(
            f"{len(failed)} of the {len(waiter.jobs)} jobs failed; the first, {label}: {reason}",
            failed=failed,
            results=waiter.results(),
        )

    def timed_out(self, waiter: Waiter, why: str) -> WaitTimeout:
        timeout = waiter.deadline.timeout or 0.0
        pending = waiter.pending()
        bare = waiter.bare_positions
        positions = sorted([p for job in pending for p in job.positions] + bare)
        labels = [f"{job.target.label} ({job.state or 'unknown'})" for job in pending]
        labels += [f"job {probe.job_id} (type not found yet)" for probe in waiter.probes]
        shown = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
        first = pending[0] if pending else None
        return WaitTimeout(
            f"{len(positions)} of the {waiter.count} jobs did not end within "
            f"{timeout:g}s: {shown}" + (f"; {why}" if why else ""),
            job_type=first.target.type if first else None,
            job_id=first.target.id if first else (waiter.probes[0].job_id if waiter.probes else ""),
            last_job=first.last if first else None,
            last_state=first.state if first else None,
            timeout=timeout,
            pending=[waiter.items[p] for p in positions],
        )

    def cancelled(self, waiter: Waiter) -> WaitCancelled:
        pending = waiter.pending()
        first = pending[0] if pending else None
        return WaitCancelled(
            f"waiting for {waiter.count} jobs was cancelled; {len(pending)} had not ended",
            job_type=first.target.type if first else None,
            job_id=first.target.id if first else "",
            last_state=first.state if first else None,
        )


class SharedScope(TenantScope):
    """The tenant's whole stream for the jobs of many waiters that come and go
    (:meth:`Waiter.add`, :meth:`Waiter.remove`): Airflow's triggers in one event loop. It
    filters on no type (a job of any type may join), and a job's own error is that job's
    outcome (:class:`Dropped`), not the others'."""

    isolates = True

    def subscription(self, waiter: Waiter, read_timeout: float) -> Subscribe:
        return Subscribe(None, None, None, read_timeout)

    def missing(self, waiter: Waiter, target: Target, error: Optional[NotFoundError]) -> None:
        assert error is not None  # a shared wait is given types, never bare ids
        waiter.drop((str(target.type), target.id), error)


# -- the machine --------------------------------------------------------------------------------

#: What a driver's stream reader hands over when the stream has ended (see :meth:`Waiter.read`).
STREAM_END = object()

#: What a request of the wait brings back (see :meth:`Waiter.answered`).
Answer = Union[JobResponse, JobsResponse, ApiError, TransportError]


class Waiter:
    """The state machine of one wait (see the module docstring), starting now on ``clock``.

    Args:
        items: the jobs as the caller gave them (any designation of a job; kept for
            :attr:`WaitTimeout.pending`). A bad designation fails here, before any I/O; a bare
            id is probed with ``get`` in :data:`PROBE_ORDER`, the first type that knows it wins.
        options: the wait's options.
        scope: what the subscription covers (:class:`JobScope` for one job's stream).
        clock: the driver's clock, read once here (the elapsed times it logs count from then;
            every later input brings its own time).
        policy: the retry policy: the client's, so that one layer retries.
        deadline: the wait's deadline on ``clock``; without one, ``options.timeout`` from now.
        rng: the jitter source.
    """

    def __init__(
        self,
        items: Sequence[Any],
        options: WaitOptions,
        scope: Scope,
        clock: Callable[[], float],
        policy: RetryPolicy = DEFAULT_POLICY,
        deadline: Optional[Deadline] = None,
        rng: Optional[random.Random] = None,
    ) -> None:
        targets = [target_of(item) for item in items]
        start = clock()
        # By position; a dict, so that the jobs that leave a long shared wait are forgotten.
        self.items = dict(enumerate(items))
        self.options = options
        self.scope = scope
        self.deadline = deadline or Deadline(options.timeout, clock=clock, start=start)
        self.policy = policy
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.started = start
        self.count = len(targets)
        self.jobs: dict[Key, Job] = {}
        self.probes: collections.deque[_Probe] = collections.deque()
        self.missing: list[str] = []
        self.polling = False
        self._bare: dict[str, list[int]] = {}
        for position, target in enumerate(targets):
            if target.type is None:
                if target.id not in self._bare:
                    self.probes.append(_Probe(target.id))
                self._bare.setdefault(target.id, []).append(position)
            else:
                self._job_at((target.type, target.id), position)
        self._now = start
        self._ended = 0
        self._reports: collections.deque[Key] = collections.deque()
        self._dropped: collections.deque[Dropped] = collections.deque()
        self._gets: collections.deque[Key] = collections.deque()
        self._lists: collections.deque[_ListPlan] = collections.deque()
        self._inflight: Optional[_Request] = None
        self._checking = False
        self._first_check_done = False
        self._drained = False
        self._open = False  # a stream is subscribed
        self._live = False  # ... and has sent its first event
        self._closed_by_server = False
        self._last_event_at = start
        self._answered = False
        self._failures = 0
        self._attempt = 0
        self._repeats = 0
        self._hold: Optional[float] = None  # seconds to wait before the next step
        self._until: Optional[float] = None  # ... counted from the action that waits them
        self._backoff_base: Optional[float] = None
        self._retry_after: Optional[float] = None
        self._outcome: Optional[Union[Done, Fail]] = None
        self._last_error: Optional[BaseException] = None

    # -- views ------------------------------------------------------------------------------

    @property
    def keeps_stream(self) -> bool:
        """Whether an open stream is still wanted; the driver closes it when not."""
        return self._open and self._outcome is None

    @property
    def over(self) -> bool:
        """Whether the wait has finished or failed."""
        return self._outcome is not None

    @property
    def elapsed(self) -> float:
        """Seconds since the wait started, as of the last input."""
        return self._now - self.started

    @property
    def bare_positions(self) -> list[int]:
        """The positions of the bare ids not resolved yet."""
        return [p for probe in self.probes for p in self._bare[probe.job_id]]

    def pending(self) -> list[Job]:
        """The jobs that have not ended, in the order first given."""
        waiting = (job for job in self.jobs.values() if job.final is None)
        return sorted(waiting, key=lambda job: job.positions[0])

    def results(self) -> tuple[JobResponse, ...]:
        """The final job of every position (once every job has ended)."""
        placed = sorted(
            ((position, job.final) for job in self.jobs.values() for position in job.positions),
            key=lambda pair: pair[0],
        )
        finals = tuple(final for _, final in placed if final is not None)
        assert len(finals) == len(placed)
        return finals

    # -- what to do next --------------------------------------------------------------------

    def next_action(self, now: float) -> Action:
        """What the driver should do now."""
        self._now = now
        if self._outcome is not None:
            return self._outcome
        if self._dropped:
            return self._dropped.popleft()
        while self._reports and self._first_check_done:
            reported = self.jobs.get(self._reports.popleft())
            if reported is not None and reported.final is not None:  # else it was removed
                return Ended(reported.final, tuple(reported.positions))
        if self.deadline.expired(now):
            last = self._last_error
            if isinstance(last, TransportError) and last.connect_failed and not self._answered:
                # Nothing ever came back during this wait: a wrong URL or a gateway that is
                # down. Say so rather than time out: the more useful error.
                return self.fail(last)
            return self.fail(self.scope.timed_out(self, ""), last)
        if not self.probes and self._first_check_done and self._ended == len(self.jobs):
            return self._finish()
        if self._hold is not None:
            self._until, self._hold = now + self._hold, None
        if self._until is not None:
            if now < self._until:
                return self._wait(self._until - now, now)
            self._until = None
        if self.probes:
            self._inflight = probe = self.probes[0]
            return Get(probe.types[0], probe.job_id)
        if self._gets or self._lists:
            if self._open and self.scope.drains and not self._drained:
                self._drained = True  # first take what the stream has already brought
                return Read(0.0)
            self._drained = False
            return self._send_next()
        if self._open:
            return Read(self._read_timeout(now))
        if self.polling:
            self._start_check()
            return self.next_action(now)
        read_timeout = max(0.01, self.deadline.cap(self.options.idle_timeout, now))
        return self.scope.subscription(self, read_timeout)

    def _wait(self, seconds: float, now: float) -> Union[Read, Sleep]:
        if self._open:  # read what comes meanwhile; ask again when the time is up
            return Read(min(seconds, self._read_timeout(now)))
        self._until = None  # a sleep is the whole wait (the driver cuts it only to cancel)
        return Sleep(self.deadline.cap(seconds, now))

    def _read_timeout(self, now: float) -> float:
        idle_left = self._last_event_at + self.options.idle_timeout - now
        return max(0.0, self.deadline.cap(idle_left, now))

    def _send_next(self) -> Union[Get, ListJobs]:
        if self._gets:
            key = self._gets.popleft()
            self._inflight = key
            return Get(*key)
        plan = self._lists.popleft()
        self._inflight = plan
        return plan.action()

    # -- what happened: requests --------------------------------------------------------------

    def job_received(self, now: float, response: JobResponse) -> None:
        """A ``get`` answered with the job."""
        self._heard(now)
        request, self._inflight = self._inflight, None
        if isinstance(request, _Probe):
            self._resolved(request, response)
            return
        assert isinstance(request, tuple), request
        job = self.jobs.get(request)
        if job is not None:  # else it was removed while the get was under way
            self._learn(job, response)
        self._after_request()

    def listed(self, now: float, response: JobsResponse) -> None:
        """A ``list`` answered; its items are matched by id to the jobs of the check."""
        self._heard(now)
        plan, self._inflight = self._inflight, None
        assert isinstance(plan, _ListPlan), plan
        plan.pages += 1
        oldest: Optional[dt.datetime] = None
        fresh = 0
        for item in response.jobs:
            if item.id is None or str(item.type) != plan.job_type:
                continue
            created = created_time(item.created_at)
            if created is not None and (oldest is None or created < oldest):
                oldest = created
            if item.id not in plan.seen:
                plan.seen.add(item.id)
                fresh += 1
            if item.id not in plan.unseen:
                continue
            plan.unseen.discard(item.id)
            job = self.jobs.get((plan.job_type, item.id))
            if job is None or job.final is not None:
                continue
            if created is not None:
                job.created = created
            state = str(item.state or "unknown")
            self._note_state(job, state, None)
            if state in TERMINAL_STATES:
                self._queue_get(job)  # the final job, and the authoritative state
        applied = response.limit if response.limit else LIST_LIMIT
        full = len(response.jobs) >= applied
        if plan.unseen and full and fresh and oldest is not None and plan.pages < MAX_PAGES:
            # Newest first and no cursor: the next page is what was created before this one's
            # oldest (plus a millisecond: the wire's precision; the overlap is matched away).
            plan.created_before = oldest + dt.timedelta(milliseconds=1)
            self._lists.appendleft(plan)
        elif plan.unseen and (full or not plan.states):
            # Not on the pages read (more than we read), or not listed at all: ask each one.
            self._queue_gets(plan)
        # Otherwise every final job of the type and time was on the pages: the rest are pending.
        self._after_request()

    def request_failed(self, now: float, exc: JobsError) -> None:
        """The ``get`` or ``list`` asked for raised ``exc`` (an :class:`ApiError` or a
        :class:`TransportError`)."""
        self._failed_at(now, exc)
        request, self._inflight = self._inflight, None
        assert request is not None
        kind = error_kind(exc)
        listing = isinstance(request, _ListPlan)
        # Refused credentials concern every job; any other refusal, only the job asked about.
        isolated = kind == "fatal" and not isinstance(exc, AuthError)
        if self.scope.isolates and isolated and isinstance(request, tuple):
            self.drop(request, exc)
            self._after_request()
            return
        if isinstance(exc, NotFoundError) and self._missing(request, exc):
            return
        if kind == "fatal" and (not listing or isinstance(exc, AuthError)):
            self.fail(exc)
            return
        if self.deadline.expired(now):
            return  # the request was cut short by the deadline: next_action ends the wait
        # Nothing ever came back during this wait: a wrong URL or a gateway that is down.
        never_answered = kind == "unreachable" and not self._answered
        retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        if self._asks_too_long(retry_after, request):
            return
        what = self._label(request)
        if self._repeats < self.policy.retries and kind != "fatal":
            delay = self.policy.pause(self._repeats, retry_after, self.rng)
            self._repeats += 1
            logger.warning("%s: %s; asking again in %.2fs", what, exc, delay)
            self._requeue(request)
            self._hold = delay
            return
        self._repeats = 0
        if never_answered:
            self.fail(exc)
        elif isinstance(request, _ListPlan):
            logger.info("listing %s jobs failed (%s); asking one by one", request.job_type, exc)
            self._queue_gets(request)
            self._after_request()
        elif self._open and self.scope.closes:
            # A job's own stream: it tells what happens, and its close is checked anyway.
            logger.warning("%s: could not check the state: %s", what, exc)
            self._after_request()
        else:
            logger.warning("%s: could not check the state: %s", what, exc)
            self._requeue(request)
            self._hold = (
                self.policy.poll_pause(self.options.poll_interval, retry_after)
                if self.polling
                else self._backoff(retry_after)
            )

    def _missing(self, request: _Request, exc: NotFoundError) -> bool:
        """Handle a 404 that means a job does not exist; whether it did."""
        self._repeats = 0
        if isinstance(request, _Probe):
            request.types.pop(0)
            if request.types:
                return True  # the next type is asked
            self.probes.popleft()
            self.scope.missing(self, Target(None, request.job_id), None)
            self._resolution_done()
            return True
        if self._first_check_done or not isinstance(request, tuple):
            return False  # deleted during the wait: fatal, as any 404
        job = self.jobs.pop(request, None)
        if job is None:
            return True  # removed while the get was under way
        self.scope.missing(self, job.target, exc)
        self._after_request()
        return True

    # -- what happened: the stream --------------------------------------------------------------

    def subscribed(self, now: float) -> None:
        """The stream is open (a 2xx ``text/event-stream``)."""
        self._heard(now)
        self._open = True
        self._live = False
        self._closed_by_server = False
        self._last_event_at = now

    def subscribe_failed(self, now: float, exc: JobsError) -> None:
        """Opening the stream raised ``exc``; the jobs are checked before reconnecting."""
        self._failed_at(now, exc)
        if error_kind(exc) == "fatal":
            self.fail(exc)
            return
        if self.deadline.expired(now):
            return  # next_action ends the wait
        self._retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        self._stream_failed(f"subscribing failed: {exc}")

    def event_received(self, now: float, event: Event) -> None:
        """The stream delivered ``event``; ``on_event`` sees it first (as the scope allows)."""
        self._heard(now)
        self._last_event_at = now
        self._drained = False  # more may be waiting: look again before the next request
        job: Optional[Job] = None
        if isinstance(event, JobEvent):
            job = self.jobs.get((str(event.job_type), str(event.job_id)))
            # Any job event means the stream works: the backoff starts over.
            self._failures = 0
            self._attempt = 0
        if self.options.on_event is not None and self.scope.passes(self, event, job):
            self.options.on_event(event)
        if isinstance(event, CloseEvent):
            if self.scope.closes:
                self._closed_by_server = True
                self._stream_closed()
            else:  # a server that closes the tenant stream has ended it
                self._stream_failed("the stream sent close")
            return
        if isinstance(event, JobEvent):
            if job is None:
                self.scope.other_job(self, event)
            elif job.final is None:
                state = str(event.state)
                self._note_state(job, state, None)
                if state in TERMINAL_STATES and self.scope.confirms_events:
                    self._queue_get(job)
        if not self._live:
            # The server answered: from now on every change is queued on the stream, so a
            # check now cannot miss an end.
            self._live = True
            self._start_check()

    def answered(self, now: float, answer: Answer) -> None:
        """What a :class:`Get` or :class:`ListJobs` brought back: the job, the list, or the
        :class:`ApiError` / :class:`TransportError` it raised."""
        if isinstance(answer, JobResponse):
            self.job_received(now, answer)
        elif isinstance(answer, JobsResponse):
            self.listed(now, answer)
        else:
            self.request_failed(now, answer)

    def read(self, now: float, item: object, retry: Optional[int] = None) -> None:
        """What a :class:`Read` brought back: an :class:`Event`, ``None`` (nothing within its
        time), :data:`STREAM_END`, or what reading raised; ``retry`` is the stream's ``retry:``
        field, when it sent one."""
        if retry is not None:
            self.stream_retry(retry)
        if item is None:
            self.nothing_received(now)
        elif item is STREAM_END:
            self.stream_ended(now)
        elif isinstance(item, JobsError):
            self.stream_failed(now, item)
        elif isinstance(item, BaseException):
            raise item  # not the stream's doing: a bug, surfaced where it can be seen
        else:
            assert isinstance(item, Event), item
            self.event_received(now, item)

    def nothing_received(self, now: float) -> None:
        """A :class:`Read` waited its time and nothing came."""
        self._now = now
        idle = self.options.idle_timeout
        if self._open and now - self._last_event_at >= idle:
            error = IdleTimeout(
                f"expected an event (a keep-alive at least) within the idle timeout of "
                f"{idle:g}s, got none"
            )
            self._last_error = error
            self._stream_failed(str(error))

    def stream_retry(self, milliseconds: int) -> None:
        """The server asked for this reconnection delay with ``retry:``."""
        self._backoff_base = milliseconds / 1000.0

    def stream_ended(self, now: float) -> None:
        """The stream ended before its ``close`` event."""
        self._now = now
        self._stream_failed(
            "the stream ended without close" if self.scope.closes else "the stream ended"
        )

    def stream_failed(self, now: float, exc: JobsError) -> None:
        """Reading the stream raised ``exc`` (a ``StreamError`` or ``TransportError``)."""
        self._failed_at(now, exc)
        if isinstance(exc, EventDecodeError):
            # Surfaced, never dropped; the check decides what it meant.
            logger.warning("%s: %s; checking the state", self.scope.subject(self), exc)
        self._stream_failed(str(exc))

    def cancelled(self, now: float) -> None:
        """The wait's ``cancel`` event was set."""
        self._now = now
        if self._outcome is None:
            self.fail(self.scope.cancelled(self))

    def add(self, now: float, target: Target) -> None:
        """A job joins the wait (a typed target; one already waited for is not added twice).
        It is checked with ``get`` as soon as the stream is live, or with the next check."""
        self._now = now
        assert target.type is not None, target
        key = (target.type, target.id)
        if key in self.jobs:
            return
        job = self._job_at(key, self.count)
        self.items[self.count] = target
        self.count += 1
        if self._live or self.polling:
            # Every change from now on is on the live stream: one get sees an earlier end.
            self._queue_get(job)

    def remove(self, key: Key) -> None:
        """A job leaves the wait, whatever its state; what is under way for it is ignored."""
        job = self.jobs.pop(key, None)
        if job is None:
            return
        for position in job.positions:
            del self.items[position]
        if job.final is not None:
            self._ended -= 1
        if key in self._gets:
            self._gets.remove(key)
        self._after_request()

    def drop(self, key: Key, error: JobsError) -> None:
        """End the wait for one job with ``error`` (see :attr:`Scope.isolates`)."""
        job = self.jobs.get(key)
        if job is not None:
            self.remove(key)
            self._dropped.append(Dropped(job.target, error))

    def fail(self, error: JobsError, cause: Optional[BaseException] = None) -> Fail:
        """End the wait with ``error`` (``cause`` chained unless it has one)."""
        if cause is not None and error.__cause__ is None and cause is not error:
            error.__cause__ = cause
        self._outcome = Fail(error)
        self._open = False
        return self._outcome

    # -- internals ------------------------------------------------------------------------------

    def _heard(self, now: float) -> None:
        self._now = now
        self._answered = True

    def _failed_at(self, now: float, exc: JobsError) -> None:
        self._now = now
        self._last_error = exc
        if isinstance(exc, ApiError):  # an error answer is an answer: the gateway is there
            self._answered = True

    def _label(self, request: _Request) -> str:
        if isinstance(request, _Probe):
            return f"job {request.job_id}"
        if isinstance(request, _ListPlan):
            return f"{request.job_type} jobs"
        job = self.jobs.get(request)
        return job.target.label if job is not None else "a job no longer waited for"

    def _job_at(self, key: Key, position: int) -> Job:
        job = self.jobs.get(key)
        if job is None:
            job = self.jobs[key] = Job(Target(*key), [])
        job.positions.append(position)
        return job

    def _resolved(self, probe: _Probe, response: JobResponse) -> None:
        self.probes.popleft()
        self._repeats = 0
        key = (probe.types[0], probe.job_id)
        logger.debug("job %s is a %s job", probe.job_id, probe.types[0])
        job: Optional[Job] = None
        for position in self._bare[probe.job_id]:
            job = self._job_at(key, position)
        assert job is not None
        job.positions.sort()
        self._learn(job, response)
        self._resolution_done()

    def _resolution_done(self) -> None:
        if not self.probes and not self.pending() and self._outcome is None:
            self._check_done()  # nothing to watch: every job ended before we looked

    def _learn(self, job: Job, response: JobResponse) -> None:
        self._repeats = 0
        if job.final is not None:
            return
        job.last = response
        job.created = created_time(response.job.created_at) or job.created
        state = str(response.job.state or "unknown")
        self._note_state(job, state, response.job.job.numeric_progress)
        if response.job.state in TERMINAL_STATES:
            job.final = response
            self._ended += 1
            self._reports.append((str(job.target.type), job.target.id))

    def _note_state(self, job: Job, state: str, progress: Optional[float]) -> None:
        if state != job.state:
            job.state = state
            log_state(job.target.label, state, progress, self.elapsed)

    def _queue_get(self, job: Job) -> None:
        key = (str(job.target.type), job.target.id)
        if key not in self._gets and job.final is None:
            self._gets.append(key)

    def _queue_gets(self, plan: _ListPlan) -> None:
        unseen = [self.jobs.get((plan.job_type, job_id)) for job_id in plan.unseen]
        for job in sorted(filter(None, unseen), key=lambda job: job.positions[0]):
            self._queue_get(job)

    def _requeue(self, request: _Request) -> None:
        if isinstance(request, _ListPlan):
            self._lists.appendleft(request)
        elif isinstance(request, tuple):
            self._gets.appendleft(request)
        # a probe stays first in line until it is answered

    def _start_check(self) -> None:
        """Check every pending job: a list per type where it pays, else a get each."""
        self._checking = True
        self._lists.clear()  # this check covers whatever an earlier one had left to list
        by_type: dict[str, list[Job]] = {}
        for job in self.pending():
            by_type.setdefault(str(job.target.type), []).append(job)
        for job_type, jobs in by_type.items():
            if job_type in LISTABLE_TYPES and len(jobs) >= LIST_FROM:
                # The first check must see every job (it proves they exist); later ones only
                # look for ends, among the jobs created since the oldest one pending.
                states = _FINAL_STATES if self._first_check_done else ()
                created = [job.created for job in jobs]
                after = None
                if states and all(created):
                    after = min(c for c in created if c is not None) - CREATED_MARGIN
                unseen = {job.target.id for job in jobs}
                self._lists.append(_ListPlan(job_type, unseen, states, after))
            else:
                for job in jobs:
                    self._queue_get(job)
        self._after_request()

    def _after_request(self) -> None:
        if self._checking and not self._gets and not self._lists and self._inflight is None:
            self._check_done()

    def _check_done(self) -> None:
        self._checking = False
        if not self._first_check_done:
            self._first_check_done = True
            if self.missing:
                names = ", ".join(self.missing)
                self.fail(
                    NotFoundError(
                        f"{len(self.missing)} of the {self.count} jobs do not exist: {names}",
                        status_code=404,
                        error=f"not found: {names}",
                    )
                )
                return
        if self._open or not self.pending():
            return
        if self._closed_by_server:
            self._closed_by_server = False
            job = self.pending()[0]
            self._failures += 1
            logger.info(
                "%s: event stream interrupted (the stream sent close but the job is %s)",
                self.scope.subject(self),
                job.state or "unknown",
            )
        self._next_round()

    def _asks_too_long(self, retry_after: Optional[float], request: Optional[_Request]) -> bool:
        """Fail the wait at once (and return True) when the server asks to wait past the
        deadline: waiting would only end in a timeout, later."""
        why = past_deadline(retry_after, self.deadline.remaining(self._now))
        if why is None:
            return False
        if isinstance(request, _Probe) and isinstance(self.scope, TenantScope):
            why = f"finding the type of job {request.job_id}: {why}"
        self.fail(self.scope.timed_out(self, why), self._last_error)
        return True

    def _stream_closed(self) -> None:
        """The stream is over: check the jobs (the driver closes the connection)."""
        self._open = False
        self._live = False
        self._start_check()

    def _stream_failed(self, why: str, *, check: bool = True) -> None:
        self._failures += 1
        logger.info("%s: event stream interrupted (%s)", self.scope.subject(self), why)
        self._open = False
        self._live = False
        if check:
            # Requests queued while the stream was open are part of the check that follows.
            self._start_check()

    def _backoff(self, retry_after: Optional[float] = None) -> float:
        """The reconnection backoff (it grows until an event shows the stream works)."""
        delay = self.policy.pause(self._attempt, retry_after, self.rng, base=self._backoff_base)
        self._attempt += 1
        return delay

    def _next_round(self) -> None:
        """Pause, then subscribe again (or, once the stream has failed too often, poll)."""
        retry_after, self._retry_after = self._retry_after, None
        if self._asks_too_long(retry_after, None):
            return
        if self._failures >= self.options.max_stream_failures:
            if not self.polling:
                self.polling = True
                logger.warning(
                    "%s: the event stream failed %d times in a row; polling %s every %.1fs instead",
                    self.scope.subject(self),
                    self._failures,
                    self.scope.polls_with,
                    self.options.poll_interval,
                )
            delay = self.policy.poll_pause(self.options.poll_interval, retry_after)
        else:
            delay = self._backoff(retry_after)
        logger.debug("%s: next step in %.2fs", self.scope.subject(self), delay)
        self._hold = delay

    def _finish(self) -> Action:
        finals = self.results()
        failed: list[JobResponse] = []
        for job in sorted(self.jobs.values(), key=lambda job: job.positions[0]):
            assert job.final is not None
            if job.final.job.state == "failed":
                failed.append(job.final)
        if failed and self.options.raise_on_failure:
            return self.fail(self.scope.failed(self, failed))
        self._outcome = Done(finals)
        self._open = False
        return self._outcome

"""The decisions of a wait for many jobs over one event stream, apart from its I/O.

The model is a Kubernetes informer: one watch for every change, demultiplexed by key, and a
list to (re)learn the state whenever the watch may have missed something. A
:class:`ManyWaiter` never sends a request or sleeps; its driver asks :meth:`ManyWaiter.next_action`
and reports back, as for :class:`~waylay_jobs._waiting.JobWaiter` (which it reuses to find the
type of a bare id).

The rules it keeps, for every job at once:

* **One subscription**: the tenant's event stream (no ``id``; ``type`` when every job shares
  one), demultiplexed by ``(type, id)``. Events of other jobs (children included) never end a
  job waited for.
* **Subscribe, then check**: once the stream has answered (its first event), the state of every
  job still pending is checked: one ``list`` per job type when two or more jobs share it (the
  pages are matched by id; a job the pages do not show is asked with ``get``), else ``get``.
  A job that ended before the subscription is reported at once; anything later is on the stream.
  The first check also proves that every job exists: the ones that do not raise one
  :class:`NotFoundError` naming them all, before any job is reported.
* **Confirm every end**: a ``completed`` or ``failed`` event only queues a ``get``; the job is
  reported when that authoritative state is final (a ``failed`` followed by a retry is not).
* **Faults**: a dropped, silent (idle timeout) or refused stream makes it check the jobs still
  pending (``list`` filtered on the final states and the jobs' creation time), then reconnect
  with the retry policy's backoff; after ``max_stream_failures`` failures in a row it polls with
  those same checks every ``poll_interval``. One deadline bounds everything.
"""

from __future__ import annotations

import collections
import datetime as dt
import enum
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from ._exceptions import (
    ApiError,
    AuthError,
    EventDecodeError,
    JobsError,
    JobsFailed,
    NotFoundError,
    WaitCancelled,
    WaitTimeout,
)
from ._models import (
    TERMINAL_STATES,
    CloseEvent,
    Event,
    JobEvent,
    JobResponse,
    JobsResponse,
)
from ._policy import DEFAULT_POLICY, Deadline, RetryPolicy, past_deadline
from ._waiting import (
    READ,
    Fail,
    Finish,
    Get,
    JobWaiter,
    Pause,
    Read,
    Target,
    WaitOptions,
    error_kind,
    log_state,
)

logger = logging.getLogger("waylay_jobs")

Key = tuple[str, str]

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


# -- what the driver is asked to do (besides Get, Read, Pause and Fail of ``_waiting``) --------


@dataclass(frozen=True)
class SubscribeAll:
    """Open the tenant's event stream (``type`` if given, no ``id``) with this read timeout;
    feed :meth:`ManyWaiter.subscribed` or :meth:`ManyWaiter.subscribe_failed`."""

    job_type: Optional[str]
    read_timeout: float


@dataclass(frozen=True)
class ListJobs:
    """List jobs (``GET /registry/v2/jobs/``) with these filters; feed
    :meth:`ManyWaiter.listed` or :meth:`ManyWaiter.list_failed`. An open stream stays open."""

    job_type: str
    states: tuple[str, ...]
    created_after: Optional[dt.datetime]
    created_before: Optional[dt.datetime]
    limit: int


@dataclass(frozen=True)
class ReadReady:
    """Read the next event only if it has already arrived, without waiting: feed what
    :class:`Read` feeds, or :meth:`ManyWaiter.nothing_ready`. Asked between the requests of a
    check, so that the ends already on the stream are not held up behind them."""


READ_READY = ReadReady()


@dataclass(frozen=True)
class Ended:
    """A job ended (its final state confirmed): hand ``job`` over once per position."""

    job: JobResponse
    positions: tuple[int, ...]


@dataclass(frozen=True)
class AllEnded:
    """Every job ended: the final jobs, one per position, in the order given."""

    results: tuple[JobResponse, ...]


ManyAction = Union[Get, ListJobs, SubscribeAll, Read, ReadReady, Pause, Ended, AllEnded, Fail]


class ManyPhase(enum.Enum):
    """Where a many-jobs wait stands; the stream is open only in ``OPEN``."""

    RESOLVE = "finding the type of bare ids"
    SUBSCRIBE = "subscribing"
    OPEN = "reading the stream"
    CHECK = "checking the jobs after a stream failure"
    POLL = "polling"
    PAUSE = "pausing"
    OVER = "over"


@dataclass
class _Job:
    """One distinct job waited for (a job given twice has two positions)."""

    target: Target
    positions: list[int]
    last: Optional[JobResponse] = None
    state: Optional[str] = None
    created: Optional[dt.datetime] = None
    final: Optional[JobResponse] = None


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


def created_time(value: Any) -> Optional[dt.datetime]:
    """A ``createdAt`` value (wire text or ``datetime``) as an aware datetime, or ``None``."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # fromisoformat before 3.11 wants 3 or 6 digits of fraction
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction = (rest[:digits] + "000000")[:6]
        text = f"{head}.{fraction}{rest[digits:]}"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


class ManyWaiter:
    """The state machine of one wait for many jobs (see the module docstring).

    Args:
        items: the jobs as the caller gave them (kept for :attr:`WaitTimeout.pending`).
        targets: ``items`` as :class:`Target` s, in the same order.
        options: the wait's options (``raise_on_failure=False`` never raises
            :class:`JobsFailed`; ``children=True`` passes every job event of the stream to
            ``on_event``).
        deadline, start, rng, policy: as for :class:`JobWaiter`.
    """

    def __init__(
        self,
        items: Sequence[Any],
        targets: Sequence[Target],
        options: WaitOptions,
        *,
        deadline: Deadline,
        start: float,
        rng: random.Random,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.items = list(items)
        self.options = options
        self.deadline = deadline
        self.policy = policy
        self.rng = rng
        self.started = start
        self._now = start
        self.jobs: dict[Key, _Job] = {}
        self._ended = 0  # jobs with a final state: the wait is over when all have one
        self.polling = False
        self.phase = ManyPhase.RESOLVE
        self._count = len(targets)
        self._bare: dict[str, list[int]] = {}
        for position, target in enumerate(targets):
            if target.type is None:
                self._bare.setdefault(target.id, []).append(position)
            else:
                self._job_at((target.type, target.id), position)
        self._probes: collections.deque[JobWaiter] = collections.deque(
            JobWaiter(
                Target(None, job_id),
                WaitOptions(timeout=options.timeout, raise_on_failure=False),
                deadline=deadline,
                start=start,
                rng=rng,
                policy=policy,
            )
            for job_id in self._bare
        )
        self._missing: list[str] = []
        self._gets: collections.deque[Key] = collections.deque()
        self._lists: collections.deque[_ListPlan] = collections.deque()
        self._inflight: Union[JobWaiter, Key, _ListPlan, None] = None
        self._reports: collections.deque[Key] = collections.deque()
        self._checking = False
        self._first_check_done = False
        self._first_event_seen = False
        self._drained = False
        self._answered = False
        self._failures = 0
        self._attempt = 0
        self._get_attempt = 0
        self._get_pause: Optional[float] = None
        self._backoff_base: Optional[float] = None
        self._retry_after: Optional[float] = None
        self._resume = ManyPhase.SUBSCRIBE
        self._outcome: Optional[Union[AllEnded, Fail]] = None
        self._last_error: Optional[BaseException] = None

    # -- what to do next ------------------------------------------------------------------

    @property
    def keeps_stream(self) -> bool:
        """Whether an open stream is still wanted; the driver closes it when not."""
        return self.phase is ManyPhase.OPEN

    @property
    def over(self) -> bool:
        """Whether the wait has finished or failed."""
        return self._outcome is not None

    @property
    def stream_type(self) -> Optional[str]:
        """The ``type`` filter of the subscription: the one type all jobs share, else none."""
        types = {key[0] for key in self.jobs}
        if self.options.children or len(types) != 1:
            return None
        return types.pop()

    def pending(self) -> list[_Job]:
        """The jobs that have not ended, in the order first given."""
        return sorted(
            (job for job in self.jobs.values() if job.final is None),
            key=lambda job: job.positions[0],
        )

    def next_action(self, now: float) -> ManyAction:
        """What the driver should do now."""
        self._now = now
        if self._outcome is not None:
            return self._outcome
        if self._reports and self._first_check_done:
            job = self.jobs[self._reports.popleft()]
            assert job.final is not None
            return Ended(job.final, tuple(job.positions))
        if self.deadline.expired(now):
            return self._fail(self._timeout_error(), self._last_error)
        if self.phase is ManyPhase.RESOLVE:
            action = self._probe(now)
            return action if action is not None else self.next_action(now)
        if self._first_check_done and self._ended == len(self.jobs):
            return self._finish()
        if self._get_pause is not None:
            delay, self._get_pause = self._get_pause, None
            return Pause(self.deadline.cap(delay, now))
        phase = self.phase
        if phase is ManyPhase.PAUSE:
            return self._pause(now)
        if phase is ManyPhase.SUBSCRIBE:
            read_timeout = self.deadline.cap(self.options.idle_timeout, now)
            return SubscribeAll(self.stream_type, max(0.01, read_timeout))
        if phase is ManyPhase.POLL and not self._checking:
            self._start_check()
            return self.next_action(now)
        if phase is ManyPhase.OPEN and (self._gets or self._lists) and not self._drained:
            self._drained = True
            return READ_READY
        self._drained = False
        if self._gets:
            key = self._gets.popleft()
            self._inflight = key
            return Get(*key)
        if self._lists:
            plan = self._lists.popleft()
            self._inflight = plan
            return ListJobs(
                plan.job_type, plan.states, plan.created_after, plan.created_before, LIST_LIMIT
            )
        assert phase is ManyPhase.OPEN, phase  # a finished check always moves on
        return READ

    def _probe(self, now: float) -> Optional[ManyAction]:
        """The next request of the bare-id resolution, or ``None`` once every id is resolved."""
        while self._probes:
            waiter = self._probes[0]
            if waiter.target.type is not None and not waiter.over:
                self._resolved(waiter, None)
                continue
            action = waiter.next_action(now)
            if isinstance(action, Finish):
                self._resolved(waiter, action.job)
            elif isinstance(action, Fail):
                error = action.error
                if isinstance(error, WaitTimeout):  # a Retry-After beyond the deadline
                    why = f"finding the type of job {waiter.target.id}: {error}"
                    return self._fail(self._timeout_error(why), error.__cause__)
                self._probes.popleft()
                if isinstance(error, NotFoundError):
                    self._missing.append(f"job {waiter.target.id} (of no job type)")
                    continue
                return self._fail(error)
            else:
                # A probe only gets or pauses: its type is unknown, so it never subscribes.
                assert isinstance(action, (Get, Pause)), action
                self._inflight = waiter if isinstance(action, Get) else None
                return action
        self.phase = ManyPhase.SUBSCRIBE
        if not self.pending():
            self._check_done()  # nothing to watch: every job ended before we looked
        return None

    def _asks_too_long(self, retry_after: Optional[float]) -> bool:
        """Fail the wait at once (and return True) when the server asks to wait past the
        deadline: waiting would only end in a timeout, later."""
        why = past_deadline(retry_after, self.deadline.remaining(self._now))
        if why is None:
            return False
        self._fail(self._timeout_error(why), self._last_error)
        return True

    def _pause(self, now: float) -> ManyAction:
        retry_after, self._retry_after = self._retry_after, None
        if self._asks_too_long(retry_after):
            assert self._outcome is not None
            return self._outcome
        if self._resume is ManyPhase.POLL:
            delay = self.policy.poll_pause(self.options.poll_interval, retry_after)
        else:
            delay = self.policy.pause(self._attempt, retry_after, self.rng, base=self._backoff_base)
            self._attempt += 1
        self.phase = self._resume
        logger.debug("%d jobs pending: next step in %.2fs", len(self.pending()), delay)
        return Pause(self.deadline.cap(delay, now))

    # -- what happened: requests ------------------------------------------------------------

    def job_received(self, response: JobResponse) -> None:
        """A ``get`` answered with the job."""
        self._answered = True
        inflight, self._inflight = self._inflight, None
        if isinstance(inflight, JobWaiter):
            inflight.job_received(response)
            return
        assert isinstance(inflight, tuple)
        self._get_attempt = 0
        job = self.jobs[inflight]
        self._learn(job, response)
        self._after_request()

    def get_failed(self, exc: JobsError) -> None:
        """A ``get`` raised ``exc`` (an :class:`ApiError` or :class:`TransportError`)."""
        inflight, self._inflight = self._inflight, None
        if isinstance(inflight, JobWaiter):
            if isinstance(exc, ApiError):
                self._answered = True
            inflight.get_failed(exc)
            return
        assert isinstance(inflight, tuple)
        if isinstance(exc, NotFoundError) and not self._first_check_done:
            self._answered = True
            job = self.jobs.pop(inflight)
            self._missing.append(job.target.label)
            self._after_request()
            return
        if not self._survivable(exc):
            return
        retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        if self._asks_too_long(retry_after):
            return
        logger.warning("%s: could not check the state: %s", self.jobs[inflight].target.label, exc)
        self._gets.appendleft(inflight)
        delay = self.policy.pause(self._get_attempt, retry_after, self.rng)
        self._get_attempt += 1
        self._get_pause = delay

    def listed(self, response: JobsResponse) -> None:
        """A ``list`` answered; its items are matched by id to the jobs of the check."""
        self._answered = True
        plan, self._inflight = self._inflight, None
        assert isinstance(plan, _ListPlan)
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
                self._queue_get(job.target)  # the final job, and the authoritative state
        applied = response.limit if response.limit else LIST_LIMIT
        full = len(response.jobs) >= applied
        if plan.unseen and full and fresh and oldest is not None and plan.pages < MAX_PAGES:
            # Newest first and no cursor: the next page is what was created before this one's
            # oldest (plus a millisecond: the wire's precision; the overlap is matched away).
            plan.created_before = oldest + dt.timedelta(milliseconds=1)
            self._lists.appendleft(plan)
        elif plan.unseen and (full or not plan.states):
            # Not on the pages read (more than we read), or not listed at all: ask each one.
            unseen = [self.jobs.get((plan.job_type, job_id)) for job_id in plan.unseen]
            for job in sorted(filter(None, unseen), key=lambda job: job.positions[0]):
                self._queue_get(job.target)
        # Otherwise every final job of the type and time was on the pages: the rest are pending.
        self._after_request()

    def list_failed(self, exc: JobsError) -> None:
        """A ``list`` raised ``exc``: the jobs of its check are asked with ``get`` instead."""
        plan, self._inflight = self._inflight, None
        assert isinstance(plan, _ListPlan)
        self._last_error = exc
        if isinstance(exc, ApiError):
            self._answered = True
        if isinstance(exc, AuthError) and error_kind(exc) == "fatal":
            self._fail(exc)
            return
        logger.info("listing %s jobs failed (%s); checking them one by one", plan.job_type, exc)
        for job_id in sorted(plan.unseen):
            if (plan.job_type, job_id) in self.jobs:
                self._queue_get(Target(plan.job_type, job_id))
        self._after_request()

    # -- what happened: the stream ------------------------------------------------------------

    def subscribed(self) -> None:
        """The stream is open (a 2xx ``text/event-stream``)."""
        self._answered = True
        self._first_event_seen = False
        self.phase = ManyPhase.OPEN

    def subscribe_failed(self, exc: JobsError) -> None:
        """Opening the stream raised ``exc``; the jobs are checked before reconnecting."""
        if not self._survivable(exc, unreachable_ok=True):
            return
        self._retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        self._stream_failed(f"subscribing failed: {exc}")

    def event_received(self, event: Event) -> None:
        """The stream delivered ``event``."""
        self._answered = True
        self._drained = False  # more may be waiting: look again before the next request
        job: Optional[_Job] = None
        if isinstance(event, JobEvent):
            job = self.jobs.get((str(event.job_type), str(event.job_id)))
            # Any job event means the stream works: the backoff starts over.
            self._failures = 0
            self._attempt = 0
        if self.options.on_event is not None and (
            job is not None or not isinstance(event, JobEvent) or self.options.children
        ):
            self.options.on_event(event)
        if isinstance(event, CloseEvent):
            # The tenant stream never sends close; a server that does has ended this stream.
            self._stream_failed("the stream sent close")
            return
        if isinstance(event, JobEvent) and job is not None and job.final is None:
            state = str(event.state)
            self._note_state(job, state, None)
            if state in TERMINAL_STATES:
                self._queue_get(job.target)
        if not self._first_event_seen:
            # The server answered: from now on every change is queued on the stream, so a
            # check now cannot miss an end.
            self._first_event_seen = True
            self._start_check()

    def nothing_ready(self) -> None:
        """No event had arrived (after :class:`ReadReady`): the queued request goes first."""

    def stream_retry(self, milliseconds: int) -> None:
        """The server asked for this reconnection delay with ``retry:``."""
        self._backoff_base = milliseconds / 1000.0

    def stream_ended(self) -> None:
        """The stream ended (the tenant stream should not)."""
        self._stream_failed("the stream ended")

    def stream_failed(self, exc: JobsError) -> None:
        """Reading the stream raised ``exc`` (a ``StreamError`` or ``TransportError``)."""
        self._last_error = exc
        if isinstance(exc, EventDecodeError):
            logger.warning("event stream: %s; checking the jobs", exc)
        self._stream_failed(str(exc))

    def cancelled(self) -> None:
        """The wait's ``cancel`` event was set."""
        if self._outcome is not None:
            return
        pending = self.pending()
        first = pending[0] if pending else None
        self._fail(
            WaitCancelled(
                f"waiting for {self._count} jobs was cancelled; {len(pending)} had not ended",
                job_type=first.target.type if first else None,
                job_id=first.target.id if first else "",
                last_state=first.state if first else None,
            )
        )

    # -- internals --------------------------------------------------------------------------

    def _job_at(self, key: Key, position: int) -> _Job:
        job = self.jobs.get(key)
        if job is None:
            job = self.jobs[key] = _Job(Target(*key), [])
        job.positions.append(position)
        return job

    def _resolved(self, waiter: JobWaiter, final: Optional[JobResponse]) -> None:
        self._probes.popleft()
        target = waiter.target
        assert target.type is not None
        key = (target.type, target.id)
        job: Optional[_Job] = None
        for position in self._bare[target.id]:
            job = self._job_at(key, position)
        assert job is not None
        job.positions.sort()
        job.state = waiter.last_state  # the probe logged it
        if waiter.last_job is not None:
            job.last = waiter.last_job
            job.created = created_time(waiter.last_job.job.created_at)
        if final is not None and job.final is None:
            self._ended_with(job, final)

    def _learn(self, job: _Job, response: JobResponse) -> None:
        if job.final is not None:
            return
        job.last = response
        job.created = created_time(response.job.created_at) or job.created
        state = str(response.job.state or "unknown")
        self._note_state(job, state, response.job.job.numeric_progress)
        if response.job.state in TERMINAL_STATES:
            self._ended_with(job, response)

    def _ended_with(self, job: _Job, final: JobResponse) -> None:
        job.final = final
        self._ended += 1
        self._reports.append((str(job.target.type), job.target.id))

    def _queue_get(self, target: Target) -> None:
        key = (str(target.type), target.id)
        if key not in self._gets and self.jobs[key].final is None:
            self._gets.append(key)

    def _start_check(self) -> None:
        """Check every pending job: a list per type where it pays, else a get each."""
        self._checking = True
        self._lists.clear()  # this check covers whatever an earlier one had left to list
        by_type: dict[str, list[_Job]] = {}
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
                    self._queue_get(job.target)
        self._after_request()

    def _after_request(self) -> None:
        if self._checking and not self._gets and not self._lists and self._inflight is None:
            self._check_done()

    def _check_done(self) -> None:
        self._checking = False
        if not self._first_check_done:
            self._first_check_done = True
            if self._missing:
                names = ", ".join(self._missing)
                self._fail(
                    NotFoundError(
                        f"{len(self._missing)} of the {self._count} jobs do not exist: {names}",
                        status_code=404,
                        error=f"not found: {names}",
                    )
                )
                return
        if self.phase is ManyPhase.CHECK:
            self._reconnect()
        elif self.phase is ManyPhase.POLL:
            self._pause_then(ManyPhase.POLL)

    def _survivable(self, exc: JobsError, *, unreachable_ok: bool = False) -> bool:
        self._last_error = exc
        kind = error_kind(exc)
        if isinstance(exc, ApiError):
            self._answered = True
        if kind == "fatal" or (kind == "unreachable" and not self._answered and not unreachable_ok):
            self._fail(exc)
            return False
        return True

    def _stream_failed(self, why: str) -> None:
        self._failures += 1
        logger.info("event stream of %d pending jobs interrupted (%s)", len(self.pending()), why)
        self.phase = ManyPhase.CHECK
        # Requests queued while the stream was open are part of the check that follows.
        self._start_check()

    def _reconnect(self) -> None:
        if self._failures >= self.options.max_stream_failures:
            if not self.polling:
                self.polling = True
                logger.warning(
                    "the event stream failed %d times in a row; "
                    "checking the %d pending jobs every %.1fs instead",
                    self._failures,
                    len(self.pending()),
                    self.options.poll_interval,
                )
            self._pause_then(ManyPhase.POLL)
        else:
            self._pause_then(ManyPhase.SUBSCRIBE)

    def _pause_then(self, phase: ManyPhase) -> None:
        self._resume = phase
        self.phase = ManyPhase.PAUSE

    def _note_state(self, job: _Job, state: str, progress: Optional[float]) -> None:
        if state == job.state:
            return
        job.state = state
        log_state(job.target.label, state, progress, self._now - self.started)

    def _finish(self) -> ManyAction:
        results: list[Optional[JobResponse]] = [None] * self._count
        failed: list[JobResponse] = []
        for job in sorted(self.jobs.values(), key=lambda job: job.positions[0]):
            assert job.final is not None
            for position in job.positions:
                results[position] = job.final
            if job.final.job.state == "failed":
                failed.append(job.final)
        finals = tuple(r for r in results if r is not None)
        assert len(finals) == self._count
        if failed and self.options.raise_on_failure:
            first = failed[0]
            reason = first.job.job.failed_reason or "the server gave no reason"
            label = Target(str(first.job.type), str(first.job.job.id)).label
            return self._fail(
                JobsFailed(
                    f"{len(failed)} of the {len(self.jobs)} jobs failed; the first, "
                    f"{label}: {reason}",
                    failed=failed,
                    results=finals,
                )
            )
        self._outcome = AllEnded(finals)
        self.phase = ManyPhase.OVER
        return self._outcome

    def _fail(self, error: JobsError, cause: Optional[BaseException] = None) -> Fail:
        if cause is not None and error.__cause__ is None and cause is not error:
            error.__cause__ = cause
        self._outcome = Fail(error)
        self.phase = ManyPhase.OVER
        return self._outcome

    def _timeout_error(self, why: str = "") -> WaitTimeout:
        timeout = self.deadline.timeout or 0.0
        pending_positions = sorted(
            [p for job in self.pending() for p in job.positions]
            + [p for waiter in self._probes for p in self._bare[waiter.target.id]]
        )
        labels = [job.target.label + f" ({job.state or 'unknown'})" for job in self.pending()]
        labels += [f"job {waiter.target.id} (type not found yet)" for waiter in self._probes]
        shown = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
        first = self.pending()[0] if self.pending() else None
        probe = self._probes[0] if self._probes else None
        return WaitTimeout(
            f"{len(pending_positions)} of the {self._count} jobs did not end within "
            f"{timeout:g}s: {shown}" + (f"; {why}" if why else ""),
            job_type=first.target.type if first else None,
            job_id=first.target.id if first else (probe.target.id if probe else ""),
            last_job=first.last if first else None,
            last_state=first.state if first else None,
            timeout=timeout,
            pending=[self.items[p] for p in pending_positions],
        )

"""``wait_for``: follow one job until it ends, combining the event stream with ``get``.

The stream is fast but can lose its end (a dropped connection, a truncated ``close``, a proxy
that buffers); ``get`` is authoritative but slow to notice a change. So the waiter subscribes
first, then checks the state with ``get`` (a job that ended before the stream opened returns at
once, and an event sent in between is already queued on the stream), and checks again after
``close`` and after every stream failure before it reconnects. When the stream keeps failing it
falls back to polling ``get``. One monotonic deadline bounds everything, every read included.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import parse_qs, unquote, urlsplit

from ._checks import check_flag, check_seconds
from ._defaults import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_CAP,
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
    NotFoundError,
    StreamError,
    TransportError,
    WaitTimeout,
)
from ._models import (
    TERMINAL_STATES,
    CloseEvent,
    Event,
    JobEvent,
    JobReference,
    JobResponse,
    JobSummary,
    JobType,
)

if TYPE_CHECKING:  # pragma: no cover
    from ._client import JobsClient

logger = logging.getLogger("waylay_jobs")


#: Job types probed, in this order, when ``wait_for`` is given a bare id.
PROBE_ORDER: tuple[str, ...] = tuple(t.value for t in JobType)

_JOB_PATH = re.compile(r"/registry/v2/jobs/(?P<type>[^/?#]+)/(?P<id>[^?#]+)$")

OnEvent = Callable[[Event], Any]


@dataclass(frozen=True)
class _Target:
    type: str
    id: str


def resolve_job(client: JobsClient, job: Any) -> _Target:
    """Turn any accepted job designation into a (type, id) pair.

    A bare id string carries no type: the job types are probed with ``get`` in
    :data:`PROBE_ORDER` and the first that knows the id wins (ids are UUID based, so two
    queues never share one in practice).
    """
    if isinstance(job, JobResponse):
        return _from_ref(job.ref)
    if isinstance(job, JobSummary):
        return _from_ref(job.ref)
    if isinstance(job, JobReference):
        return _from_ref(job)
    if isinstance(job, tuple):
        if len(job) != 2 or not all(isinstance(part, str) and part for part in job):
            raise InvalidArgument(f"expected a (type, id) pair of non-empty strings, got {job!r}")
        return _Target(str(job[0]), str(job[1]))
    if isinstance(job, str):
        if not job.strip():
            raise InvalidArgument("expected a job id, got an empty string")
        target = _from_href(job)
        if target is not None:
            return target
        return _probe_type(client, job)
    raise InvalidArgument(
        "expected a job id, a (type, id) pair, a JobReference, a list item, a JobResponse "
        f"or a job href, got {type(job).__name__}"
    )


def _from_ref(ref: JobReference) -> _Target:
    if not ref.id:
        raise InvalidArgument(f"the job reference {ref!r} has no id")
    return _Target(str(ref.type), ref.id)


def _from_href(text: str) -> Optional[_Target]:
    if "/registry/v2/jobs/" not in text:
        return None
    parts = urlsplit(text)
    if parts.path.rstrip("/").endswith("/registry/v2/jobs/events"):
        query = parse_qs(parts.query)
        if "type" in query and "id" in query:
            return _Target(query["type"][0], query["id"][0])
        raise InvalidArgument(f"the event link {text!r} names no job type and id")
    match = _JOB_PATH.search(parts.path)
    if match is None:
        raise InvalidArgument(
            f"expected a job href like .../registry/v2/jobs/<type>/<id>, got {text!r}"
        )
    return _Target(unquote(match["type"]), unquote(match["id"]))


def _probe_type(client: JobsClient, job_id: str) -> _Target:
    for job_type in PROBE_ORDER:
        try:
            client.get(job_type, job_id)
        except NotFoundError:
            continue
        logger.debug("job %s is a %s job", job_id, job_type)
        return _Target(job_type, job_id)
    raise NotFoundError(
        f"no job with id {job_id!r}: probed the job types {', '.join(PROBE_ORDER)}",
        status_code=404,
        error=f"Job {job_id} not found",
    )


class _Waiter:
    """One wait: the deadline, the backoff state and the last thing known about the job."""

    def __init__(
        self,
        client: JobsClient,
        target: _Target,
        *,
        timeout: Optional[float],
        raise_on_failure: bool,
        on_event: Optional[OnEvent],
        children: bool,
        idle_timeout: float,
        poll_interval: float,
        max_stream_failures: int,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        rng: random.Random,
    ) -> None:
        self.client = client
        self.target = target
        self.timeout = timeout
        self.raise_on_failure = raise_on_failure
        self.on_event = on_event
        self.children = children
        self.idle_timeout = idle_timeout
        self.poll_interval = poll_interval
        self.max_stream_failures = max_stream_failures
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.started = clock()
        self.deadline = None if timeout is None else self.started + timeout
        self.last_job: Optional[JobResponse] = None
        self.last_state: Optional[str] = None
        self.backoff_base = DEFAULT_BACKOFF_BASE
        self.attempt = 0
        self.failures = 0
        self.label = f"{target.type} job {target.id}"

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> JobResponse:
        while True:
            if self.failures >= self.max_stream_failures:
                return self._poll()
            self._check_deadline()
            outcome = self._follow_stream()
            if outcome is not None:
                return outcome

    def _follow_stream(self) -> Optional[JobResponse]:
        """One subscription; returns the final job, or ``None`` to reconnect."""
        retry_after: Optional[float] = None
        try:
            stream = self.client._open_job_stream(
                self.target.type,
                self.target.id,
                children=self.children,
                read_timeout=self._read_timeout(),
            )
        except ApiError as exc:
            if not _transient(exc):
                raise
            retry_after = _retry_after(exc)
            self._stream_failed(f"subscribing failed: {exc}")
        except TransportError as exc:
            self._stream_failed(f"subscribing failed: {exc}")
        else:
            outcome = self._read_stream(stream)
            if isinstance(outcome, JobResponse):
                return self._finish(outcome)
        job = self._check()
        if job is not None:
            return self._finish(job)
        self._pause(retry_after)
        return None

    def _read_stream(self, stream: Any) -> Optional[JobResponse]:
        """Read one subscription to its end; the final job if it was seen to end."""
        with stream:
            try:
                closed = self._read(stream)
            except (StreamError, TransportError) as exc:
                if isinstance(exc, EventDecodeError):
                    # Surfaced, never dropped; the state check below decides what it meant.
                    logger.warning("%s: %s; checking the state with get", self.label, exc)
                self._stream_failed(str(exc))
                return None
            finally:
                if stream.retry is not None:
                    self.backoff_base = stream.retry / 1000.0
        if isinstance(closed, JobResponse):
            return closed
        if not closed:
            self._stream_failed("the stream ended without close")
            return None
        job = self._check()
        if job is None:
            state = self.last_state or "not known to have ended"
            self._stream_failed(f"the stream sent close but the job is {state}")
        return job

    def _read(self, stream: Any) -> Any:
        """Read until ``close`` (``True``), the end (``False``), or a get that saw the end."""
        checked = False
        for event in stream:
            if self.on_event is not None:
                self.on_event(event)
            if isinstance(event, JobEvent):
                self._note_event(event)
            if isinstance(event, CloseEvent):
                return True
            if not checked:
                # Subscribed (the server answered, usually with ``ack``): anything the job
                # does from now on is queued on the stream, so a get now cannot miss the end.
                checked = True
                job = self._check()
                if job is not None:
                    return job
            self._check_deadline()
        return False

    def _poll(self) -> JobResponse:
        logger.warning(
            "%s: the event stream failed %d times in a row; polling get every %.1fs instead",
            self.label,
            self.failures,
            self.poll_interval,
        )
        while True:
            self._check_deadline()
            job = self._check()
            if job is not None:
                return self._finish(job)
            self._sleep_for(self.poll_interval)

    # -- state ----------------------------------------------------------------------------

    def _check(self) -> Optional[JobResponse]:
        """Get the job; return it when it has ended, else ``None`` (also on transient errors)."""
        self._check_deadline()
        try:
            job = self.client.get(self.target.type, self.target.id)
        except ApiError as exc:
            if not _transient(exc):
                raise
            logger.warning("%s: could not check the state: %s", self.label, exc)
            return None
        except TransportError as exc:
            logger.warning("%s: could not check the state: %s", self.label, exc)
            return None
        self.last_job = job
        self._note_state(str(job.job.state or "unknown"), job.job.job.numeric_progress)
        if job.job.state in TERMINAL_STATES:
            return job
        return None

    def _note_event(self, event: JobEvent) -> None:
        if event.job_id == self.target.id and event.job_type == self.target.type:
            # A real event from our job: the stream works, so the backoff starts over.
            self.attempt = 0
            self.failures = 0
            self._note_state(event.state, None)
        elif self.children:
            self.attempt = 0
            self.failures = 0
            logger.info(
                "%s: child %s job %s is %s (%.1fs)",
                self.label,
                event.job_type,
                event.job_id,
                event.state,
                self.clock() - self.started,
            )

    def _note_state(self, state: str, progress: Optional[float]) -> None:
        if state == self.last_state:
            return
        self.last_state = state
        elapsed = self.clock() - self.started
        if progress is None:
            logger.info("%s is %s (%.1fs)", self.label, state, elapsed)
        else:
            logger.info("%s is %s, progress %g (%.1fs)", self.label, state, progress, elapsed)

    def _finish(self, job: JobResponse) -> JobResponse:
        if job.job.state == "failed" and self.raise_on_failure:
            reason = job.job.job.failed_reason
            raise JobFailed(
                f"{self.label} failed: {reason or 'the server gave no reason'}",
                job=job,
                reason=reason,
            )
        return job

    # -- time -----------------------------------------------------------------------------

    def _remaining(self) -> Optional[float]:
        return None if self.deadline is None else self.deadline - self.clock()

    def _check_deadline(self) -> None:
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            assert self.timeout is not None
            raise WaitTimeout(
                f"{self.label} did not end within {self.timeout:g}s; "
                f"last known state: {self.last_state or 'unknown'}",
                job_type=self.target.type,
                job_id=self.target.id,
                last_job=self.last_job,
                last_state=self.last_state,
                timeout=self.timeout,
            )

    def _read_timeout(self) -> float:
        remaining = self._remaining()
        if remaining is None:
            return self.idle_timeout
        # No single read may outlive the deadline.
        return max(0.01, min(self.idle_timeout, remaining))

    def _stream_failed(self, why: str) -> None:
        self.failures += 1
        logger.info("%s: event stream interrupted (%s)", self.label, why)

    def _pause(self, retry_after: Optional[float]) -> None:
        # Exponential backoff with full jitter; a Retry-After is a floor, not a suggestion.
        ceiling = min(DEFAULT_BACKOFF_CAP, self.backoff_base * (2**self.attempt))
        self.attempt += 1
        delay = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, DEFAULT_BACKOFF_CAP * 4))
        logger.debug("%s: reconnecting in %.2fs", self.label, delay)
        self._sleep_for(delay)

    def _sleep_for(self, seconds: float) -> None:
        remaining = self._remaining()
        if remaining is not None:
            seconds = min(seconds, max(remaining, 0.0))
        if seconds > 0:
            self.sleep(seconds)
        self._check_deadline()


def _transient(exc: ApiError) -> bool:
    """Whether an error may go away by asking again (the wait goes on) or is final."""
    status = exc.status_code
    if isinstance(exc, NotFoundError):
        return False
    if isinstance(exc, AuthError):
        # Raised by the token endpoint too: a 429 or 5xx there is the gateway being busy,
        # not a refusal of the credentials.
        return status == 429 or status >= 500
    # A 2xx here is a body of the wrong kind (a proxy's HTML page): worth another try.
    return status == 429 or status >= 500 or 200 <= status < 300


def _retry_after(exc: ApiError) -> Optional[float]:
    if exc.response is None:
        return None
    value = exc.response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def wait_for(
    client: JobsClient,
    job: Any,
    *,
    timeout: Optional[float] = None,
    raise_on_failure: bool = True,
    on_event: Optional[OnEvent] = None,
    children: bool = False,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    max_stream_failures: int = DEFAULT_MAX_STREAM_FAILURES,
    _clock: Callable[[], float] = time.monotonic,
    _sleep: Callable[[float], None] = time.sleep,
    _rng: Optional[random.Random] = None,
) -> JobResponse:
    """Block until the job ends; see :meth:`JobsClient.wait_for`."""
    if timeout is not None:
        check_seconds("timeout", timeout, zero_ok=True)
    check_seconds("idle_timeout", idle_timeout)
    check_seconds("poll_interval", poll_interval, zero_ok=True)
    check_flag("raise_on_failure", raise_on_failure)
    check_flag("children", children)
    if (
        isinstance(max_stream_failures, bool)
        or not isinstance(max_stream_failures, int)
        or (max_stream_failures < 1)
    ):
        raise InvalidArgument(
            f"expected max_stream_failures to be an int >= 1, got {max_stream_failures!r}"
        )
    if on_event is not None and not callable(on_event):
        raise InvalidArgument(f"expected on_event to be callable, got {on_event!r}")
    clock_start = _clock()
    target = resolve_job(client, job)
    waiter = _Waiter(
        client,
        target,
        timeout=timeout,
        raise_on_failure=raise_on_failure,
        on_event=on_event,
        children=children,
        idle_timeout=idle_timeout,
        poll_interval=poll_interval,
        max_stream_failures=max_stream_failures,
        clock=_clock,
        sleep=_sleep,
        rng=_rng or random.Random(),  # noqa: S311 - jitter, not cryptography
    )
    # Resolving a bare id costs requests too: they count against the same deadline.
    waiter.started = clock_start
    waiter.deadline = None if timeout is None else clock_start + timeout
    return waiter.run()

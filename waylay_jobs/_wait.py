"""``wait_for``: the blocking driver of the wait machine (``_waiting``), over ``requests``.

The machine decides; this module carries out its decisions: ``get`` through the transport,
subscriptions through :class:`EventStream`, pauses with ``time.sleep`` (or the ``cancel``
event's ``wait``). Every request carries the wait's deadline. A ``cancel`` event set from another
thread unblocks a read in progress (a small watcher thread shuts the stream's socket down).
"""

from __future__ import annotations

import random
import re
import threading
import time
from typing import Any, Callable, Optional, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from ._defaults import DEFAULT_MAX_EVENT_SIZE
from ._endpoints import get_job, open_events
from ._events import EventStream
from ._exceptions import ApiError, InvalidArgument, JobsError, StreamError, TransportError
from ._http.blocking import Params, Transport
from ._models import Event, JobReference, JobResponse, JobSummary
from ._policy import Deadline
from ._query import encode_events_query
from ._waiting import (
    Fail,
    Finish,
    Get,
    JobWaiter,
    Pause,
    Read,
    Subscribe,
    Target,
    WaitOptions,
)

_JOB_PATH = re.compile(r"/registry/v2/jobs/(?P<type>[^/?#]+)/(?P<id>[^?#]+)$")

#: Seconds between the cancel watcher's looks at the ``cancel`` event: a ``threading.Event``
#: offers no callback, and this bounds how late a read in progress is unblocked.
CANCEL_CHECK_EVERY = 0.02


def target_of(job: Any) -> Target:
    """Any accepted job designation as a :class:`Target`, without I/O.

    A bare id string gives ``Target(None, id)``: its type is probed by the waiter.
    """
    if isinstance(job, Target):
        return job
    if isinstance(job, (JobResponse, JobSummary)):
        return _from_ref(job.ref)
    if isinstance(job, JobReference):
        return _from_ref(job)
    if isinstance(job, tuple):
        if len(job) != 2 or not all(isinstance(part, str) and part for part in job):
            raise InvalidArgument(f"expected a (type, id) pair of non-empty strings, got {job!r}")
        return Target(str(job[0]), str(job[1]))
    if isinstance(job, str):
        if not job.strip():
            raise InvalidArgument("expected a job id, got an empty string")
        target = _from_href(job)
        return target if target is not None else Target(None, job)
    raise InvalidArgument(
        "expected a job id, a (type, id) pair, a JobReference, a list item, a JobResponse "
        f"or a job href, got {type(job).__name__}"
    )


def _from_ref(ref: JobReference) -> Target:
    if not ref.id:
        raise InvalidArgument(f"the job reference {ref!r} has no id")
    return Target(str(ref.type), ref.id)


def _from_href(text: str) -> Optional[Target]:
    if "/registry/v2/jobs/" not in text:
        return None
    parts = urlsplit(text)
    if parts.path.rstrip("/").endswith("/registry/v2/jobs/events"):
        query = parse_qs(parts.query)
        if "type" in query and "id" in query:
            return Target(query["type"][0], query["id"][0])
        raise InvalidArgument(f"the event link {text!r} names no job type and id")
    match = _JOB_PATH.search(parts.path)
    if match is None:
        raise InvalidArgument(
            f"expected a job href like .../registry/v2/jobs/<type>/<id>, got {text!r}"
        )
    return Target(unquote(match["type"]), unquote(match["id"]))


def wait_for(
    transport: Transport,
    job: Any,
    options: WaitOptions,
    *,
    deadline: Optional[Deadline] = None,
    _clock: Callable[[], float] = time.monotonic,
    _sleep: Optional[Callable[[float], None]] = None,
    _rng: Optional[random.Random] = None,
) -> JobResponse:
    """Block until the job ends; see :meth:`JobsClient.wait_for`.

    ``deadline`` replaces the one ``options.timeout`` would give: a caller that spent part of
    the time already (the CLI resolving a bare id) passes the deadline it started with.
    """
    start = _clock()
    target = target_of(job)
    if deadline is None:
        deadline = Deadline(options.timeout, clock=_clock, start=start)
    waiter = JobWaiter(
        target,
        options,
        deadline=deadline,
        start=start,
        rng=_rng or random.Random(),  # noqa: S311 - jitter, not cryptography
    )
    job_found = _Driver(transport, waiter, _clock, _sleep).run()
    assert job_found is not None
    return job_found


def resolve_job(transport: Transport, job: Any, *, deadline: Optional[Deadline] = None) -> Target:
    """The (type, id) of any accepted job designation; a bare id's type is probed with ``get``
    within ``deadline``, by the same rules as a wait."""
    target = target_of(job)
    if target.type is not None:
        return target
    clock = deadline.clock if deadline is not None else time.monotonic
    start = clock()
    deadline = deadline or Deadline(None, clock=clock, start=start)
    waiter = JobWaiter(
        target,
        WaitOptions(timeout=deadline.timeout),
        deadline=deadline,
        start=start,
        rng=random.Random(),  # noqa: S311 - jitter, not cryptography
    )
    _Driver(transport, waiter, clock, None, until_resolved=True).run()
    return waiter.target


class StreamObserver(Protocol):
    """What a driver tells a wait machine about its subscription (``JobWaiter``,
    ``ManyWaiter``)."""

    @property
    def deadline(self) -> Deadline: ...

    def subscribe_failed(self, exc: JobsError) -> None: ...
    def stream_ended(self) -> None: ...
    def stream_failed(self, exc: JobsError) -> None: ...
    def stream_retry(self, milliseconds: int) -> None: ...
    def event_received(self, event: Event) -> None: ...


def open_subscription(
    transport: Transport, params: Params, read_timeout: float, waiter: StreamObserver
) -> Optional[EventStream]:
    """Subscribe within the waiter's deadline: the stream, or ``None`` once the waiter has been
    told why not (the caller tells it ``subscribed()`` when it has taken the stream)."""
    try:
        return open_events(
            transport,
            params,
            read_timeout=read_timeout,
            max_event_size=DEFAULT_MAX_EVENT_SIZE,
            deadline=waiter.deadline,
        )
    except (ApiError, TransportError) as exc:
        waiter.subscribe_failed(exc)
        return None


def read_one(
    waiter: StreamObserver, next_event: Callable[[], Event], stream: EventStream, cancel: Any
) -> None:
    """Read one event with ``next_event`` and tell the waiter what came: the event, the end of
    the stream, or its failure (nothing when ``cancel`` was set: the stream was cut on purpose)."""
    try:
        event = next_event()
    except StopIteration:
        if cancel is None or not cancel.is_set():
            waiter.stream_ended()
        return
    except (StreamError, TransportError) as exc:
        if cancel is None or not cancel.is_set():
            waiter.stream_failed(exc)
        return
    finally:
        if stream.retry is not None:
            waiter.stream_retry(stream.retry)
    waiter.event_received(event)


class _Driver:
    """Carries out one :class:`JobWaiter`'s actions with blocking I/O."""

    def __init__(
        self,
        transport: Transport,
        waiter: JobWaiter,
        clock: Callable[[], float],
        sleep: Optional[Callable[[float], None]],
        *,
        until_resolved: bool = False,
    ) -> None:
        self.transport = transport
        self.waiter = waiter
        self.clock = clock
        self.cancel = waiter.options.cancel
        if sleep is None:
            sleep = time.sleep if self.cancel is None else self.cancel.wait
        self.sleep = sleep
        self.until_resolved = until_resolved
        self.stream: Optional[EventStream] = None
        self.watcher: Optional[_CancelWatcher] = None

    def run(self) -> Optional[JobResponse]:
        if self.cancel is not None:
            self.watcher = _CancelWatcher(self.cancel)
        try:
            return self._loop()
        finally:
            self._close_stream()
            if self.watcher is not None:
                self.watcher.stop()

    def _loop(self) -> Optional[JobResponse]:
        waiter = self.waiter
        deadline = waiter.deadline
        while True:
            if self.cancel is not None and self.cancel.is_set():
                waiter.cancelled()
            if self.until_resolved and waiter.target.type is not None:
                return None
            action = waiter.next_action(self.clock())
            if self.stream is not None and not waiter.keeps_stream:
                self._close_stream()
            if isinstance(action, Read):
                self._read()
            elif isinstance(action, Get):
                try:
                    job = get_job(self.transport, action.job_type, action.job_id, deadline=deadline)
                except (ApiError, TransportError) as exc:
                    waiter.get_failed(exc)
                else:
                    waiter.job_received(job)
            elif isinstance(action, Subscribe):
                self._subscribe(action)
            elif isinstance(action, Pause):
                if action.seconds > 0:
                    self.sleep(action.seconds)
            elif isinstance(action, Finish):
                return action.job
            else:
                assert isinstance(action, Fail)
                raise action.error

    def _subscribe(self, action: Subscribe) -> None:
        params = encode_events_query(
            type=action.job_type, id=action.job_id, children=action.children
        )
        stream = open_subscription(self.transport, params, action.read_timeout, self.waiter)
        if stream is None:
            return
        self.stream = stream
        if self.watcher is not None:
            self.watcher.watch(stream)
        self.waiter.subscribed()

    def _read(self) -> None:
        assert self.stream is not None
        read_one(self.waiter, self.stream.__next__, self.stream, self.cancel)

    def _close_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            if self.watcher is not None:
                self.watcher.watch(None)
            stream.close()


class _CancelWatcher:
    """A thread that cancels the current stream once the ``cancel`` event is set."""

    def __init__(self, cancel: Any) -> None:
        self._cancel = cancel
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._stream: Optional[EventStream] = None
        self._thread = threading.Thread(target=self._run, name="waylay-jobs-cancel", daemon=True)
        self._thread.start()

    def watch(self, stream: Optional[EventStream]) -> None:
        with self._lock:
            self._stream = stream
            if stream is not None and self._cancel.is_set():
                stream.cancel()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.is_set():
            if self._cancel.wait(CANCEL_CHECK_EVERY):
                with self._lock:
                    if self._stream is not None:
                        self._stream.cancel()
                return

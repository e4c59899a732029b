"""The blocking driver of the wait machine, over the ``requests`` transport.

The machine (:class:`~waylay_jobs._wait.machine.Waiter`) decides; this loop carries its actions out
on the calling thread: ``get`` and ``list`` through the transport, bounded by the wait's
deadline; sleeps with ``time.sleep`` (or the ``cancel`` event's ``wait``). The event stream is
read on a thread of its own into a queue, so that the calling thread can wait for the next
event for exactly as long as the machine allows (the idle time and the deadline left,
recomputed for every read), and can take the events that have arrived while a request was
under way. Threads per wait: that reader while a stream is open, and, with ``cancel``, a
watcher that looks at the event every :data:`CANCEL_CHECK_EVERY` seconds and, once it is set,
cuts the stream and the request in flight.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any, Callable, Optional, Union

from .._defaults import DEFAULT_MAX_EVENT_SIZE
from .._endpoints import JOBS_PATH, get_job, open_events
from .._events import EventStream
from .._exceptions import ApiError, TransportError
from .._http.blocking import Transport, json_body
from .._http.interrupt import Interrupter, interruptible
from .._models import CloseEvent, JobResponse, decode_jobs_response
from .._policy import Deadline
from . import machine
from .machine import STREAM_END, Answer, JobScope, Scope, TenantScope, Waiter, WaitOptions
from .targets import Target, job_list, target_of

#: Seconds between the cancel watcher's looks at the ``cancel`` event: a ``threading.Event``
#: offers no callback, and this bounds how late a request or read in progress is cut.
CANCEL_CHECK_EVERY = 0.02


class BlockingWait:
    """One wait, driven on the calling thread; iterate it for ``(final job, positions)`` as
    jobs end. The iteration ends when every job has ended (then :attr:`results` holds the
    final jobs in the order given) or raises what the wait raises. Closing the iterator early
    (a ``break`` in ``as_completed``) closes the stream.

    With ``until_resolved`` the iteration ends as soon as every bare id has its type.
    """

    def __init__(
        self,
        transport: Transport,
        items: list[Any],
        options: WaitOptions,
        *,
        scope: Scope,
        deadline: Optional[Deadline] = None,
        until_resolved: bool = False,
        _clock: Callable[[], float] = time.monotonic,
        _sleep: Optional[Callable[[float], None]] = None,
        _rng: Optional[random.Random] = None,
    ) -> None:
        self.transport = transport
        self.clock = _clock
        self.cancel = options.cancel
        self.sleep = _sleep or (time.sleep if self.cancel is None else self.cancel.wait)
        self.until_resolved = until_resolved
        self.waiter = Waiter(items, options, scope, _clock, transport.policy, deadline, _rng)
        self.results: list[JobResponse] = []
        # Only a wait that can be cancelled needs to cut its requests from another thread.
        self.interrupter = Interrupter() if self.cancel is not None else None
        self._reader: Optional[_Reader] = None
        self._watcher: Optional[_CancelWatcher] = None

    def __iter__(self) -> Iterator[tuple[JobResponse, tuple[int, ...]]]:
        if not self.waiter.count:
            return
        if self.cancel is not None:
            assert self.interrupter is not None
            self._watcher = _CancelWatcher(self.cancel, self.interrupter)
        try:
            yield from self._loop()
        finally:
            self._close_stream()
            if self._watcher is not None:
                self._watcher.stop()

    def _loop(self) -> Iterator[tuple[JobResponse, tuple[int, ...]]]:
        waiter = self.waiter
        while True:
            if self.cancel is not None and self.cancel.is_set():
                waiter.cancelled(self.clock())
            if self.until_resolved and not waiter.probes and not waiter.over:
                return
            action = waiter.next_action(self.clock())
            if self._reader is not None and not waiter.keeps_stream:
                self._close_stream()
            if isinstance(action, machine.Read):
                self._read(action.timeout)
            elif isinstance(action, (machine.Get, machine.ListJobs)):
                self._send(action)
            elif isinstance(action, machine.Subscribe):
                self._subscribe(action)
            elif isinstance(action, machine.Sleep):
                if action.seconds > 0:
                    self.sleep(action.seconds)
            elif isinstance(action, machine.Ended):
                yield action.job, action.positions
            else:
                assert not isinstance(action, machine.Dropped), action  # no scope here isolates
                self.results = list(action.settle())  # or raises the wait's error
                return

    def _send(self, action: Union[machine.Get, machine.ListJobs]) -> None:
        deadline = self.waiter.deadline
        answer: Answer
        # One attempt each: the machine repeats a failed request, by the transport's policy.
        try:
            with interruptible(self.interrupter):
                if isinstance(action, machine.Get):
                    answer = get_job(
                        self.transport,
                        action.job_type,
                        action.job_id,
                        deadline=deadline,
                        retry=False,
                    )
                else:
                    response = self.transport.get_json(
                        JOBS_PATH, action.params(), deadline=deadline, retry=False
                    )
                    answer = decode_jobs_response(json_body(response))
        except (ApiError, TransportError) as exc:
            if self._cancelled():
                return  # the request was cut on purpose: the loop reports the cancel
            answer = exc
        self.waiter.answered(self.clock(), answer)

    def _subscribe(self, action: machine.Subscribe) -> None:
        try:
            with interruptible(self.interrupter):
                stream = open_events(
                    self.transport,
                    action.params(),
                    read_timeout=action.read_timeout,
                    max_event_size=DEFAULT_MAX_EVENT_SIZE,
                    deadline=self.waiter.deadline,
                )
        except (ApiError, TransportError) as exc:
            if not self._cancelled():
                self.waiter.subscribe_failed(self.clock(), exc)
            return
        if self._cancelled():
            stream.close()
            return
        self._reader = _Reader(stream)
        if self._watcher is not None:
            self._watcher.watch(stream)
        self.waiter.subscribed(self.clock())

    def _read(self, timeout: float) -> None:
        reader = self._reader
        assert reader is not None
        item = reader.get(timeout)
        if self._cancelled():
            return  # the stream was cut on purpose: the loop reports the cancel
        self.waiter.read(self.clock(), item, reader.stream.retry)

    def _cancelled(self) -> bool:
        # What an I/O step brought back once cancel is set is the cut, not news for the
        # machine: the loop reports the cancel instead.
        return self.cancel is not None and self.cancel.is_set()

    def _close_stream(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            if self._watcher is not None:
                self._watcher.watch(None)
            reader.stop()


class _Reader:
    """Reads one event stream on a thread of its own, into a queue.

    Events are decoded as they come, whatever the waiting thread is doing; the thread ends
    with the stream, and :meth:`stop` ends it early (cutting a read in progress) and waits.
    """

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="waylay-jobs-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                event = next(self.stream)
                self._queue.put(event)
                if isinstance(event, CloseEvent):
                    break  # nothing may follow: close the connection now, on this thread
        except StopIteration:
            self._queue.put(STREAM_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread as is
            self._queue.put(exc)
        finally:
            self.stream.close()  # on this thread: never under a read in progress

    def get(self, timeout: float) -> Any:
        """The next item (an event, an exception, or the end), or ``None`` when none came
        within ``timeout`` seconds (0: only one that has already arrived)."""
        try:
            if timeout <= 0:
                return self._queue.get_nowait()
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self) -> None:
        """End the reading thread (unblocking a read in progress) and wait for it."""
        self._stopping.set()
        self.stream.cancel()
        self._thread.join()


class _CancelWatcher:
    """A thread that, once the ``cancel`` event is set, cuts the current stream and the
    requests in flight (through the wait's :class:`Interrupter`)."""

    def __init__(self, cancel: Any, interrupter: Interrupter) -> None:
        self._cancel = cancel
        self._interrupter = interrupter
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
                self._interrupter.interrupt()
                with self._lock:
                    if self._stream is not None:
                        self._stream.cancel()
                return


# -- the entry points ---------------------------------------------------------------------------


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
    wait = BlockingWait(
        transport,
        [job],
        options,
        scope=JobScope(),
        deadline=deadline,
        _clock=_clock,
        _sleep=_sleep,
        _rng=_rng,
    )
    for _ in wait:
        pass
    return wait.results[0]


def resolve_job(transport: Transport, job: Any, *, deadline: Optional[Deadline] = None) -> Target:
    """The (type, id) of any accepted job designation; a bare id's type is probed with ``get``
    within ``deadline``, by the same rules as a wait."""
    target = target_of(job)
    if target.type is not None:
        return target
    options = WaitOptions(timeout=None if deadline is None else deadline.timeout)
    wait = BlockingWait(
        transport, [job], options, scope=JobScope(), deadline=deadline, until_resolved=True
    )
    for _ in wait:
        pass
    resolved = next(iter(wait.waiter.jobs.values()))
    return resolved.target


def many_wait(transport: Transport, jobs: Any, options: WaitOptions, **hooks: Any) -> BlockingWait:
    """The wait for many jobs over the tenant's stream (arguments checked now, no I/O)."""
    return BlockingWait(transport, job_list(jobs), options, scope=TenantScope(), **hooks)


def wait_all(transport: Transport, jobs: Any, options: WaitOptions) -> list[JobResponse]:
    """Block until every job has ended; see :meth:`JobsClient.wait_all`."""
    wait = many_wait(transport, jobs, options)
    for _ in wait:
        pass
    return wait.results


def as_completed(
    transport: Transport, jobs: Any, options: WaitOptions
) -> Generator[JobResponse, None, None]:
    """Each final job as it ends, once per position; see :meth:`JobsClient.as_completed`.

    The arguments are checked now; the requests start with the first ``next()``.
    """
    return _each(many_wait(transport, jobs, options))


def _each(wait: BlockingWait) -> Generator[JobResponse, None, None]:
    for job, positions in wait:
        for _ in positions:
            yield job

"""``wait_all`` and ``as_completed``: the blocking driver of the many-jobs machine.

:class:`~waylay_jobs._waiting_many.ManyWaiter` decides; this module carries its decisions out
on one thread: ``get`` and ``list`` through the transport, the one subscription through
:class:`EventStream` (read on a second thread, so that events are taken as they come even
while a check is under way), pauses with ``time.sleep`` (or the ``cancel`` event's ``wait``). Every
request carries the wait's deadline; a ``cancel`` event unblocks a read in progress, as for
``wait_for``.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from typing import Any, Callable, Optional

from ._endpoints import JOBS_PATH, get_job
from ._events import EventStream
from ._exceptions import ApiError, InvalidArgument, TransportError
from ._http.blocking import Transport, json_body
from ._models import Event, JobResponse, JobsResponse, decode_jobs_response
from ._policy import Deadline
from ._query import ListFilters, encode_events_query, encode_list_query
from ._wait import _CancelWatcher, open_subscription, read_one, target_of
from ._waiting import Fail, Get, Pause, Read, WaitOptions
from ._waiting_many import AllEnded, Ended, ListJobs, ManyWaiter, ReadReady, SubscribeAll


def job_list(jobs: Any) -> list[Any]:
    """``jobs`` as a list, checked: an iterable of job designations, not one designation."""
    if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Iterable):
        raise InvalidArgument(
            "expected a list of jobs (ids, (type, id) pairs, references, list items, "
            f"responses or hrefs), got {type(jobs).__name__}; for one job use wait_for"
        )
    return list(jobs)


class ManyWait:
    """One wait for many jobs; iterate it for ``(final job, positions)`` as jobs end.

    The iteration ends when every job has ended (then :attr:`results` holds the final jobs
    in the order given) or raises what the wait raises. Closing the iterator early (a
    ``break`` in ``as_completed``) closes the stream.
    """

    def __init__(
        self,
        transport: Transport,
        jobs: Any,
        options: WaitOptions,
        *,
        _clock: Callable[[], float] = time.monotonic,
        _sleep: Optional[Callable[[float], None]] = None,
        _rng: Optional[random.Random] = None,
    ) -> None:
        items = job_list(jobs)
        targets = [target_of(item) for item in items]  # bad designations fail before any I/O
        start = _clock()
        self.transport = transport
        self.clock = _clock
        self.cancel = options.cancel
        if _sleep is None:
            _sleep = time.sleep if self.cancel is None else self.cancel.wait
        self.sleep = _sleep
        self.waiter = ManyWaiter(
            items,
            targets,
            options,
            deadline=Deadline(options.timeout, clock=_clock, start=start),
            start=start,
            rng=_rng or random.Random(),  # noqa: S311 - jitter, not cryptography
        )
        self.results: list[JobResponse] = []
        self.stream: Optional[_StreamReader] = None
        self.watcher: Optional[_CancelWatcher] = None

    def __iter__(self) -> Iterator[tuple[JobResponse, tuple[int, ...]]]:
        if not self.waiter.items:
            return
        if self.cancel is not None:
            self.watcher = _CancelWatcher(self.cancel)
        try:
            yield from self._loop()
        finally:
            self._close_stream()
            if self.watcher is not None:
                self.watcher.stop()

    def _loop(self) -> Iterator[tuple[JobResponse, tuple[int, ...]]]:
        waiter = self.waiter
        deadline = waiter.deadline
        while True:
            if self.cancel is not None and self.cancel.is_set():
                waiter.cancelled()
            action = waiter.next_action(self.clock())
            if self.stream is not None and not waiter.keeps_stream:
                self._close_stream()
            if isinstance(action, Read):
                self._read()
            elif isinstance(action, ReadReady):
                if self._ready():
                    self._read()
                else:
                    waiter.nothing_ready()
            elif isinstance(action, Get):
                try:
                    job = get_job(self.transport, action.job_type, action.job_id, deadline=deadline)
                except (ApiError, TransportError) as exc:
                    waiter.get_failed(exc)
                else:
                    waiter.job_received(job)
            elif isinstance(action, ListJobs):
                try:
                    listed = self._list(action)
                except (ApiError, TransportError) as exc:
                    waiter.list_failed(exc)
                else:
                    waiter.listed(listed)
            elif isinstance(action, SubscribeAll):
                self._subscribe(action)
            elif isinstance(action, Pause):
                if action.seconds > 0:
                    self.sleep(action.seconds)
            elif isinstance(action, Ended):
                yield action.job, action.positions
            elif isinstance(action, AllEnded):
                self.results = list(action.results)
                return
            else:
                assert isinstance(action, Fail)
                raise action.error

    def _list(self, action: ListJobs) -> JobsResponse:
        filters: ListFilters = {"type": action.job_type, "limit": action.limit}
        if action.states:
            filters["state"] = list(action.states)
        if action.created_after is not None:
            filters["created_after"] = action.created_after
        if action.created_before is not None:
            filters["created_before"] = action.created_before
        params = encode_list_query(**filters)
        response = self.transport.get_json(JOBS_PATH, params, deadline=self.waiter.deadline)
        return decode_jobs_response(json_body(response))

    def _subscribe(self, action: SubscribeAll) -> None:
        params = encode_events_query(type=action.job_type)
        stream = open_subscription(self.transport, params, action.read_timeout, self.waiter)
        if stream is None:
            return
        if self.watcher is not None:
            self.watcher.watch(stream)
        self.stream = _StreamReader(stream)
        self.waiter.subscribed()

    def _read(self) -> None:
        reader = self.stream
        assert reader is not None
        read_one(self.waiter, reader.next, reader.stream, self.cancel)

    def _ready(self) -> bool:
        """Whether an event (or the stream's end) has arrived and waits to be taken."""
        assert self.stream is not None
        return self.stream.ready()

    def _close_stream(self) -> None:
        reader, self.stream = self.stream, None
        if reader is not None:
            if self.watcher is not None:
                self.watcher.watch(None)
            reader.stop()


_END = object()


class _StreamReader:
    """Reads one event stream on a thread of its own, into a queue.

    The waiter's thread spends time on requests (the checks, the confirming gets) while events
    arrive; read here, they are decoded as they come and the waiter can tell, without waiting,
    whether one is there (:meth:`ready`), so that no end waits behind a long check. The thread
    ends when the stream does; :meth:`stop` ends it early and waits for it.
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
                try:
                    event = next(self.stream)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - handed to the waiter's thread as is
                    self._queue.put(exc)
                    return
                self._queue.put(event)
        finally:
            self._queue.put(_END)
            self.stream.close()  # on this thread: never under a read in progress

    def ready(self) -> bool:
        """Whether :meth:`next` would return (or raise) without waiting."""
        return not self._queue.empty()

    def next(self) -> Event:
        """The next event; ``StopIteration`` at the end, or the error that ended the stream."""
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # every later call ends too
            raise StopIteration
        if isinstance(item, BaseException):
            self._queue.put(_END)
            raise item
        assert isinstance(item, Event)
        return item

    def stop(self) -> None:
        """End the reading thread (unblocking a read in progress) and wait for it."""
        self._stopping.set()
        self.stream.cancel()
        self._thread.join()


def wait_all(transport: Transport, jobs: Any, options: WaitOptions) -> list[JobResponse]:
    """Block until every job has ended; see :meth:`JobsClient.wait_all`."""
    wait = ManyWait(transport, jobs, options)
    for _ in wait:
        pass
    return wait.results


def as_completed(
    transport: Transport, jobs: Any, options: WaitOptions
) -> Generator[JobResponse, None, None]:
    """Each final job as it ends, once per position; see :meth:`JobsClient.as_completed`.

    The arguments are checked now; the requests start with the first ``next()``.
    """
    return _each(ManyWait(transport, jobs, options))


def _each(wait: ManyWait) -> Generator[JobResponse, None, None]:
    for job, positions in wait:
        for _ in positions:
            yield job

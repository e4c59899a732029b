"""``wait_all`` and ``as_completed``: the blocking driver of the many-jobs machine.

:class:`~waylay_jobs._waiting_many.ManyWaiter` decides; this module carries its decisions out
on one thread: ``get`` and ``list`` through the transport, the one subscription through
:class:`EventStream`, pauses with ``time.sleep`` (or the ``cancel`` event's ``wait``). Every
request carries the wait's deadline; a ``cancel`` event unblocks a read in progress, as for
``wait_for``.
"""

from __future__ import annotations

import random
import select
import time
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Optional

from ._defaults import DEFAULT_MAX_EVENT_SIZE
from ._endpoints import JOBS_PATH, get_job, open_events
from ._events import EventStream
from ._exceptions import ApiError, InvalidArgument, StreamError, TransportError
from ._http import Transport, json_body
from ._models import JobResponse, JobsResponse, decode_jobs_response
from ._policy import Deadline
from ._query import encode_events_query, encode_list_query
from ._stream import _socket_of
from ._wait import _CancelWatcher, target_of
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
        self.stream: Optional[EventStream] = None
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
        params = encode_list_query(
            type=action.job_type,
            state=list(action.states) or None,
            created_after=action.created_after,
            created_before=action.created_before,
            limit=action.limit,
        )
        response = self.transport.get_json(JOBS_PATH, params, deadline=self.waiter.deadline)
        return decode_jobs_response(json_body(response))

    def _subscribe(self, action: SubscribeAll) -> None:
        params = encode_events_query(type=action.job_type)
        try:
            stream = open_events(
                self.transport,
                params,
                read_timeout=action.read_timeout,
                max_event_size=DEFAULT_MAX_EVENT_SIZE,
                deadline=self.waiter.deadline,
            )
        except (ApiError, TransportError) as exc:
            self.waiter.subscribe_failed(exc)
            return
        self.stream = stream
        if self.watcher is not None:
            self.watcher.watch(stream)
        self.waiter.subscribed()

    def _read(self) -> None:
        stream = self.stream
        assert stream is not None
        try:
            event = next(stream)
        except StopIteration:
            if self.cancel is None or not self.cancel.is_set():
                self.waiter.stream_ended()
            return
        except (StreamError, TransportError) as exc:
            if self.cancel is None or not self.cancel.is_set():
                self.waiter.stream_failed(exc)
            return
        finally:
            if stream.retry is not None:
                self.waiter.stream_retry(stream.retry)
        self.waiter.event_received(event)

    def _ready(self) -> bool:
        """Whether the stream's socket has bytes waiting (a read would not wait for them).

        Bytes already taken off the socket into a buffer are not seen: then the event waits
        for the next blocking read, which is only later, never wrong.
        """
        assert self.stream is not None
        sock = _socket_of(self.stream.response.raw)
        if sock is None:
            return False
        if hasattr(select, "poll"):  # no FD_SETSIZE limit, unlike select()
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])  # pragma: no cover - Windows

    def _close_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            if self.watcher is not None:
                self.watcher.watch(None)
            stream.close()


def wait_all(transport: Transport, jobs: Any, options: WaitOptions) -> list[JobResponse]:
    """Block until every job has ended; see :meth:`JobsClient.wait_all`."""
    wait = ManyWait(transport, jobs, options)
    for _ in wait:
        pass
    return wait.results


def as_completed(transport: Transport, jobs: Any, options: WaitOptions) -> Iterator[JobResponse]:
    """Each final job as it ends, once per position; see :meth:`JobsClient.as_completed`.

    The arguments are checked now; the requests start with the first ``next()``.
    """
    return _each(ManyWait(transport, jobs, options))


def _each(wait: ManyWait) -> Iterator[JobResponse]:
    for job, positions in wait:
        for _ in positions:
            yield job

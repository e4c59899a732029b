"""The asyncio driver of the wait machine, over the httpx transport.

The same machine as the blocking driver (:class:`~waylay_jobs._wait.machine.Waiter`), for one job or
many, carried out with ``await``: no thread and no blocking call per wait, so that thousands of
waits share one event loop (Airflow's triggerer). The event stream is read by a task of its
own into a buffer, so that the loop can wait for the next event for exactly as long as the
machine allows and take the events that arrived during a request. Cancelling the task that
waits closes the stream's connection before ``CancelledError`` goes on.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import AsyncIterator
from typing import Any, Callable, Optional, Union

from .._exceptions import ApiError, TransportError
from .._http.aio import AsyncEventStream, AsyncTransport
from .._models import JobResponse
from .._policy import Deadline
from . import machine
from .machine import STREAM_END, Answer, JobScope, Scope, Waiter, WaitOptions
from .targets import Target


class AsyncWait:
    """One wait, driven in the running event loop; iterate it (``async for``) for the
    :class:`Ended` (and, with a scope that isolates jobs, :class:`Dropped`) of each job as it
    ends. As :class:`~waylay_jobs._wait.blocking.BlockingWait`: the iteration ends when every
    job has ended (:attr:`results`), or raises what the wait raises; ``options.cancel`` is not
    used (cancel the task instead). Jobs may join (:meth:`add`) and leave (:meth:`remove`)
    while it runs."""

    def __init__(
        self,
        transport: AsyncTransport,
        items: list[Any],
        options: WaitOptions,
        *,
        scope: Scope,
        deadline: Optional[Deadline] = None,
        _clock: Callable[[], float] = time.monotonic,
        _rng: Optional[random.Random] = None,
    ) -> None:
        self.transport = transport
        self.clock = _clock
        self.waiter = Waiter(items, options, scope, _clock, transport.policy, deadline, _rng)
        self.results: list[JobResponse] = []
        self._reader: Optional[_Reader] = None

    def add(self, target: Target) -> None:
        """A job joins the wait; a read in progress is cut short so that it is checked now."""
        self.waiter.add(self.clock(), target)
        if self._reader is not None:
            _wake(self._reader.wakeup)

    def remove(self, target: Target) -> None:
        """A job leaves the wait."""
        self.waiter.remove((str(target.type), target.id))

    async def __aiter__(self) -> AsyncIterator[Union[machine.Ended, machine.Dropped]]:
        waiter = self.waiter
        try:
            while True:
                action = waiter.next_action(self.clock())
                if self._reader is not None and not waiter.keeps_stream:
                    await self._close_stream()
                if isinstance(action, machine.Read):
                    await self._read(action.timeout)
                elif isinstance(action, (machine.Get, machine.ListJobs)):
                    await self._send(action)
                elif isinstance(action, machine.Subscribe):
                    await self._subscribe(action)
                elif isinstance(action, machine.Sleep):
                    await asyncio.sleep(action.seconds)
                elif isinstance(action, (machine.Ended, machine.Dropped)):
                    yield action
                else:
                    self.results = list(action.settle())  # or raises the wait's error
                    return
        finally:
            await self._close_stream()

    async def _send(self, action: Union[machine.Get, machine.ListJobs]) -> None:
        deadline = self.waiter.deadline
        answer: Answer
        try:
            if isinstance(action, machine.Get):
                answer = await self.transport.get_job(
                    action.job_type, action.job_id, deadline=deadline
                )
            else:
                answer = await self.transport.list_jobs(action.params(), deadline=deadline)
        except (ApiError, TransportError) as exc:
            answer = exc
        self.waiter.answered(self.clock(), answer)

    async def _subscribe(self, action: machine.Subscribe) -> None:
        try:
            stream = await self.transport.open_events(
                action.params(), read_timeout=action.read_timeout, deadline=self.waiter.deadline
            )
        except (ApiError, TransportError) as exc:
            self.waiter.subscribe_failed(self.clock(), exc)
            return
        self._reader = _Reader(stream)
        self.waiter.subscribed(self.clock())

    async def _read(self, timeout: float) -> None:
        reader = self._reader
        assert reader is not None
        item = await reader.get(timeout)
        self.waiter.read(self.clock(), item, reader.stream.retry)

    async def _close_stream(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.stop()


class _Reader:
    """Reads one event stream in a task of its own, into a buffer that :meth:`get` waits on
    with a timer (no task per read: thousands of waits share the loop)."""

    def __init__(self, stream: AsyncEventStream) -> None:
        self.stream = stream
        self._items: collections.deque[Any] = collections.deque()
        self.wakeup: Optional[asyncio.Future[None]] = None
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                self._put(await self.stream.next())
        except StopAsyncIteration:
            self._put(STREAM_END)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting task as is
            self._put(exc)

    def _put(self, item: Any) -> None:
        self._items.append(item)
        _wake(self.wakeup)

    async def get(self, timeout: float) -> Any:
        """The next item (an event, an exception, or the end), or ``None`` when none came
        within ``timeout`` seconds (0: only one that has already arrived)."""
        if not self._items and timeout > 0:
            loop = asyncio.get_running_loop()
            self.wakeup = wakeup = loop.create_future()
            timer = loop.call_later(timeout, _wake, wakeup)
            try:
                await wakeup
            finally:
                timer.cancel()
                self.wakeup = None
        return self._items.popleft() if self._items else None

    async def stop(self) -> None:
        """End the reading task and release the connection."""
        self._task.cancel()
        try:
            # asyncio.wait, not await: the reader's CancelledError must not be taken for (or
            # hide) a cancellation of the task that stops it.
            await asyncio.wait([self._task])
        finally:
            await self.stream.aclose()


def _wake(future: Optional[asyncio.Future[None]]) -> None:
    if future is not None and not future.done():
        future.set_result(None)


async def wait_for_async(
    transport: AsyncTransport,
    target: Target,
    options: WaitOptions,
    *,
    deadline: Optional[Deadline] = None,
    _clock: Callable[[], float] = time.monotonic,
    _rng: Optional[random.Random] = None,
) -> JobResponse:
    """Wait until the job ends, as ``JobsClient.wait_for`` does, without blocking the loop.

    Raises:
        JobFailed, WaitTimeout, NotFoundError, AuthError, ApiError, TransportError: as
            ``wait_for`` (cancel the awaiting task to stop it: the stream is closed first).
    """
    wait = AsyncWait(
        transport, [target], options, scope=JobScope(), deadline=deadline, _clock=_clock, _rng=_rng
    )
    async for _ in wait:
        pass
    return wait.results[0]

"""One event stream for every wait of an event loop that uses the same gateway and credentials.

Airflow's triggerer runs up to a thousand triggers in one asyncio loop; with a stream each, a
busy deployment keeps a thousand connections open on the gateway. Here the waits of one loop
that share a gateway, credentials and wait settings join one many-jobs wait
(:class:`~waylay_jobs._wait.machine.SharedScope` on the asyncio driver) over the tenant's
stream: the same checks, confirmations and backoff as ``wait_all``, and each waiter gets its own
job's outcome as soon as it is known. The stream opens with the first waiter whose job still
runs (a waiter that finds no stream to join first looks at its job with one ``get``: a job
that has already ended needs no stream) and closes when the last one leaves (its job ended,
its deadline passed, or its task was cancelled).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Callable, Optional

from .._exceptions import ApiError, JobsError, TransportError, WaitTimeout
from .._http.aio import AsyncTransport
from .._models import TERMINAL_STATES, JobResponse
from .._policy import Deadline
from .aio import AsyncWait
from .machine import Dropped, Key, SharedScope, WaitOptions, error_kind, job_timed_out
from .targets import Target

_GROUPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[object, ...], _Group]] = (
    weakref.WeakKeyDictionary()
)


async def wait_shared(
    transport: AsyncTransport,
    target: Target,
    options: WaitOptions,
    *,
    timeout: Optional[float] = None,
) -> JobResponse:
    """The final job, waited for over the stream this loop's waits share (see the module
    docstring); ``timeout`` is this waiter's own deadline in seconds.

    Only ``idle_timeout``, ``poll_interval`` and ``max_stream_failures`` of ``options`` shape
    the shared wait (waits that differ in them do not share a stream); a failed job is
    returned, not raised.

    Raises:
        WaitTimeout: the job did not end within ``timeout`` (its last known state attached).
        NotFoundError, AuthError, ApiError, TransportError: this job's own error, or one that
            ended the shared wait for every job (refused credentials, say).
    """
    assert target.type is not None, target
    loop = asyncio.get_running_loop()
    groups = _GROUPS.setdefault(loop, {})
    key = (
        transport.gateway_url,
        _identity(transport),
        options.idle_timeout,
        options.poll_interval,
        options.max_stream_failures,
    )
    group = groups.get(key)
    if group is None or group.over:
        group = groups[key] = _Group(transport, options, lambda: groups.pop(key, None))
    return await group.wait(target, Deadline(timeout), timeout)


async def _ended_already(
    transport: AsyncTransport, target: Target, deadline: Deadline
) -> Optional[JobResponse]:
    """The job, when one ``get`` finds it ended; ``None`` when it runs or the get failed for
    a reason the shared wait rides out (it asks again, by the client's policy).

    Raises:
        NotFoundError, AuthError, ApiError: a refusal that no retry changes.
    """
    assert target.type is not None, target
    try:
        job = await transport.get_job(target.type, target.id, deadline=deadline)
    except (ApiError, TransportError) as exc:
        if error_kind(exc) == "fatal":
            raise
        return None
    return job if job.job.state in TERMINAL_STATES else None


def _identity(transport: AsyncTransport) -> tuple[Optional[str], ...]:
    # Kept in memory only, as the transport keeps them; never logged or shown.
    auth = transport.auth
    return (auth.token_url, auth.token, auth.api_key, auth.api_secret, auth.tenant_id)


class _Group:
    """The waiters of one shared wait, and the task that drives it."""

    def __init__(
        self, transport: AsyncTransport, options: WaitOptions, forget: Callable[[], object]
    ) -> None:
        shared = WaitOptions(
            raise_on_failure=False,
            idle_timeout=options.idle_timeout,
            poll_interval=options.poll_interval,
            max_stream_failures=options.max_stream_failures,
        )
        self.transport = transport
        self.driver = AsyncWait(transport, [], shared, scope=SharedScope())
        self.waiters: dict[Key, list[asyncio.Future[JobResponse]]] = {}
        self._ended = False
        self._forget = forget
        self._looking = False
        self._task: Optional[asyncio.Task[None]] = None

    @property
    def over(self) -> bool:
        """Whether this wait takes no more jobs (it finished, failed, or lost its waiters)."""
        return self._ended or self.driver.waiter.over

    async def wait(
        self, target: Target, deadline: Deadline, timeout: Optional[float]
    ) -> JobResponse:
        key = (str(target.type), target.id)
        future: asyncio.Future[JobResponse] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(key, []).append(future)
        self.driver.add(target)
        try:
            if self._task is None and not self._looking:
                await self._look_first(target, deadline, future)
            return await asyncio.wait_for(future, deadline.remaining())
        except asyncio.TimeoutError:
            raise self._timed_out(target, timeout or 0.0) from None
        finally:
            if self._leave(key, future):
                await self._stopped()

    async def _look_first(
        self, target: Target, deadline: Deadline, future: asyncio.Future[JobResponse]
    ) -> None:
        # The first waiter looks at its job with one get before the stream opens: a job that
        # has already ended needs none (after a triggerer restart the triggers are adopted one
        # by one, their jobs often ended meanwhile: each would open a stream just to learn
        # it). Whoever joins in the meantime waits for the stream, which opens unless every
        # waiter is done by then. A job still running is checked again once the stream is
        # up, so an end in between is not missed.
        self._looking = True
        try:
            ended = await _ended_already(self.transport, target, deadline)
            if ended is not None and not future.done():
                future.set_result(ended)
        finally:
            self._looking = False
            if any(not f.done() for futures in self.waiters.values() for f in futures):
                self._task = asyncio.get_running_loop().create_task(self._run())

    def _timed_out(self, target: Target, timeout: float) -> WaitTimeout:
        job = self.driver.waiter.jobs.get((str(target.type), target.id))
        return job_timed_out(target, job, timeout)

    def _leave(self, key: Key, future: asyncio.Future[JobResponse]) -> bool:
        """Forget ``future``; whether it was the last waiter (the wait is then stopping)."""
        futures = self.waiters.get(key, [])
        if future in futures:
            futures.remove(future)
        if futures:
            return False
        self.waiters.pop(key, None)
        self.driver.remove(Target(*key))
        if self.waiters:
            return False
        self._end()  # the next waiter starts a new wait (and looks at its job first)
        if self._task is None:
            return False
        self._task.cancel()
        return True

    async def _stopped(self) -> None:
        # The last waiter returns only once the stream is closed: nothing is left open behind
        # a trigger that has fired or a loop that is about to stop.
        assert self._task is not None
        await asyncio.wait([self._task])

    async def _run(self) -> None:
        try:
            async for outcome in self.driver:
                if isinstance(outcome, Dropped):
                    key = (str(outcome.target.type), outcome.target.id)
                    self._settle(key, error=outcome.error)
                else:
                    job = outcome.job.job
                    self._settle((str(job.type), str(job.job.id)), final=outcome.job)
        except JobsError as exc:
            for key in list(self.waiters):
                self._settle(key, error=exc)
        finally:
            self._end()

    def _settle(
        self,
        key: Key,
        *,
        final: Optional[JobResponse] = None,
        error: Optional[JobsError] = None,
    ) -> None:
        for future in self.waiters.get(key, []):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                assert final is not None
                future.set_result(final)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._forget()

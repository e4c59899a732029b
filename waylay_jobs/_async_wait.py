"""The asyncio driver of the wait machine (``_waiting``), over the httpx transport.

Airflow's deferrable sensor hands its wait to a trigger, and a triggerer runs thousands of
triggers in one event loop: no thread and no blocking call may be spent per wait. This module
carries out a :class:`~waylay_jobs._waiting.JobWaiter`'s decisions with ``await``: ``get`` and
the event stream through :class:`~waylay_jobs._http.aio.AsyncTransport`, pauses with
``asyncio.sleep``. The waiter decides exactly as it does for the blocking ``wait_for``.
Needs ``httpx`` (Airflow 3 depends on it); the rest of the library never imports this module.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Callable, Optional

from ._exceptions import ApiError, StreamError, TransportError
from ._http.aio import AsyncEventStream, AsyncTransport
from ._models import JobResponse
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

    ``target`` must name the job type (``Target(type, id)``): a trigger always knows it.
    Cancelling the awaiting task closes the open stream before ``CancelledError`` propagates.

    Raises:
        JobFailed, WaitTimeout, NotFoundError, AuthError, ApiError, TransportError: as
            ``wait_for`` (``options.cancel`` is not used: cancel the task instead).
    """
    start = _clock()
    if deadline is None:
        deadline = Deadline(options.timeout, clock=_clock, start=start)
    waiter = JobWaiter(
        target,
        options,
        deadline=deadline,
        start=start,
        rng=_rng or random.Random(),  # noqa: S311 - jitter, not cryptography
    )
    stream: Optional[AsyncEventStream] = None
    try:
        while True:
            action = waiter.next_action(_clock())
            if stream is not None and not waiter.keeps_stream:
                await stream.aclose()
                stream = None
            if isinstance(action, Read):
                assert stream is not None
                try:
                    event = await stream.next()
                except StopAsyncIteration:
                    waiter.stream_ended()
                    continue
                except (StreamError, TransportError) as exc:
                    waiter.stream_failed(exc)
                    continue
                finally:
                    if stream.retry is not None:
                        waiter.stream_retry(stream.retry)
                waiter.event_received(event)
            elif isinstance(action, Get):
                try:
                    job = await transport.get_job(action.job_type, action.job_id, deadline=deadline)
                except (ApiError, TransportError) as exc:
                    waiter.get_failed(exc)
                else:
                    waiter.job_received(job)
            elif isinstance(action, Subscribe):
                params = encode_events_query(
                    type=action.job_type, id=action.job_id, children=action.children
                )
                try:
                    stream = await transport.open_events(
                        params, read_timeout=action.read_timeout, deadline=deadline
                    )
                except (ApiError, TransportError) as exc:
                    waiter.subscribe_failed(exc)
                else:
                    waiter.subscribed()
            elif isinstance(action, Pause):
                if action.seconds > 0:
                    await asyncio.sleep(action.seconds)
            elif isinstance(action, Finish):
                return action.job
            else:
                assert isinstance(action, Fail)
                raise action.error
    finally:
        if stream is not None:
            await stream.aclose()

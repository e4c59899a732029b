"""Calling the blocking wait driver directly, with a fake sleep where a test needs one."""

from __future__ import annotations

from typing import Any, Callable, Optional

from waylay_jobs import JobResponse, JobsClient
from waylay_jobs._wait import blocking as _blocking
from waylay_jobs._wait.machine import WaitOptions


def wait_with(
    client: JobsClient,
    job: Any,
    *,
    _sleep: Optional[Callable[[float], None]] = None,
    **options: Any,
) -> JobResponse:
    """``client.wait_for(job, **options)``, with ``_sleep`` instead of ``time.sleep``."""
    return _blocking.wait_for(client.transport, job, WaitOptions(**options), _sleep=_sleep)


def wait_all_with(
    client: JobsClient,
    jobs: Any,
    *,
    _sleep: Optional[Callable[[float], None]] = None,
    **options: Any,
) -> list[JobResponse]:
    """``client.wait_all(jobs, **options)``, with ``_sleep`` instead of ``time.sleep`` and
    every :class:`WaitOptions` field available (``max_stream_failures`` too)."""
    wait = _blocking.many_wait(client.transport, jobs, WaitOptions(**options), _sleep=_sleep)
    for _ in wait:
        pass
    return wait.results

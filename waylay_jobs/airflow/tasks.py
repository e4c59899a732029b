"""Waiting for a job inside a task: :func:`wait_for_job`, and :func:`job_summary` for XCom."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType
from typing import Any, Callable, Optional, Union

from .._exceptions import JobFailed
from .._models import Event, JobResponse
from ._sdk import AirflowFailException, AirflowTaskTerminated
from .hooks import client_from_connection

__all__ = ["job_summary", "wait_for_job"]


def job_summary(job: JobResponse) -> dict[str, Any]:
    """A small JSON document about a job, for XCom: type, id, state, result and the like."""
    wire = job.job.to_wire()
    status = wire.get("job") or {}
    return {
        "type": wire.get("type"),
        "id": status.get("id"),
        "state": wire.get("state"),
        "operation": wire.get("operation"),
        "function": wire.get("function"),
        "created_at": wire.get("createdAt"),
        "finished_at": wire.get("finishedAt"),
        "attempts_made": wire.get("attemptsMade"),
        "failed_reason": status.get("failedReason"),
        "result": wire.get("result"),
    }


def wait_for_job(
    job: Any,
    conn_id: Optional[str] = None,
    timeout: Union[float, timedelta, None] = None,
    *,
    children: bool = False,
    on_event: Optional[Callable[[Event], Any]] = None,
) -> JobResponse:
    """``client.wait_for`` for a ``@task``: returns the final job, or fails the task.

    Args:
        job: anything ``JobsClient.wait_for`` accepts, or a mapping with ``type`` and ``id``
            (such as :func:`job_summary`'s, pulled from XCom).
        conn_id: the Airflow connection to use; ``None`` reads the ``WAYLAY_*`` variables.
        timeout: overall deadline (seconds or a ``timedelta``); ``None`` waits as long as the
            job runs. Airflow's ``execution_timeout`` stops the wait too.
        children, on_event: as for ``JobsClient.wait_for``.

    Raises:
        AirflowFailException: the job failed (the message carries its ``failedReason``);
            the task is not retried, as a retry would only find the same failed job.
        AirflowTaskTerminated: the task was killed (SIGTERM) during the wait.
        WaitTimeout, JobsError: as ``JobsClient.wait_for``; the task may be retried.

    While it waits in the main thread, a SIGTERM (Airflow's task kill) runs Airflow's own
    handler and then ends the wait at once; the connection is closed either way.

    Example::

        @task(execution_timeout=timedelta(hours=1))
        def deploy_done(job_id: str) -> dict:
            return job_summary(wait_for_job(("deploy", job_id), conn_id="waylay_default"))
    """
    if isinstance(job, Mapping):
        job = (job.get("type"), job.get("id"))
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    with client_from_connection(conn_id) as client, _stop_on_sigterm():
        try:
            return client.wait_for(job, timeout=seconds, children=children, on_event=on_event)
        except JobFailed as exc:
            raise AirflowFailException(str(exc)) from exc


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Make SIGTERM raise ``AirflowTaskTerminated`` after Airflow's own handler has run.

    Airflow 3's task runner only calls ``on_kill`` on SIGTERM and sends SIGKILL seconds later;
    raising instead ends the wait now, and the stream is closed on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield
        return

    def on_term(signum: int, frame: Optional[FrameType]) -> None:
        if callable(previous):
            previous(signum, frame)
        raise AirflowTaskTerminated("received SIGTERM while waiting for a Waylay job")

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)

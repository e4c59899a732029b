"""``WaylayJobTrigger``: waits for a job in Airflow's triggerer, over an event stream that the
triggers of one triggerer share.

A triggerer runs every deferred task's trigger in one asyncio event loop. The triggers in it
that use the same gateway, credentials and wait settings join one many-jobs wait over the
tenant's event stream (``waylay_jobs._wait.shared``): one connection for all of them, the same
decisions as ``JobsClient.wait_all`` (subscribe, then check every job with ``get`` or ``list``;
confirm every end with ``get``; reconnect with backoff; poll after repeated stream failures),
and each trigger yields its own event as soon as its job ends. The stream closes when the last
trigger leaves. Each trigger keeps its own deadline. It yields one event and ends.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Optional

from .._defaults import DEFAULT_IDLE_TIMEOUT, DEFAULT_POLL_INTERVAL
from .._exceptions import ApiError, JobsError, WaitTimeout
from .._http.aio import AsyncTransport
from .._wait.machine import WaitOptions
from .._wait.shared import wait_shared
from .._wait.targets import Target
from ._sdk import AirflowNotFoundException, BaseTrigger, TriggerEvent
from .hooks import WaylayJobsHook
from .tasks import job_summary

__all__ = ["WaylayJobTrigger"]


class WaylayJobTrigger(BaseTrigger):  # type: ignore[misc,unused-ignore]
    """Fire one ``TriggerEvent`` when a Waylay job ends, or when waiting for it fails.

    The event's payload is a dict with ``status`` and ``message``:

    * ``"completed"`` / ``"failed"``: the job ended; ``job`` is its :func:`job_summary`
      (the dict :class:`WaylayJobSensor` pushes to XCom), ``message`` names the job and, when
      it failed, its ``failedReason``;
    * ``"timeout"``: ``end_time`` passed first; ``job`` is the last summary seen, or ``None``;
    * ``"error"``: the wait failed otherwise (an unknown job, refused credentials, a gateway
      that never answered, a connection that is not defined or not usable); ``error`` is the
      exception's class name (``NotFoundError``, ``AuthError``, ``ConfigError``, ...),
      ``status_code`` the HTTP status when there was one.

    Args:
        job_type: the job type (``build``, ``deploy``, ...).
        job_id: the job id.
        waylay_conn_id: the Airflow connection; ``None`` reads the ``WAYLAY_*`` variables.
        end_time: the deadline as a UNIX timestamp (seconds), or ``None`` for none. A wall-clock
            time rather than a duration, so that a trigger rebuilt after a triggerer restart
            keeps the deadline it was given.
        idle_timeout: seconds without a byte on the stream before the connection is presumed
            dead (then the state is checked and the stream reopened).
        poll_interval: seconds between ``get`` calls once the stream has failed repeatedly.
    """

    def __init__(
        self,
        job_type: str,
        job_id: str,
        waylay_conn_id: Optional[str] = None,
        end_time: Optional[float] = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__()
        self.job_type = job_type
        self.job_id = job_id
        self.waylay_conn_id = waylay_conn_id
        self.end_time = end_time
        self.idle_timeout = idle_timeout
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the keyword arguments that rebuild this trigger exactly."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_type": self.job_type,
                "job_id": self.job_id,
                "waylay_conn_id": self.waylay_conn_id,
                "end_time": self.end_time,
                "idle_timeout": self.idle_timeout,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait for the job; yield one event (see the class docstring).

        Cancelling the task (the triggerer does, when the task is cleared or marked, or when the
        trigger moves) closes the stream's connection before the cancellation propagates.
        """
        yield TriggerEvent(await self._wait())

    async def _wait(self) -> dict[str, Any]:
        label = f"{self.job_type} job {self.job_id}"
        try:
            options = WaitOptions(
                raise_on_failure=False,
                idle_timeout=self.idle_timeout,
                poll_interval=self.poll_interval,
            )
            hook = WaylayJobsHook(waylay_conn_id=self.waylay_conn_id)
            transport = AsyncTransport(await hook.aget_credentials())
            timeout = None if self.end_time is None else max(0.0, self.end_time - time.time())
            target = Target(self.job_type, self.job_id)
            final = await wait_shared(transport, target, options, timeout=timeout)
        except WaitTimeout as exc:
            last = None if exc.last_job is None else job_summary(exc.last_job)
            return {"status": "timeout", "job": last, "message": str(exc)}
        except AirflowNotFoundException as exc:
            # Said in the task's log, rather than as a trigger failure in the triggerer's.
            return {
                "status": "error",
                "error": "ConfigError",
                "status_code": None,
                "message": f"waiting for {label}: {exc}",
            }
        except JobsError as exc:
            status_code = exc.status_code if isinstance(exc, ApiError) else None
            return {
                "status": "error",
                "error": type(exc).__name__,
                "status_code": status_code,
                "message": str(exc),
            }
        summary = job_summary(final)
        if summary["state"] == "failed":
            reason = summary["failed_reason"] or "the server gave no reason"
            return {"status": "failed", "job": summary, "message": f"{label} failed: {reason}"}
        return {"status": "completed", "job": summary, "message": f"{label} completed"}

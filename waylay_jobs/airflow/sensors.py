"""``WaylayJobSensor``: wait for a job with one ``get`` per poke, or deferred to a trigger."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Optional

from .._exceptions import NotFoundError
from ._sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
    conf,
)
from .hooks import client_from_connection
from .tasks import job_summary
from .triggers import WaylayJobTrigger

__all__ = ["WaylayJobSensor"]


class WaylayJobSensor(BaseSensorOperator):  # type: ignore[misc,unused-ignore]
    """Wait for a Waylay job: succeed when it completes, fail (no retry) when it fails.

    On ``completed`` the sensor pushes :func:`job_summary` of the final job as its XCom return
    value; on ``failed`` it raises ``AirflowFailException`` with the job's ``failedReason`` (a
    skip with ``soft_fail=True``). An unknown job fails the same way.

    With ``deferrable=True`` the sensor checks the job once; a job that has already ended
    finishes the task there. Otherwise the task defers to :class:`WaylayJobTrigger`, which
    follows the job's event stream in the triggerer: no worker slot is held, and the task
    resumes as soon as the job ends. The sensor's ``timeout`` is the trigger's deadline (an
    ``AirflowSensorTimeout``, not retried). Other errors of the trigger (refused credentials,
    a gateway that never answered) fail the task as an ordinary error (retried per
    ``retries``).

    Without deferral each poke creates a client, sends one ``get`` and closes the client, so in
    ``mode="reschedule"`` nothing is held between pokes. Every error other than a failed or
    unknown job fails the poke as usual (retried per ``retries``, or ignored with
    ``silent_fail``).

    Args:
        job_type: the job type (``build``, ``deploy``, ...); templated.
        job_id: the job id; templated (say ``"{{ ti.xcom_pull('start')['id'] }}"``).
        waylay_conn_id: the Airflow connection (see :mod:`waylay_jobs.airflow.hooks`);
            ``None`` reads the ``WAYLAY_*`` environment variables.
        deferrable: defer to the triggerer while the job runs. The default is Airflow's
            ``[operators] default_deferrable`` setting (``False`` unless set), as for the
            official providers' sensors.
        **kwargs: the usual sensor options: ``poke_interval``, ``timeout``, ``mode``,
            ``soft_fail``, ``exponential_backoff``, ...
    """

    template_fields: Sequence[str] = ("job_type", "job_id", "waylay_conn_id")
    ui_color = "#d9ecff"

    def __init__(
        self,
        *,
        job_type: str,
        job_id: str,
        waylay_conn_id: Optional[str] = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_type = job_type
        self.job_id = job_id
        self.waylay_conn_id = waylay_conn_id
        self.deferrable = deferrable

    @property
    def _label(self) -> str:
        return f"{self.job_type} job {self.job_id}"

    def execute(self, context: Context) -> Any:
        """Poke as usual; with ``deferrable=True``, check once and then defer."""
        if not self.deferrable:
            return super().execute(context)
        started = time.time()
        try:
            checked = self.poke(context)
        except AirflowFailException as exc:
            # What BaseSensorOperator.execute's poke loop does, which this path bypasses.
            if self.soft_fail or getattr(self, "never_fail", False):  # not in every Airflow 3
                raise AirflowSkipException(f"skipped ({exc}); soft_fail or never_fail") from exc
            raise
        if checked.is_done:
            return checked.xcom_value
        trigger = WaylayJobTrigger(
            job_type=self.job_type,
            job_id=self.job_id,
            waylay_conn_id=self.waylay_conn_id,
            end_time=started + float(self.timeout),
        )
        self.log.info("%s has not ended: deferring to the triggerer", self._label)
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            # Airflow's own limit too; the trigger's deadline (counted from before the check)
            # comes first, and its event carries the job's last state.
            timeout=timedelta(seconds=float(self.timeout)),
        )
        return None  # not reached: defer() raises TaskDeferred

    def execute_complete(self, context: Context, event: Optional[dict[str, Any]] = None) -> Any:
        """Resume after the trigger fired: return the summary (XCom) or raise."""
        if not isinstance(event, dict) or "status" not in event:
            raise AirflowException(f"expected an event of WaylayJobTrigger, got {event!r}")
        status, message = event["status"], str(event.get("message"))
        if status == "completed":
            self.log.info("%s", message)
            return event["job"]
        # BaseSensorOperator.resume_execution turns these into a skip under soft_fail.
        if status == "failed" or (status == "error" and event.get("error") == "NotFoundError"):
            raise AirflowFailException(message)  # a retry would find the same job
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        raise AirflowException(message)

    def poke(self, context: Context) -> PokeReturnValue:
        """Check the job once."""
        with client_from_connection(self.waylay_conn_id) as client:
            try:
                job = client.get(self.job_type, self.job_id)
            except NotFoundError as exc:
                raise AirflowFailException(str(exc)) from exc
        details = job.job
        label = self._label
        if details.state == "completed":
            self.log.info("%s completed", label)
            return PokeReturnValue(is_done=True, xcom_value=job_summary(job))
        if details.state == "failed":
            reason = details.job.failed_reason or "the server gave no reason"
            raise AirflowFailException(f"{label} failed: {reason}")
        progress = details.job.numeric_progress
        self.log.info(
            "%s is %s%s",
            label,
            details.state or "in an unknown state",
            "" if progress is None else f", progress {progress:g}",
        )
        return PokeReturnValue(is_done=False)

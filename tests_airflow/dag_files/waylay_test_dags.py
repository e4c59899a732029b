"""The DAGs the Airflow tests run with ``dag.test()``; the job ids come from the run's conf.

The tasks reach the fake registry through the ``waylay_fake`` connection or the ``WAYLAY_*``
variables that the ``registry`` fixture sets. ``RECORDED`` and ``after_wait`` let a test see
inside a task: the tests import this module, and ``dag.test()`` runs its tasks in-process.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

try:
    from airflow.sdk import DAG, get_current_context, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task
    from airflow.models.dag import DAG
    from airflow.operators.python import get_current_context

from waylay_jobs import JobEvent, JobsClient
from waylay_jobs.airflow import WaylayJobSensor, job_summary, wait_for_job

CONN_ID = "waylay_fake"
JOB_ID = "{{ dag_run.conf['job_id'] }}"
START = datetime(2024, 1, 1)
NO_RETRY_DELAY = {"retries": 2, "retry_delay": timedelta(0)}

#: What the ``record`` tasks received, in order.
RECORDED: list[Any] = []


def after_wait() -> None:
    """Called in ``outlive_execution_timeout`` once the wait has ended, before the client
    closes; a test puts its own check here."""


@task
def record(value: Any) -> None:
    RECORDED.append(value)


with DAG(
    "waylay_wait_for_job", schedule=None, start_date=START, default_args=NO_RETRY_DELAY
) as wait_for_job_dag:

    @task
    def wait(job_id: str) -> dict[str, Any]:
        return job_summary(wait_for_job(("build", job_id), conn_id=CONN_ID, timeout=60))

    record(wait(JOB_ID))


with DAG(
    "waylay_client_retry",
    schedule=None,
    start_date=START,
    default_args={"retries": 1, "retry_delay": timedelta(0)},
) as client_retry_dag:

    @task
    def wait_then_break(job_id: str) -> str:
        """Plain ``client.wait_for``; the first try breaks after the job completed."""
        try_number = get_current_context()["ti"].try_number
        events: list[str] = []

        def seen(event: Any) -> None:
            if isinstance(event, JobEvent):
                events.append(str(event.state))

        with JobsClient.from_env() as client:
            final = client.wait_for(("build", job_id), timeout=60, on_event=seen)
        RECORDED.append((try_number, str(final.job.state), events))
        if try_number == 1:
            raise RuntimeError("a later step of the task broke")
        return str(final.job.state)

    wait_then_break(JOB_ID)


with DAG("waylay_execution_timeout", schedule=None, start_date=START) as execution_timeout_dag:

    @task(execution_timeout=timedelta(seconds=1))
    def outlive_execution_timeout(job_id: str) -> None:
        client = JobsClient.from_env()
        try:
            client.wait_for(("build", job_id))
        finally:
            after_wait()
            client.close()

    outlive_execution_timeout(JOB_ID)


with DAG("waylay_task_kill", schedule=None, start_date=START) as task_kill_dag:

    @task
    def killed(job_id: str) -> None:
        wait_for_job(("build", job_id), conn_id=CONN_ID, timeout=30)

    killed(JOB_ID)


with DAG(
    "waylay_sensor", schedule=None, start_date=START, default_args=NO_RETRY_DELAY
) as sensor_dag:
    record(
        WaylayJobSensor(
            task_id="job_done",
            job_type="build",
            job_id=JOB_ID,
            waylay_conn_id=CONN_ID,
            mode="reschedule",
            poke_interval=0.2,
            timeout=60,
        ).output
    )


with DAG("waylay_sensor_soft_fail", schedule=None, start_date=START) as sensor_soft_fail_dag:
    WaylayJobSensor(
        task_id="job_done",
        job_type="build",
        job_id=JOB_ID,
        mode="reschedule",
        poke_interval=0.2,
        timeout=60,
        soft_fail=True,
    )


with DAG(
    "waylay_sensor_timeout", schedule=None, start_date=START, default_args=NO_RETRY_DELAY
) as sensor_timeout_dag:
    WaylayJobSensor(
        task_id="job_done",
        job_type="build",
        job_id=JOB_ID,
        waylay_conn_id=CONN_ID,
        poke_interval=0.05,
        timeout=0.3,
    )


with DAG(
    "waylay_deferrable", schedule=None, start_date=START, default_args=NO_RETRY_DELAY
) as deferrable_dag:
    record(
        WaylayJobSensor(
            task_id="job_done",
            job_type="build",
            job_id=JOB_ID,
            waylay_conn_id=CONN_ID,
            deferrable=True,
            timeout=60,
        ).output
    )


with DAG("waylay_deferrable_soft_fail", schedule=None, start_date=START) as deferrable_soft_dag:
    WaylayJobSensor(
        task_id="job_done",
        job_type="build",
        job_id=JOB_ID,
        deferrable=True,
        timeout=60,
        soft_fail=True,
    )


with DAG(
    "waylay_deferrable_timeout", schedule=None, start_date=START, default_args=NO_RETRY_DELAY
) as deferrable_timeout_dag:
    WaylayJobSensor(
        task_id="job_done",
        job_type="build",
        job_id=JOB_ID,
        waylay_conn_id=CONN_ID,
        deferrable=True,
        timeout=1,
    )

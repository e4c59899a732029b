"""Waiting for a job inside an Airflow task, on real Airflow (``dag.test()``) and the fake.

``dag.test()`` runs each task in this process, with Airflow's own task runner: its logging,
its ``execution_timeout`` (SIGALRM) and its SIGTERM handler. The task runner's own log lines
(the task's exception included) go to the current stdout, read here with ``capfd``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Iterator

import pytest
import waylay_test_dags as dags
from airflow_names import AIRFLOW_V_3_0_PLUS, EXCEPTIONS
from conftest import after_first_check, gateway_connections, run_dag

from waylay_jobs.testing import FakeRegistry


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    dags.RECORDED.clear()
    after_wait = dags.after_wait
    yield
    dags.after_wait = after_wait


def test_wait_for_job_succeeds_logs_progress_and_returns_the_summary(
    registry: FakeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = registry.add_job("build", "manual")

    def play() -> None:
        registry.transition("build", job_id, "active", progress=50)
        registry.transition("build", job_id, "completed")

    with after_first_check(job_id, play):
        tis = run_dag(dags.wait_for_job_dag, job_id=job_id)

    assert tis["wait"].state == "success"
    assert tis["record"].state == "success"
    [summary] = dags.RECORDED
    assert (summary["type"], summary["id"], summary["state"]) == ("build", job_id, "completed")
    assert summary["result"] is not None
    assert isinstance(summary["created_at"], str)  # the wire text: XCom takes JSON only
    json.dumps(summary)
    # Emitted at INFO under Airflow's own logging configuration (no level set by the test),
    # through the standard logging module: what Airflow's handlers put in the task log.
    progress = [
        r.getMessage()
        for r in caplog.records
        if r.name == "waylay_jobs" and r.levelno == logging.INFO and job_id in r.getMessage()
    ]
    assert f"build job {job_id} is active (" in "\n".join(progress)
    assert progress[-1].startswith(f"build job {job_id} is completed")


def test_wait_for_job_on_a_failing_job_fails_the_task_without_retry(
    registry: FakeRegistry, capfd: pytest.CaptureFixture[str]
) -> None:
    job_id = registry.add_job(
        "build", "fail", reason="compile error: missing semicolon", start="subscribe"
    )

    tis = run_dag(dags.wait_for_job_dag, job_id=job_id)

    assert tis["wait"].state == "failed"
    assert tis["wait"].try_number == 1  # retries=2, but AirflowFailException means no retry
    assert tis["record"].state == "upstream_failed"
    out = capfd.readouterr().out
    failure = {line for line in out.splitlines() if line.startswith(f"{EXCEPTIONS}.")}
    # One exception (Airflow 2.11's console handlers print its traceback twice).
    assert failure == {
        f"{EXCEPTIONS}.AirflowFailException: build job {job_id} failed: "
        "compile error: missing semicolon"
    }


def test_client_wait_for_on_retry_of_a_finished_job_returns_at_once(
    registry: FakeRegistry,
) -> None:
    job_id = registry.add_job("build", "manual")

    def play() -> None:
        registry.transition("build", job_id, "active")
        registry.transition("build", job_id, "completed")

    with after_first_check(job_id, play):
        tis = run_dag(dags.client_retry_dag, job_id=job_id)

    assert tis["wait_then_break"].state == "success"
    assert tis["wait_then_break"].try_number == 2
    (first, state1, events1), (second, state2, events2) = dags.RECORDED
    assert (first, state1, second, state2) == (1, "completed", 2, "completed")
    assert events1 == ["active", "completed"]
    assert events2 == []  # the retry saw the job had ended: no event was waited for


def test_execution_timeout_stops_the_wait_with_the_stream_closed(
    registry: FakeRegistry, capfd: pytest.CaptureFixture[str]
) -> None:
    job_id = registry.add_job("build", "manual")
    stream_state: list[str] = []

    def after_wait() -> None:
        # Still inside the task, the client not closed yet: the wait itself hung up.
        registry.wait_for_open_streams(0, timeout=10)
        stream_state.append(f"open streams: {registry.open_streams}")

    dags.after_wait = after_wait

    tis = run_dag(dags.execution_timeout_dag, job_id=job_id)

    assert tis["outlive_execution_timeout"].state == "failed"
    assert registry.subscriptions == 1
    assert stream_state == ["open streams: 0"]
    assert registry.get_job_state("build", job_id) == "waiting"  # it never ended
    assert f"{EXCEPTIONS}.AirflowTaskTimeout" in capfd.readouterr().out
    assert gateway_connections(registry.port) == []


def test_a_task_kill_stops_wait_for_job_at_once(
    registry: FakeRegistry, capfd: pytest.CaptureFixture[str]
) -> None:
    job_id = registry.add_job("build", "manual")

    def kill() -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    with after_first_check(job_id, kill):
        tis = run_dag(dags.task_kill_dag, job_id=job_id)

    assert tis["killed"].state == "failed"
    assert registry.get_job_state("build", job_id) == "waiting"
    # Airflow 3's handler only calls on_kill, and wait_for_job raises after it; Airflow 2.11's
    # raises AirflowTaskTerminated itself, which ends the wait just as well.
    said = (
        "received SIGTERM while waiting for a Waylay job"
        if AIRFLOW_V_3_0_PLUS
        else f"{EXCEPTIONS}.AirflowTaskTerminated: Task received SIGTERM signal"
    )
    assert said in capfd.readouterr().out
    registry.wait_for_open_streams(0, timeout=10)
    assert gateway_connections(registry.port) == []
    assert "_stop_on_sigterm" not in getattr(signal.getsignal(signal.SIGTERM), "__qualname__", "")

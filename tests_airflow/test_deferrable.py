"""``WaylayJobSensor(deferrable=True)`` on real Airflow: ``dag.test()`` runs its trigger in line.

The sensor checks the job once with ``get``; a job still running defers the task to
``WaylayJobTrigger``, which follows the job's event stream; ``dag.test()`` runs that trigger
in this process (as a triggerer would, in an event loop) and resumes the task with its event.
"""

from __future__ import annotations

import threading
from urllib.parse import quote

import pytest
import waylay_test_dags as dags
from airflow_names import EXCEPTIONS
from conftest import gateway_connections, run_dag, serving

from waylay_jobs.testing import FakeRegistry, Faults

EVENTS = "/registry/v2/jobs/events"


@pytest.fixture(autouse=True)
def _clean() -> None:
    dags.RECORDED.clear()


def job_path(job_id: str) -> str:
    return "/registry/v2/jobs/build/" + quote(job_id, safe="")


def paths(registry: FakeRegistry) -> list[str]:
    return [r.path for r in registry.requests]


def trigger_ran(caplog: pytest.LogCaptureFixture) -> bool:
    return any("running trigger in line" in r.getMessage() for r in caplog.records)


def test_a_running_job_defers_and_the_trigger_pushes_the_summary(
    registry: FakeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    # The job starts once a stream subscribes to it: only the trigger's stream can end it.
    job_id = registry.add_job("build", "success", start="subscribe")

    tis = run_dag(dags.deferrable_dag, job_id=job_id)

    assert tis["job_done"].state == "success"
    assert tis["record"].state == "success"
    [summary] = dags.RECORDED
    assert (summary["type"], summary["id"], summary["state"]) == ("build", job_id, "completed")
    assert summary["result"] is not None
    # The sensor's check, then the trigger: with no shared stream to join yet it looks at the
    # job once, then subscribes, checks and confirms the end.
    assert paths(registry)[:3] == [job_path(job_id), job_path(job_id), EVENTS]
    assert paths(registry).count(EVENTS) == 1
    assert {r.header("Authorization") for r in registry.requests} == {"Bearer from-connection"}
    assert trigger_ran(caplog)
    assert gateway_connections(registry.port) == []


def test_a_job_that_fails_while_deferred_fails_the_task_without_retry(
    registry: FakeRegistry, capfd: pytest.CaptureFixture[str]
) -> None:
    job_id = registry.add_job(
        "build", "fail", reason="compile error: missing semicolon", start="subscribe"
    )

    tis = run_dag(dags.deferrable_dag, job_id=job_id)

    assert tis["job_done"].state == "failed"
    assert tis["job_done"].try_number == 1  # retries=2, but a failed job is final
    assert tis["record"].state == "upstream_failed"
    assert EVENTS in paths(registry)
    assert (
        f"{EXCEPTIONS}.AirflowFailException: build job {job_id} failed: "
        "compile error: missing semicolon"
    ) in capfd.readouterr().out


@pytest.mark.parametrize(
    ("script", "state"), [("finished", "success"), ("finished-failed", "failed")]
)
def test_an_ended_job_finishes_without_deferring(
    registry: FakeRegistry, caplog: pytest.LogCaptureFixture, script: str, state: str
) -> None:
    job_id = registry.add_job("build", script, reason="out of memory")

    tis = run_dag(dags.deferrable_dag, job_id=job_id)

    assert tis["job_done"].state == state
    assert tis["job_done"].try_number == 1
    assert paths(registry) == [job_path(job_id)]  # one get, no trigger
    assert not trigger_ran(caplog)
    if state == "success":
        [summary] = dags.RECORDED
        assert summary["state"] == "completed"


def test_the_trigger_rides_out_a_stream_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    # The trigger's stream breaks after one job event; the job goes on and completes, and the
    # trigger hears of it over the stream it opens again.
    with serving(monkeypatch, Faults(drop_after=1, times=1)) as registry:
        job_id = registry.add_job("build", "manual")

        def play() -> None:
            registry.wait_for_subscribers(1, timeout=30)
            registry.transition("build", job_id, "active", final=False)  # the stream drops
            registry.wait_for_subscribers(2, timeout=30)
            registry.transition("build", job_id, "completed")

        player = threading.Thread(target=play)
        player.start()
        tis = run_dag(dags.deferrable_dag, job_id=job_id)
        player.join(30)

        assert tis["job_done"].state == "success"
        [summary] = dags.RECORDED
        assert summary["state"] == "completed"
        assert registry.subscriptions == 2  # subscribed again after the drop


def test_soft_fail_skips_a_job_that_fails_while_deferred(registry: FakeRegistry) -> None:
    job_id = registry.add_job("build", "fail", reason="broken", start="subscribe")

    tis = run_dag(dags.deferrable_soft_dag, job_id=job_id)

    assert tis["job_done"].state == "skipped"
    assert EVENTS in paths(registry)
    assert {r.header("Authorization") for r in registry.requests} == {"Bearer from-environment"}


def test_soft_fail_skips_a_job_that_had_failed_before_the_check(registry: FakeRegistry) -> None:
    job_id = registry.add_job("build", "finished-failed", reason="broken")

    tis = run_dag(dags.deferrable_soft_dag, job_id=job_id)

    assert tis["job_done"].state == "skipped"
    assert paths(registry) == [job_path(job_id)]


def test_the_sensor_timeout_is_the_triggers_deadline(
    registry: FakeRegistry, capfd: pytest.CaptureFixture[str]
) -> None:
    job_id = registry.add_job("build", "manual")

    tis = run_dag(dags.deferrable_timeout_dag, job_id=job_id)

    assert tis["job_done"].state == "failed"
    assert tis["job_done"].try_number == 1  # a sensor timeout is not retried
    out = capfd.readouterr().out
    assert "AirflowSensorTimeout" in out
    assert f"build job {job_id} did not end within" in out
    assert gateway_connections(registry.port) == []

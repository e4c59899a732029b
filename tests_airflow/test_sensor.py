"""``WaylayJobSensor`` on real Airflow (``dag.test()``) against the fake registry."""

from __future__ import annotations

import threading
from urllib.parse import quote

import pytest
import waylay_test_dags as dags
from airflow_names import EXCEPTIONS
from conftest import gateway_connections, run_dag

from waylay_jobs.testing import FakeRegistry


@pytest.fixture(autouse=True)
def _clean() -> None:
    dags.RECORDED.clear()


def job_path(job_id: str) -> str:
    return "/registry/v2/jobs/build/" + quote(job_id, safe="")


def test_reschedule_mode_succeeds_and_pushes_the_summary(registry: FakeRegistry) -> None:
    job_id = registry.add_job("build", "manual")
    path = job_path(job_id)

    def complete_at_second_poke() -> None:
        # The first poke's answer was read before the second poke was sent: it saw "waiting".
        registry.wait_for_requests(2, path=path, timeout=60)
        registry.transition("build", job_id, "completed")

    completer = threading.Thread(target=complete_at_second_poke)
    completer.start()
    try:
        tis = run_dag(dags.sensor_dag, job_id=job_id)
    finally:
        completer.join()

    assert tis["job_done"].state == "success"
    assert tis["record"].state == "success"
    [summary] = dags.RECORDED
    assert (summary["type"], summary["id"], summary["state"]) == ("build", job_id, "completed")
    assert summary["failed_reason"] is None
    paths = [r.path for r in registry.requests]
    assert paths.count(path) >= 2
    assert set(paths) == {path}  # one get per poke, no event stream
    assert {r.header("Authorization") for r in registry.requests} == {"Bearer from-connection"}
    assert gateway_connections(registry.port) == []  # each poke closed its client


def test_reschedule_mode_fails_without_retry_on_a_failed_job(
    registry: FakeRegistry, capfd: pytest.CaptureFixture[str]
) -> None:
    job_id = registry.add_job("build", "finished-failed", reason="quota exceeded: 3 builds/hour")

    tis = run_dag(dags.sensor_dag, job_id=job_id)

    assert tis["job_done"].state == "failed"
    assert tis["job_done"].try_number == 1  # retries=2, but a failed job is final
    assert tis["record"].state == "upstream_failed"
    assert [r.path for r in registry.requests] == [job_path(job_id)]
    assert (
        f"{EXCEPTIONS}.AirflowFailException: build job {job_id} failed: "
        "quota exceeded: 3 builds/hour"
    ) in capfd.readouterr().out


def test_an_unknown_job_fails_without_retry(registry: FakeRegistry) -> None:
    tis = run_dag(dags.sensor_dag, job_id="no-such-job")

    assert tis["job_done"].state == "failed"
    assert tis["job_done"].try_number == 1


def test_soft_fail_skips_on_a_failed_job_with_credentials_from_the_environment(
    registry: FakeRegistry,
) -> None:
    job_id = registry.add_job("build", "finished-failed", reason="broken")

    tis = run_dag(dags.sensor_soft_fail_dag, job_id=job_id)

    assert tis["job_done"].state == "skipped"
    assert all(r.header("Authorization") == "Bearer from-environment" for r in registry.requests)


def test_poke_mode_times_out_on_a_job_that_does_not_end(registry: FakeRegistry) -> None:
    job_id = registry.add_job("build", "manual")

    tis = run_dag(dags.sensor_timeout_dag, job_id=job_id)

    assert tis["job_done"].state == "failed"
    assert tis["job_done"].try_number == 1  # a sensor timeout is not retried
    assert [r.path for r in registry.requests].count(job_path(job_id)) >= 2
    assert gateway_connections(registry.port) == []

"""``WaylayJobsHook`` and the provider registration, on real Airflow against the fake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.providers_manager import ProvidersManager
from airflow_names import BaseHook

import waylay_jobs
from waylay_jobs import JobsClient
from waylay_jobs.airflow import WaylayJobsHook
from waylay_jobs.testing import FakeRegistry


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRegistry]:
    """A fake that accepts only the token ``good``; connections ``waylay_good``/``_bad``."""
    with FakeRegistry(speed=0.01, tokens=("good",)) as reg:
        for name, token in (("GOOD", "good"), ("BAD", "bad-token-value")):
            conn = {"conn_type": "waylay", "host": reg.url, "extra": {"token": token}}
            monkeypatch.setenv(f"AIRFLOW_CONN_WAYLAY_{name}", json.dumps(conn))
        yield reg


def hooks() -> Any:
    """The hooks by connection type: the task SDK's own providers manager where Airflow has
    one (3.2+: ``ProvidersManager.hooks`` is deprecated there), else ``ProvidersManager``'s."""
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
    except ImportError:  # Airflow 2.11 to 3.1
        return ProvidersManager().hooks
    return ProvidersManagerTaskRuntime().hooks


def test_the_provider_is_registered_with_the_waylay_connection_type() -> None:
    manager = ProvidersManager()

    provider = manager.providers["waylay-jobs"]
    assert provider.version == waylay_jobs.__version__
    hook = hooks()["waylay"]
    assert hook is not None
    assert (hook.hook_class_name, hook.hook_name, hook.connection_testable) == (
        "waylay_jobs.airflow.hooks.WaylayJobsHook",
        "Waylay",
        True,
    )
    behaviour = manager.field_behaviours["waylay"]
    assert behaviour["relabeling"] == WaylayJobsHook.get_ui_field_behaviour()["relabeling"]
    assert behaviour["relabeling"]["login"] == "API key"
    assert behaviour["relabeling"]["password"] == "API secret"  # noqa: S105 - a label
    assert behaviour["relabeling"]["host"] == "Gateway URL"


def test_airflow_providers_list_names_the_package() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"},
    )

    listed = {p["package_name"]: p for p in json.loads(proc.stdout[proc.stdout.index("[") :])}
    assert listed["waylay-jobs"]["version"] == waylay_jobs.__version__


def test_test_connection_succeeds_with_good_credentials(guarded: FakeRegistry) -> None:
    ok, message = WaylayJobsHook(waylay_conn_id="waylay_good").test_connection()

    assert ok is True
    assert message == f"Connected to {guarded.url}: the Jobs API accepted the credentials"
    [request] = guarded.requests
    assert (request.path, request.header("Authorization")) == ("/registry/v2/jobs/", "Bearer good")


def test_test_connection_reports_a_401_without_the_token(guarded: FakeRegistry) -> None:
    hook = BaseHook.get_connection("waylay_bad").get_hook()

    ok, message = hook.test_connection()

    assert isinstance(hook, WaylayJobsHook)
    assert ok is False
    assert "got 401" in message
    assert "bad-token-value" not in message
    assert len(guarded.requests) == 1  # no retries for a refusal


def test_get_conn_gives_a_client_for_the_connection_or_the_environment(
    guarded: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = guarded.add_job("build", "finished")
    monkeypatch.setenv("WAYLAY_GATEWAY_URL", guarded.url)
    monkeypatch.setenv("WAYLAY_TOKEN", "good")

    with WaylayJobsHook(waylay_conn_id="waylay_good").get_conn() as by_conn:
        assert isinstance(by_conn, JobsClient)
        assert by_conn.get("build", job_id).job.state == "completed"
    with WaylayJobsHook(waylay_conn_id=None).get_conn() as by_env:
        assert by_env.get("build", job_id).job.state == "completed"
    assert WaylayJobsHook().waylay_conn_id == "waylay_default"


@pytest.mark.parametrize(("setting", "expected"), [("True", "True"), ("False", "False")])
def test_deferrable_defaults_to_the_operators_default_deferrable_setting(
    setting: str, expected: str
) -> None:
    code = (
        "from waylay_jobs.airflow import WaylayJobSensor; "
        "print(WaylayJobSensor(task_id='t', job_type='build', job_id='x').deferrable)"
    )
    env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": setting}

    proc = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )

    assert proc.stdout.strip().splitlines()[-1] == expected

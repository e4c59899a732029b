"""Airflow connections to clients, and ``wait_for_job`` called directly (no DAG run)."""

from __future__ import annotations

import json
import signal

import pytest
from airflow_names import AirflowFailException, Connection
from conftest import CONN_ID

from waylay_jobs import ConfigError, JobsClient
from waylay_jobs.airflow import client_from_connection, credentials_from_connection, wait_for_job
from waylay_jobs.testing import FakeRegistry


@pytest.mark.parametrize(
    ("fields", "gateway"),
    [
        ({"host": "https://api.waylay.io"}, "https://api.waylay.io"),
        ({"host": "api.waylay.io"}, "https://api.waylay.io"),
        ({"host": "gw.example.com", "port": 8443}, "https://gw.example.com:8443"),
        ({"host": "127.0.0.1", "port": 8080, "schema": "http"}, "http://127.0.0.1:8080"),
        ({"host": "http://127.0.0.1:8080", "port": 9999}, "http://127.0.0.1:8080"),
        ({"host": "http://127.0.0.1", "port": 8080}, "http://127.0.0.1:8080"),
        ({}, "https://api.waylay.io"),
    ],
)
def test_the_gateway_comes_from_host_schema_and_port(fields: dict, gateway: str) -> None:
    conn = Connection(conn_id="w", conn_type="generic", **fields)

    assert credentials_from_connection(conn).gateway_url == gateway


def test_login_and_password_are_the_api_key_pair() -> None:
    conn = Connection(
        conn_id="w",
        conn_type="generic",
        host="api.waylay.io",
        extra=json.dumps({"tenant_id": "tenant-1"}),
        **{"login": "key-1", "password": "secret-1"},
    )

    creds = credentials_from_connection(conn)

    assert (creds.api_key, creds.api_secret, creds.tenant_id, creds.token) == (
        "key-1",
        "secret-1",
        "tenant-1",
        None,
    )
    assert "secret-1" not in repr(creds)


def test_a_uri_connection_works() -> None:
    conn = Connection(conn_id="w", uri="https://key-2:secret-2@api.waylay.io")

    creds = credentials_from_connection(conn)

    assert (creds.gateway_url, creds.api_key, creds.api_secret) == (
        "https://api.waylay.io",
        "key-2",
        "secret-2",
    )


def test_a_token_in_the_extra_wins_over_the_key_pair() -> None:
    key_pair = {"login": "key-3", "password": "secret-3"}
    conn = Connection(conn_id="w", conn_type="generic", extra='{"token": "tok-3"}', **key_pair)

    creds = credentials_from_connection(conn)

    assert (creds.token, creds.api_key, creds.api_secret) == ("tok-3", None, None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"login": "key-4"}, "'w': login is set but password is not"),
        ({"password": "secret-4"}, "'w': password is set but login is not"),
        ({"extra": '{"token": 42}'}, "'w': expected extra 'token' to be a string, got int"),
    ],
)
def test_an_incomplete_connection_is_refused(fields: dict, message: str) -> None:
    conn = Connection(conn_id="w", conn_type="generic", host="api.waylay.io", **fields)

    with pytest.raises(ConfigError, match=message) as caught:
        credentials_from_connection(conn)
    assert "secret-4" not in str(caught.value)


def test_client_from_connection_reads_the_connection_or_the_environment(
    registry: FakeRegistry,
) -> None:
    job_id = registry.add_job("build", "finished")

    with client_from_connection(CONN_ID) as by_conn, client_from_connection() as by_env:
        assert isinstance(by_conn, JobsClient)
        assert by_conn.get("build", job_id).job.state == "completed"
        assert by_env.get("build", job_id).job.state == "completed"

    tokens = [r.header("Authorization") for r in registry.requests]
    assert tokens == ["Bearer from-connection", "Bearer from-environment"]


def test_wait_for_job_takes_a_summary_and_restores_the_sigterm_handler(
    registry: FakeRegistry,
) -> None:
    job_id = registry.add_job("build", "success")
    before = signal.getsignal(signal.SIGTERM)

    final = wait_for_job({"type": "build", "id": job_id, "state": "active"}, timeout=30)

    assert final.job.state == "completed"
    assert signal.getsignal(signal.SIGTERM) is before


def test_wait_for_job_maps_a_failed_job_to_airflow_fail_exception(
    registry: FakeRegistry,
) -> None:
    job_id = registry.add_job("build", "fail", reason="out of memory")

    with pytest.raises(AirflowFailException, match=r"failed: out of memory$") as caught:
        wait_for_job(("build", job_id), conn_id=CONN_ID, timeout=30)
    assert caught.value.__cause__.reason == "out of memory"

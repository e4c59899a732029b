"""``WaylayJobTrigger`` run in an event loop, as the triggerer runs it, against the fake."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from airflow_names import import_string
from conftest import CONN_ID

from waylay_jobs import JobsClient
from waylay_jobs.airflow import WaylayJobTrigger, job_summary
from waylay_jobs.testing import FakeRegistry

EVENTS = "/registry/v2/jobs/events"


def fire(*triggers: WaylayJobTrigger) -> list[dict[str, Any]]:
    """Run the triggers in one new event loop; the payload of each one's first event."""

    async def first(trigger: WaylayJobTrigger) -> dict[str, Any]:
        events = trigger.run()
        event = await events.__anext__()
        with pytest.raises(StopAsyncIteration):  # one event, then the trigger ends
            await events.__anext__()
        return dict(event.payload)

    async def main() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(first(t) for t in triggers)))

    return asyncio.run(main())


def test_serialize_rebuilds_the_trigger_exactly() -> None:
    trigger = WaylayJobTrigger(
        job_type="deploy",
        job_id="a/b$c",
        waylay_conn_id="waylay_prod",
        end_time=1_900_000_000.5,
        idle_timeout=20.0,
        poll_interval=2.5,
    )

    classpath, kwargs = trigger.serialize()
    rebuilt = import_string(classpath)(**json.loads(json.dumps(kwargs)))

    assert classpath == "waylay_jobs.airflow.triggers.WaylayJobTrigger"
    assert rebuilt.serialize() == (classpath, kwargs)
    assert WaylayJobTrigger(job_type="build", job_id="x").serialize()[1] == {
        "job_type": "build",
        "job_id": "x",
        "waylay_conn_id": None,
        "end_time": None,
        "idle_timeout": 60.0,
        "poll_interval": 5.0,
    }


#: What the released ``WaylayJobTrigger.serialize()`` writes to the ``trigger`` table (classpath
#: and kwargs, as the metadata database keeps them): a triggerer after an upgrade must rebuild it.
STORED_CLASSPATH = "waylay_jobs.airflow.triggers.WaylayJobTrigger"
STORED_KWARGS = {
    "job_type": "build",
    "job_id": "JOB-ID",
    "waylay_conn_id": "waylay_fake",
    "end_time": 1_900_000_000.0,
    "idle_timeout": 60.0,
    "poll_interval": 5.0,
}


def test_a_trigger_stored_by_the_current_release_is_rebuilt_and_runs(
    registry: FakeRegistry,
) -> None:
    job_id = registry.add_job("build", "success", start="subscribe")
    stored = {**STORED_KWARGS, "job_id": job_id}

    trigger = import_string(STORED_CLASSPATH)(**json.loads(json.dumps(stored)))

    assert trigger.serialize() == (STORED_CLASSPATH, stored)
    [event] = fire(trigger)
    assert (event["status"], event["job"]["id"]) == ("completed", job_id)


def test_completed_and_failed_jobs_give_their_summaries(registry: FakeRegistry) -> None:
    done = registry.add_job("build", "success", start="subscribe")
    failed = registry.add_job("build", "fail", reason="disk full", start="subscribe")

    events = fire(
        WaylayJobTrigger(job_type="build", job_id=done, waylay_conn_id=CONN_ID),
        WaylayJobTrigger(job_type="build", job_id=failed),
    )

    with JobsClient(registry.url) as client:
        summaries = [job_summary(client.get("build", i)) for i in (done, failed)]
    assert events == [
        {"status": "completed", "job": summaries[0], "message": f"build job {done} completed"},
        {
            "status": "failed",
            "job": summaries[1],
            "message": f"build job {failed} failed: disk full",
        },
    ]
    tokens = {r.header("Authorization") for r in registry.requests if r.path == EVENTS}
    assert tokens == {"Bearer from-connection", "Bearer from-environment"}


def test_an_unknown_job_is_an_error_event(registry: FakeRegistry) -> None:
    [event] = fire(WaylayJobTrigger(job_type="build", job_id="no-such-job"))

    assert (event["status"], event["error"], event["status_code"]) == (
        "error",
        "NotFoundError",
        404,
    )
    assert "Job build/no-such-job not found" in event["message"]


def test_an_undefined_connection_is_an_error_event_that_names_it(registry: FakeRegistry) -> None:
    trigger = WaylayJobTrigger(job_type="build", job_id="x", waylay_conn_id="no_such_conn")

    [event] = fire(trigger)

    assert (event["status"], event["error"]) == ("error", "ConfigError")
    assert "no_such_conn" in event["message"]
    assert registry.requests == []


def test_the_deadline_ends_the_wait_with_the_last_state(registry: FakeRegistry) -> None:
    job_id = registry.add_job("build", "manual")
    started = time.monotonic()

    [event] = fire(WaylayJobTrigger(job_type="build", job_id=job_id, end_time=time.time() + 0.5))

    assert 0.4 < time.monotonic() - started < 5
    assert event["status"] == "timeout"
    assert event["job"]["state"] == "waiting"
    assert f"build job {job_id} did not end within" in event["message"]
    assert "last known state: waiting" in event["message"]


def test_cancelling_the_trigger_closes_its_stream_at_once(registry: FakeRegistry) -> None:
    job_id = registry.add_job("build", "manual")
    closed_after: list[float] = []

    async def main() -> None:
        task = asyncio.ensure_future(
            WaylayJobTrigger(job_type="build", job_id=job_id).run().__anext__()
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, registry.wait_for_subscribers, 1, 10.0)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The server sees its stream end: the client closed the connection, not the GC.
        await loop.run_in_executor(None, registry.wait_for_open_streams, 0, 2.0)
        closed_after.append(time.monotonic() - started)

    asyncio.run(main())

    assert registry.open_streams == 0
    assert closed_after[0] < 1.0


@pytest.fixture
def key_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRegistry]:
    """A fake that wants tokens issued for an API key pair, and a connection that has it."""
    with FakeRegistry(
        speed=0.01,
        keepalive_interval=1.0,
        api_key="key-1",
        api_secret="secret-1",  # noqa: S106
    ) as reg:
        conn = {"conn_type": "waylay", "host": reg.url, "login": "key-1", "password": "secret-1"}
        monkeypatch.setenv("AIRFLOW_CONN_WAYLAY_KEYS", json.dumps(conn))
        yield reg
        assert reg.errors == []


def test_triggers_of_one_loop_share_one_token_and_renew_it_once_after_a_401(
    key_registry: FakeRegistry,
) -> None:
    jobs = [key_registry.add_job("build", "success", start="subscribe") for _ in range(20)]
    late = key_registry.add_job("build", "manual")

    async def main() -> list[Any]:
        first = await asyncio.gather(
            *(
                WaylayJobTrigger(job_type="build", job_id=j, waylay_conn_id="waylay_keys")
                .run()
                .__anext__()
                for j in jobs
            )
        )
        # The token is revoked; the next trigger of this loop gets a 401, renews, goes on.
        key_registry.revoke_tokens()
        key_registry.transition("build", late, "completed")
        trigger = WaylayJobTrigger(job_type="build", job_id=late, waylay_conn_id="waylay_keys")
        return [*first, await trigger.run().__anext__()]

    events = asyncio.run(main())

    assert [e.payload["status"] for e in events] == ["completed"] * 21
    token_requests = [r for r in key_registry.requests if r.path == "/accounts/v1/tokens"]
    assert len(token_requests) == 2  # one for the 20 triggers, one after the revocation
    assert all(b"secret-1" not in json.dumps(e.payload).encode() for e in events)


def test_refused_credentials_are_an_error_event_without_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeRegistry(speed=0.01, tokens=("good",)) as reg:
        conn = {"conn_type": "waylay", "host": reg.url, "extra": {"token": "bad"}}
        monkeypatch.setenv("AIRFLOW_CONN_WAYLAY_BAD", json.dumps(conn))
        job_id = reg.add_job("build", "manual")

        [event] = fire(
            WaylayJobTrigger(job_type="build", job_id=job_id, waylay_conn_id="waylay_bad")
        )

        assert (event["status"], event["error"], event["status_code"]) == (
            "error",
            "AuthError",
            401,
        )
        assert len(reg.requests) == 1
        assert "bad" not in event["message"].replace("Bearer", "")


def test_a_gateway_that_never_answers_is_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("WAYLAY_GATEWAY_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("WAYLAY_TOKEN", "t")

    [event] = fire(WaylayJobTrigger(job_type="build", job_id="x", end_time=time.time() + 60))

    assert (event["status"], event["error"]) == ("error", "TransportError")
    assert "ConnectError" in event["message"]

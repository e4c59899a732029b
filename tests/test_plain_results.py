"""Issue 12: a notify, cleanup, scale or unknown job whose request, result or event
``returnvalue`` is not an object keeps the plain JSON value, through ``get``, ``list``,
``events`` and ``wait_for``.

The local fake registry only scripts object results, so these run against ``responses``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from waylay_jobs import CompletedEventData, JobEvent, JobsClient

GATEWAY = "https://gw.example"
JOBS_URL = GATEWAY + "/registry/v2/jobs/"
EVENTS_URL = GATEWAY + "/registry/v2/jobs/events"
PLAIN = ["ok", 3, [1, "a"], False]
LOOSE_TYPES = ["notify", "cleanup", "scale", "frobnicate"]


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[JobsClient]:
    with JobsClient(GATEWAY, token="t", retries=0) as c:
        yield c


def job_document(job_type: str, state: str, value: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "type": job_type,
        "state": state,
        "createdAt": "2024-05-02T09:14:03.512Z",
        "job": {"id": "j1", "name": job_type},
        "request": value,
    }
    if state == "completed":
        job["result"] = value
    return {"job": job}


def sse(*events: tuple[str, Any]) -> bytes:
    blocks = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        blocks.append(f"event: {name}\r\ndata: {text}\r\n\r\n")
    return "".join(blocks).encode()


def completed_event(job_type: str, value: Any) -> dict[str, Any]:
    return {
        "job": {"type": job_type, "id": "j1"},
        "data": {"prev": "active", "returnvalue": value},
        "timestamp": "2024-05-02T09:15:41.230Z",
    }


@pytest.mark.parametrize("job_type", LOOSE_TYPES)
@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_get_keeps_a_plain_request_and_result(
    api: responses.RequestsMock, client: JobsClient, job_type: str, value: Any
) -> None:
    document = job_document(job_type, "completed", value)
    api.get(f"{JOBS_URL}{job_type}/j1", json=document)
    job = client.get(job_type, "j1")
    assert job.job.request == value
    assert job.job.result == value
    assert job.to_wire() == document


def test_list_keeps_jobs_that_carry_plain_values(
    api: responses.RequestsMock, client: JobsClient
) -> None:
    items = [
        {"type": t, "id": f"{t}-1", "state": "completed", "result": v, "request": v}
        for t, v in zip(LOOSE_TYPES, PLAIN)
    ]
    api.get(JOBS_URL, json={"jobs": items, "limit": 10})
    listed = client.list()
    assert [job.type for job in listed.jobs] == LOOSE_TYPES
    assert [job.extra["result"] for job in listed.jobs] == PLAIN
    assert listed.to_wire() == {"jobs": items, "limit": 10}


@pytest.mark.parametrize("job_type", LOOSE_TYPES)
def test_events_keep_a_plain_returnvalue(
    api: responses.RequestsMock, client: JobsClient, job_type: str
) -> None:
    body = sse(
        ("ack", "listening"),
        ("completed", completed_event(job_type, "ok")),
        ("close", "done"),
    )
    api.get(EVENTS_URL, body=body, content_type="text/event-stream")
    with client.events(type=job_type, id="j1") as stream:
        events = list(stream)
    assert [event.event for event in events] == ["ack", "completed", "close"]
    completed = events[1]
    assert isinstance(completed, JobEvent)
    assert isinstance(completed.data.data, CompletedEventData)
    assert completed.data.data.returnvalue == "ok"


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_wait_for_returns_a_job_with_a_plain_result(
    api: responses.RequestsMock, client: JobsClient, value: Any
) -> None:
    seen: list[Any] = []
    api.get(f"{JOBS_URL}notify/j1", json=job_document("notify", "active", value))
    body = sse(
        ("ack", "listening"),
        ("completed", completed_event("notify", value)),
        ("close", "done"),
    )
    api.get(EVENTS_URL, body=body, content_type="text/event-stream")
    api.get(f"{JOBS_URL}notify/j1", json=job_document("notify", "completed", value))
    final = client.wait_for(("notify", "j1"), timeout=30, on_event=seen.append)
    assert final.job.state == "completed"
    assert final.job.result == value
    completed = [event for event in seen if isinstance(event, JobEvent)]
    assert [event.event for event in completed] == ["completed"]
    assert isinstance(completed[0].data.data, CompletedEventData)
    assert completed[0].data.data.returnvalue == value

"""One client shared by many threads: get, list and wait_for at once, some jobs faulty.

Every outcome must be the one a lone caller would see, the API key must be exchanged for a
token exactly once (and renewed exactly once when every thread is refused at the same
moment), and nothing may be left open afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from waylay_jobs import JobFailed, JobsClient
from waylay_jobs.testing import FakeRegistry, Faults

from .netcheck import client_connections
from .waits import wait_with

KEY, SECRET = "threads-key", "threads-secret"
THREADS = 50
TOKEN_PATH = "/accounts/v1/tokens"
REASON = "image pull back-off"

# Faults for the jobs that are waited for: each one breaks the stream or the state check once.
WAIT_FAULTS = [
    None,
    Faults(drop_after=1, times=1),
    Faults(truncate_terminal=True, times=1),
    Faults(malformed_json=True, times=1),
    Faults(status=503, retry_after="0", times=1),
    Faults(status=502, html=True, times=1),
    Faults(framing="close", line_ending="\r"),
    Faults(unknown_event=True, bom=True),
    Faults(endpoint="get", status=503, retry_after="0", times=1),
    Faults(endpoint="get", content_type="text/html", times=1),
]


def _run_all(tasks: list[Callable[[], Any]]) -> list[Any]:
    """Run each task in its own thread, all released at once; results or exceptions."""
    barrier = threading.Barrier(len(tasks))
    results: list[Any] = [None] * len(tasks)

    def run(index: int, task: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = task()
        except Exception as exc:  # noqa: BLE001 - handed to the assertions of the test
            results[index] = exc

    threads = [
        threading.Thread(target=run, args=(i, task), name=f"hardening-{i}")
        for i, task in enumerate(tasks)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return results


def _token_requests(registry: FakeRegistry) -> int:
    return sum(1 for r in registry.requests if r.method == "POST" and r.path == TOKEN_PATH)


@pytest.fixture
def threads_before() -> set[threading.Thread]:
    return set(threading.enumerate())


@pytest.fixture
def registry(make_fake_registry: Callable[..., FakeRegistry]) -> FakeRegistry:
    return make_fake_registry(api_key=KEY, api_secret=SECRET, speed=0.005, keepalive_interval=60)


@pytest.fixture
def client(registry: FakeRegistry) -> Iterator[JobsClient]:
    with JobsClient(registry.url, api_key=KEY, api_secret=SECRET, retries=0) as client:
        yield client


def _assert_nothing_left(
    client: JobsClient, registry: FakeRegistry, threads_before: set[threading.Thread]
) -> None:
    port = registry.port
    registry.wait_for_open_streams(0, timeout=5)
    client.close()
    assert client_connections(port) == 0
    assert registry.errors == []
    registry.stop()
    assert [t.name for t in threading.enumerate() if t not in threads_before] == []


def test_fifty_threads_share_one_client(
    registry: FakeRegistry, client: JobsClient, threads_before: set[threading.Thread]
) -> None:
    finished = {
        job_type: registry.add_job(job_type, "finished")
        for job_type in ("build", "deploy", "verify", "scale", "notify")
    }
    failed_done = registry.add_job("undeploy", "finished-failed", reason=REASON)
    waits: list[tuple[str, str, str]] = []  # (type, id, final state)
    for index in range(20):
        script = "fail" if index % 4 == 3 else "success"
        fault = WAIT_FAULTS[index % len(WAIT_FAULTS)]
        job_id = registry.add_job("build", script, reason=REASON, faults=fault)
        waits.append(("build", job_id, "failed" if script == "fail" else "completed"))

    tasks: list[Callable[[], Any]] = []
    expected: list[Callable[[Any], None]] = []

    def expect_state(state: str) -> Callable[[Any], None]:
        def check(result: Any) -> None:
            assert not isinstance(result, BaseException), repr(result)
            assert result.job.state == state

        return check

    def expect_failed(result: Any) -> None:
        assert isinstance(result, JobFailed), repr(result)
        assert result.reason == REASON

    for index in range(15):  # get
        job_type = list(finished)[index % len(finished)]
        tasks.append(lambda t=job_type: client.get(t, finished[t]))
        expected.append(expect_state("completed"))
    tasks.append(lambda: client.get("undeploy", failed_done))
    expected.append(expect_state("failed"))

    def listed(result: Any) -> None:
        assert not isinstance(result, BaseException), repr(result)
        assert set(finished.values()) <= {job.id for job in result.jobs}

    for _ in range(10):  # list, both forms
        tasks.append(lambda: client.list(state=["completed"], limit=100))
        expected.append(listed)
    for _ in range(4):
        tasks.append(lambda: client.list({"state": "completed", "limit": 100}))
        expected.append(listed)

    for job_type, job_id, final in waits:  # wait_for
        tasks.append(
            lambda t=job_type, i=job_id: wait_with(
                client, (t, i), timeout=30, _sleep=lambda s: None
            )
        )
        expected.append(expect_failed if final == "failed" else expect_state("completed"))
    assert len(tasks) == THREADS

    results = _run_all(tasks)
    for check, result in zip(expected, results):
        check(result)
    assert _token_requests(registry) == 1
    _assert_nothing_left(client, registry, threads_before)


def test_one_token_for_many_threads(
    registry: FakeRegistry, client: JobsClient, threads_before: set[threading.Thread]
) -> None:
    job_id = registry.add_job("build", "finished")
    results = _run_all([lambda: client.get("build", job_id)] * THREADS)
    assert all(not isinstance(r, BaseException) and r.job.state == "completed" for r in results)
    assert _token_requests(registry) == 1
    _assert_nothing_left(client, registry, threads_before)


def test_a_token_refused_to_every_thread_at_once_is_renewed_once(
    registry: FakeRegistry, client: JobsClient, threads_before: set[threading.Thread]
) -> None:
    job_id = registry.add_job("build", "finished")
    assert client.get("build", job_id).job.state == "completed"
    registry.revoke_tokens()
    results = _run_all([lambda: client.get("build", job_id)] * THREADS)
    assert all(not isinstance(r, BaseException) and r.job.state == "completed" for r in results)
    assert _token_requests(registry) == 2
    _assert_nothing_left(client, registry, threads_before)


def test_many_threads_wait_for_the_same_job(
    registry: FakeRegistry, client: JobsClient, threads_before: set[threading.Thread]
) -> None:
    job_id = registry.add_job("build", "manual")
    waiters = 20
    tasks = [lambda: client.wait_for(("build", job_id), timeout=30)] * waiters
    outcome: list[Any] = []
    runner = threading.Thread(target=lambda: outcome.append(_run_all(tasks)))
    runner.start()
    registry.wait_for_subscribers(waiters, timeout=10)  # every waiter is listening
    registry.transition("build", job_id, "active")
    registry.transition("build", job_id, "failed", failed_reason=REASON)
    runner.join(30)
    assert not runner.is_alive()
    assert all(isinstance(r, JobFailed) and r.reason == REASON for r in outcome[0])
    assert sum(1 for r in registry.requests if r.path.endswith("/jobs/events")) == waiters
    assert _token_requests(registry) == 1
    _assert_nothing_left(client, registry, threads_before)

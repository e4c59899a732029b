"""The asyncio driver (``_aio``) against the fake registry, beside the blocking client.

The same fault tables as ``test_hardening_faults.py``: the async stream must give the events
and the exceptions the blocking ``events()`` gives, and the async ``wait_for`` must end the way
the blocking one does. Each test runs its own event loop (``asyncio.run``), as a triggerer or
``dag.test()`` would.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Optional
from urllib.parse import quote

import pytest

from waylay_jobs import (
    ApiError,
    AuthError,
    Event,
    JobFailed,
    JobsClient,
    JobsError,
    NotFoundError,
    TransportError,
    WaitTimeout,
)
from waylay_jobs._config import Credentials
from waylay_jobs._http.aio import AsyncTransport, _shared
from waylay_jobs._policy import Deadline, RetryPolicy
from waylay_jobs._query import encode_events_query
from waylay_jobs._wait.aio import wait_for_async
from waylay_jobs._wait.machine import WaitOptions
from waylay_jobs._wait.targets import Target
from waylay_jobs.testing import FakeRegistry, Faults

from .test_hardening_faults import QUIET_IDLE, STATUS_FAULTS, STREAM_FAULTS

FAST = RetryPolicy(retries=4, backoff=0.01, max_backoff=0.05, max_retry_after=0.05)


def transport(registry: FakeRegistry, **credentials: Any) -> AsyncTransport:
    creds = Credentials(gateway_url=registry.url, **credentials)
    return AsyncTransport(creds, policy=FAST)


async def consume(
    t: AsyncTransport, job_id: str, *, idle_timeout: float = QUIET_IDLE, max_event_size: int
) -> tuple[list[Event], Optional[JobsError]]:
    params = encode_events_query(type="build", id=job_id)
    stream = await t.open_events(params, read_timeout=idle_timeout, max_event_size=max_event_size)
    seen: list[Event] = []
    try:
        while True:
            seen.append(await stream.next())
    except StopAsyncIteration:
        return seen, None
    except JobsError as exc:
        return seen, exc
    finally:
        await stream.aclose()


@pytest.mark.parametrize(("fault", "options", "expected", "error", "text"), STREAM_FAULTS)
def test_the_async_stream_gives_what_the_blocking_one_gives(
    fake_registry: FakeRegistry,
    fault: Faults,
    options: dict[str, Any],
    expected: list[str],
    error: Optional[type[JobsError]],
    text: Optional[str],
) -> None:
    job_id = fake_registry.add_job("build", "success", start="subscribe", faults=fault)
    limit = options.get("max_event_size", 8 * 1024 * 1024)
    idle = options.get("idle_timeout", QUIET_IDLE)

    seen, exc = asyncio.run(
        consume(transport(fake_registry), job_id, idle_timeout=idle, max_event_size=limit)
    )

    assert [e.event for e in seen] == expected
    if error is None:
        assert exc is None
    else:
        assert type(exc) is error, repr(exc)
        assert text is not None
        assert text in str(exc)
    fake_registry.wait_for_open_streams(0, timeout=5)


@pytest.mark.parametrize(("fault", "error", "status", "text", "retry_after"), STATUS_FAULTS)
def test_an_error_response_raises_what_the_blocking_client_raises(
    fake_registry: FakeRegistry,
    fault: Faults,
    error: type[ApiError],
    status: int,
    text: str,
    retry_after: Optional[str],
) -> None:
    sync_job = fake_registry.add_job("build", "manual", faults=fault)
    async_job = fake_registry.add_job("build", "manual", faults=fault)
    with JobsClient(fake_registry.url) as client, pytest.raises(ApiError) as sync_info:
        client.events(type="build", id=sync_job, idle_timeout=QUIET_IDLE)

    with pytest.raises(ApiError) as info:
        asyncio.run(consume(transport(fake_registry), async_job, max_event_size=1 << 20))

    exc, expected = info.value, sync_info.value
    assert type(exc) is error
    assert (exc.status_code, exc.error, exc.data) == (status, expected.error, expected.data)
    assert str(exc) == str(expected).replace(quote(sync_job, safe=""), quote(async_job, safe=""))
    assert text in str(exc)
    assert exc.retry_after == (None if retry_after is None else float(retry_after))


def test_a_get_is_one_attempt_and_the_wait_machine_retries_it(
    fake_registry: FakeRegistry,
) -> None:
    job_id = fake_registry.add_job(
        "build", "finished", faults=Faults(endpoint="get", status=502, times=2)
    )
    t = transport(fake_registry)

    with pytest.raises(ApiError) as info:
        asyncio.run(t.get_job("build", job_id))

    assert info.value.status_code == 502
    assert len(fake_registry.requests) == 1  # the transport does not retry: the machine does
    options = WaitOptions(timeout=30, idle_timeout=0.3)
    final = asyncio.run(wait_for_async(t, Target("build", job_id), options))
    assert final.job.state == "completed"
    gets = [r for r in fake_registry.requests if r.path.startswith("/registry/v2/jobs/build/")]
    assert len(gets) == 3  # the failed one above, one more 502, then the job


def test_list_jobs_decodes_the_list_as_the_blocking_client(fake_registry: FakeRegistry) -> None:
    done = fake_registry.add_job("build", "finished")
    waiting = fake_registry.add_job("build", "manual")
    fake_registry.add_job("deploy", "finished")

    listed = asyncio.run(transport(fake_registry).list_jobs([("type", "build"), ("limit", "10")]))

    with JobsClient(fake_registry.url) as client:
        expected = client.list(type="build", limit=10)
    assert type(listed) is type(expected)
    assert sorted((j.id, j.state) for j in listed.jobs) == sorted(
        (j.id, j.state) for j in expected.jobs
    )
    assert {j.id for j in listed.jobs} == {done, waiting}
    assert fake_registry.requests[0].path == "/registry/v2/jobs/"


def test_an_unknown_job_and_a_wrong_document_raise_with_the_blocking_messages(
    fake_registry: FakeRegistry,
) -> None:
    html = fake_registry.add_job(
        "build", "finished", faults=Faults(endpoint="get", content_type="text/html")
    )

    async def both() -> tuple[BaseException, BaseException]:
        t = transport(fake_registry)
        errors = await asyncio.gather(
            t.get_job("build", "no-such-job"), t.get_job("build", html), return_exceptions=True
        )
        return errors[0], errors[1]  # type: ignore[return-value]

    missing, wrong = asyncio.run(both())

    with JobsClient(fake_registry.url) as client:
        for exc, job_id in ((missing, "no-such-job"), (wrong, html)):
            with pytest.raises(ApiError) as expected:
                client.get("build", job_id)
            assert type(exc) is type(expected.value)
            assert str(exc) == str(expected.value)
    assert isinstance(missing, NotFoundError)


@pytest.mark.parametrize(
    ("script", "faults", "state"),
    [
        ("success", None, "completed"),
        ("retry", None, "completed"),  # a failed that is followed by a retry is not the end
        ("fail", None, "failed"),
        ("success", Faults(drop_after=1, times=1), "completed"),
        ("success", Faults(stall_after=1, times=1), "completed"),
        ("success", Faults(status=503, times=2), "completed"),
        ("success", Faults(truncate_terminal=True, times=1), "completed"),
    ],
)
def test_the_async_wait_ends_as_the_job_does_whatever_the_stream_does(
    fake_registry: FakeRegistry, script: str, faults: Optional[Faults], state: str
) -> None:
    job_id = fake_registry.add_job(
        "build", script, start="subscribe", reason="exit 1", faults=faults
    )
    options = WaitOptions(timeout=30, raise_on_failure=False, idle_timeout=0.3)

    final = asyncio.run(wait_for_async(transport(fake_registry), Target("build", job_id), options))

    assert final.job.state == state
    fake_registry.wait_for_open_streams(0, timeout=5)


def test_a_failed_job_raises_job_failed_and_the_deadline_wait_timeout(
    fake_registry: FakeRegistry,
) -> None:
    failing = fake_registry.add_job("build", "fail", reason="exit 1", start="subscribe")
    running = fake_registry.add_job("build", "manual")
    t = transport(fake_registry)

    with pytest.raises(JobFailed, match=r"failed: exit 1$"):
        asyncio.run(wait_for_async(t, Target("build", failing), WaitOptions(timeout=30)))
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="last known state: waiting"):
        asyncio.run(wait_for_async(t, Target("build", running), WaitOptions(timeout=0.3)))
    assert time.monotonic() - started < 3


def test_an_api_key_pair_gets_one_token_per_loop_and_a_bad_secret_is_refused(
    make_fake_registry: Any,
) -> None:
    registry = make_fake_registry(api_key="key-9", api_secret="secret-9")
    jobs = [registry.add_job("build", "finished") for _ in range(5)]
    good = transport(registry, api_key="key-9", api_secret="secret-9")
    bad = transport(registry, api_key="key-9", api_secret="wrong-secret-9")

    async def gets() -> list[Any]:
        return list(await asyncio.gather(*(good.get_job("build", j) for j in jobs)))

    assert [j.job.state for j in asyncio.run(gets())] == ["completed"] * 5
    assert [r.path for r in registry.requests].count("/accounts/v1/tokens") == 1
    with pytest.raises(AuthError, match="expected 200 with a token for api key 'key-…'") as info:
        asyncio.run(bad.get_job("build", jobs[0]))
    assert info.value.status_code == 401
    assert "wrong-secret-9" not in str(info.value)
    assert "wrong-secret-9" not in repr(bad)


def test_waiting_for_another_tasks_token_request_is_bounded_by_the_deadline(
    make_fake_registry: Any,
) -> None:
    registry = make_fake_registry(
        api_key="key-9", api_secret="secret-9", faults=Faults(endpoint="token", delay=5, times=1)
    )
    job_id = registry.add_job("build", "finished")
    t = transport(registry, api_key="key-9", api_secret="secret-9")

    async def contended() -> tuple[BaseException, float]:
        stuck = asyncio.ensure_future(t.get_job("build", job_id))  # holds the token lock
        while not registry.requests:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        try:
            with pytest.raises(TransportError) as info:
                await t.get_job("build", job_id, deadline=Deadline(0.3))
            return info.value, time.monotonic() - started
        finally:
            stuck.cancel()
            await asyncio.gather(stuck, return_exceptions=True)

    error, elapsed = asyncio.run(contended())

    assert "another task's token request was still under way" in str(error)
    assert "secret-9" not in str(error)
    assert not error.connect_failed  # the wait's deadline logic ends it with WaitTimeout
    assert 0.25 < elapsed < 1.5
    assert [r.path for r in registry.requests] == ["/accounts/v1/tokens"]


def test_a_gateway_that_never_answers_raises_the_transport_error() -> None:
    t = AsyncTransport(Credentials(gateway_url="http://127.0.0.1:9"), policy=FAST)

    with pytest.raises(TransportError, match="ConnectError") as info:
        asyncio.run(wait_for_async(t, Target("build", "x"), WaitOptions(timeout=30)))
    assert info.value.connect_failed


def test_https_to_a_plain_http_gateway_says_so(fake_registry: FakeRegistry) -> None:
    # https:// is added to a bare host; the fake registry speaks plain HTTP.
    netloc = fake_registry.url.split("://", 1)[1]
    t = AsyncTransport(Credentials(gateway_url=netloc), policy=FAST)
    with pytest.raises(TransportError) as info:
        asyncio.run(t.get_job("build", "x"))
    assert str(info.value).endswith(f"; is the gateway plain HTTP? use http://{netloc}")


def test_the_loop_shares_one_client_and_closes_it_when_it_ends() -> None:
    async def twice() -> tuple[Any, Any]:
        return await _shared(), await _shared()

    first, second = asyncio.run(twice())

    assert first is second
    assert first.client.is_closed


def test_waits_of_one_loop_share_one_tls_context(
    fake_registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    created: list[ssl.SSLContext] = []
    original = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        created.append(original(*args, **kwargs))
        return created[-1]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    jobs = [fake_registry.add_job("build", "success", start="subscribe") for _ in range(20)]
    t = transport(fake_registry)

    async def all_of_them() -> list[Any]:
        waits = (wait_for_async(t, Target("build", j), WaitOptions(timeout=30)) for j in jobs)
        return list(await asyncio.gather(*waits))

    finals = asyncio.run(all_of_them())

    assert [f.job.state for f in finals] == ["completed"] * 20
    assert fake_registry.subscriptions == 20
    assert len(created) == 1  # not one per wait, nor one per stream


def test_one_async_wait_follows_many_jobs_over_one_stream(fake_registry: FakeRegistry) -> None:
    from waylay_jobs._wait.aio import AsyncWait
    from waylay_jobs._wait.machine import TenantScope

    # "subscribe": the scripts start once the tenant stream is up, so their events come over it.
    jobs = [
        ("build", fake_registry.add_job("build", "success", start="subscribe")),
        ("deploy", fake_registry.add_job("deploy", "fail", reason="boom", start="subscribe")),
        ("build", fake_registry.add_job("build", "retry", start="subscribe")),
        ("build", fake_registry.add_job("build", "finished")),
    ]

    async def follow() -> tuple[list[tuple[str, str]], list[Any]]:
        wait = AsyncWait(
            transport(fake_registry),
            jobs,
            WaitOptions(timeout=30, raise_on_failure=False),
            scope=TenantScope(),
        )
        ended = [(str(e.job.job.job.id), str(e.job.job.state)) async for e in wait]
        return ended, wait.results

    ended, results = asyncio.run(follow())

    assert sorted(ended) == sorted((str(r.job.job.id), str(r.job.state)) for r in results)
    assert [r.job.job.id for r in results] == [job_id for _, job_id in jobs]
    assert [r.job.state for r in results] == ["completed", "failed", "completed", "completed"]
    assert fake_registry.subscriptions == 1
    fake_registry.wait_for_open_streams(0, timeout=5)


def test_cancelling_the_task_closes_the_stream_and_is_not_swallowed(
    fake_registry: FakeRegistry,
) -> None:
    job_id = fake_registry.add_job("build", "manual")

    async def cancel_while_reading() -> bool:
        waiting = asyncio.ensure_future(
            wait_for_async(transport(fake_registry), Target("build", job_id), WaitOptions())
        )
        while fake_registry.open_streams == 0:
            await asyncio.sleep(0.01)
        waiting.cancel()
        try:
            await waiting
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(cancel_while_reading())
    fake_registry.wait_for_open_streams(0, timeout=5)

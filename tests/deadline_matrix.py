"""The deadline fault matrix: one wait per fault, against the real local fake registry.

Each scenario breaks one route of a wait (the state check, the subscription, the token
exchange, the bare-id probe, the connection itself, a stream that stays busy without ending the
job) in a way that used to hold a wait past its timeout. :func:`run_scenario` runs one wait
(``wait_for``, or ``wait_all`` of two jobs) with the library's default retries and reports how
long it took, what it raised and what it left open. ``tests/test_deadline.py`` checks
every scenario; ``bench/run.py`` reports the largest overrun.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from waylay_jobs import JobsClient, JobsError, TransportError, WaitTimeout
from waylay_jobs.testing import FakeRegistry, Faults

from .netcheck import client_connections

API_KEY, API_SECRET = "deadline-key", "deadline-secret"
#: Longer than any wait here: a stalled route answers only when the client gives up.
STALL = 120.0


@dataclass(frozen=True)
class Scenario:
    """One fault on one route, and the exception the wait must end with."""

    name: str
    faults: Optional[Faults]
    expected: type[JobsError] = WaitTimeout
    bare_id: bool = False
    api_key: bool = False
    refused: bool = False
    #: The registry's keep-alive interval, as a share of the wait's timeout (of 2 s without
    #: one), so that the matrix means the same at any timeout.
    keepalive: float = 0.5
    #: Another thread (or task) of the same client is stuck in the token exchange first.
    contended: bool = False


def _retry_after(endpoint: str, status: int) -> Faults:
    return Faults(endpoint=endpoint, status=status, retry_after="30")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("stalled get", Faults(endpoint="get", delay=STALL)),
    Scenario("stalled subscribe", Faults(endpoint="events", delay=STALL)),
    Scenario("stalled token endpoint", Faults(endpoint="token", delay=STALL), api_key=True),
    Scenario("429 Retry-After 30 on get", _retry_after("get", 429)),
    Scenario("503 Retry-After 30 on get", _retry_after("get", 503)),
    Scenario("429 Retry-After 30 on subscribe", _retry_after("events", 429)),
    Scenario("503 Retry-After 30 on subscribe", _retry_after("events", 503)),
    Scenario("429 Retry-After 30 on token", _retry_after("token", 429), api_key=True),
    Scenario("503 Retry-After 30 on token", _retry_after("token", 503), api_key=True),
    Scenario("slow bare-id probe", Faults(endpoint="get", delay=STALL), bare_id=True),
    Scenario("refused connection", None, TransportError, refused=True),
    # Keep-alives every 0.85 of the timeout: the stream is never idle, and the only read in
    # progress at the deadline has 0.7 of the timeout to go.
    Scenario("keep-alives just under the deadline", None, keepalive=0.85),
    # A byte every 0.15 s of an event that never ends: never idle, never an event.
    Scenario("dripping stream", Faults(stall_after=0, drip=0.15)),
    Scenario(
        "token lock held by another thread",
        Faults(endpoint="token", delay=STALL, times=1),
        api_key=True,
        contended=True,
    ),
)

#: The waits a scenario is run with: one job or two (over the tenant stream), blocking or on
#: the asyncio driver.
WAITS = ("wait_for", "wait_all", "async wait_for", "async wait_all")


@dataclass(frozen=True)
class Outcome:
    """What one wait did: seconds taken, what it raised, client connections left open."""

    elapsed: float
    error: Optional[BaseException]
    left_open: int


def free_port() -> int:
    """A local port that nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def run_scenario(scenario: Scenario, timeout: Optional[float], wait: str = "wait_for") -> Outcome:
    """Wait for a job that never ends (``wait_all``: two) under ``scenario``'s fault."""
    registry = FakeRegistry(
        speed=0.01,
        keepalive_interval=scenario.keepalive * (timeout or 2.0),
        api_key=API_KEY if scenario.api_key else None,
        api_secret=API_SECRET if scenario.api_key else None,
        faults=scenario.faults,
    ).start()
    try:
        many = wait.endswith("wait_all")
        ids = [registry.add_job("build", "manual") for _ in range(2 if many else 1)]
        port = free_port() if scenario.refused else registry.port
        url = f"http://127.0.0.1:{port}"
        credentials = {"api_key": API_KEY, "api_secret": API_SECRET} if scenario.api_key else {}
        jobs = [job_id if scenario.bare_id else ("build", job_id) for job_id in ids]
        if wait.startswith("async"):
            outcome = asyncio.run(_wait_async(scenario, registry, url, credentials, jobs, timeout))
        else:
            outcome = _wait(scenario, registry, url, credentials, jobs, timeout)
        return Outcome(outcome[0], outcome[1], client_connections(port))
    finally:
        registry.stop()


def _wait(
    scenario: Scenario,
    registry: FakeRegistry,
    url: str,
    credentials: dict[str, str],
    jobs: list[Any],
    timeout: Optional[float],
) -> tuple[float, Optional[BaseException]]:
    client = JobsClient(url, **credentials)  # type: ignore[arg-type]
    stuck: Optional[threading.Thread] = None
    if scenario.contended:
        stuck = threading.Thread(target=_quietly, args=(client.get, *jobs[0]))
        stuck.start()
        registry.wait_for_requests(1)  # its token request, stalled
    error: Optional[BaseException] = None
    started = time.monotonic()
    try:
        if len(jobs) > 1:
            client.wait_all(jobs, timeout=timeout)
        else:
            client.wait_for(jobs[0], timeout=timeout)
    except JobsError as exc:
        error = exc
    elapsed = time.monotonic() - started
    if stuck is not None:
        registry.stop()  # the stalled exchange ends when the registry does
        stuck.join()
    client.close()
    return elapsed, error


async def _wait_async(
    scenario: Scenario,
    registry: FakeRegistry,
    url: str,
    credentials: dict[str, str],
    jobs: list[Any],
    timeout: Optional[float],
) -> tuple[float, Optional[BaseException]]:
    from waylay_jobs._config import Credentials
    from waylay_jobs._http.aio import AsyncTransport
    from waylay_jobs._wait.aio import AsyncWait
    from waylay_jobs._wait.machine import JobScope, TenantScope, WaitOptions

    transport = AsyncTransport(Credentials(gateway_url=url, **credentials))
    stuck: Optional[asyncio.Task[Any]] = None
    if scenario.contended:
        stuck = asyncio.create_task(transport.get_job(*jobs[0]))
        while not registry.requests:  # its token request, stalled
            await asyncio.sleep(0.01)
    scope = TenantScope() if len(jobs) > 1 else JobScope()
    wait = AsyncWait(transport, jobs, WaitOptions(timeout=timeout), scope=scope)
    error: Optional[BaseException] = None
    started = time.monotonic()
    try:
        async for _ in wait:
            pass
    except JobsError as exc:
        error = exc
    elapsed = time.monotonic() - started
    if stuck is not None:
        stuck.cancel()
        await asyncio.wait([stuck])
    return elapsed, error


def _quietly(call: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(JobsError):
        call(*args)

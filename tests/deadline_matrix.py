"""The deadline fault matrix: one wait per fault, against the real local fake registry.

Each scenario breaks one route of a wait (the state check, the subscription, the token
exchange, the bare-id probe, the connection itself) in a way that used to hold a wait far past
its timeout. :func:`run_scenario` runs one wait with the library's default retries and reports
how long it took, what it raised and what it left open. ``tests/test_deadline.py`` checks
every scenario; ``bench/run.py`` reports the largest overrun.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Optional

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
)


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


def run_scenario(scenario: Scenario, timeout: Optional[float]) -> Outcome:
    """Wait for a job that never ends under ``scenario``'s fault, with ``timeout``."""
    registry = FakeRegistry(
        speed=0.01,
        keepalive_interval=1.0,
        api_key=API_KEY if scenario.api_key else None,
        api_secret=API_SECRET if scenario.api_key else None,
        faults=scenario.faults,
    ).start()
    try:
        job_id = registry.add_job("build", "manual")
        port = free_port() if scenario.refused else registry.port
        credentials = {"api_key": API_KEY, "api_secret": API_SECRET} if scenario.api_key else {}
        client = JobsClient(f"http://127.0.0.1:{port}", **credentials)  # type: ignore[arg-type]
        job = job_id if scenario.bare_id else ("build", job_id)
        error: Optional[BaseException] = None
        started = time.monotonic()
        try:
            client.wait_for(job, timeout=timeout)
        except JobsError as exc:
            error = exc
        elapsed = time.monotonic() - started
        client.close()
        return Outcome(elapsed, error, client_connections(port))
    finally:
        registry.stop()

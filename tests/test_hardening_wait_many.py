"""Every stream fault of the fake registry against ``wait_all``: the exact outcome, and nothing
left behind (streams, client sockets, threads).

The faults hit the first subscription (or the first two) to the tenant's stream. Three manual
jobs end one at a time, as the waiter observes the registry: one on each ``ack`` and one on
each pause, so that every fault meets job events whatever its kind (before or after ``ack``).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest

from waylay_jobs import AuthError, Event, JobsClient
from waylay_jobs.testing import FakeRegistry, Faults

from .netcheck import client_connections
from .waits import wait_all_with

FAULTS = {
    "close-delimited": Faults(framing="close", times=1),
    "LF line ends": Faults(line_ending="\n", times=1),
    "CR line ends": Faults(line_ending="\r", times=1),
    "BOM": Faults(bom=True, times=1),
    "dropped after one event": Faults(drop_after=1, times=1),
    "silent after ack": Faults(stall_after=0, times=1),
    "malformed JSON": Faults(malformed_json=True, times=1),
    "unknown event": Faults(unknown_event=True, times=1),
    "oversized event": Faults(oversized=9_000_000, times=1),
    "503 twice, Retry-After 0": Faults(status=503, retry_after="0", times=2),
    "429 once": Faults(status=429, retry_after="0", times=1),
    "HTML 502 page": Faults(status=502, html=True, times=1),
    "wrong content type": Faults(content_type="text/html", times=1),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_wait_all_rides_out_the_fault_and_leaves_nothing_behind(
    make_fake_registry: Callable[..., FakeRegistry], fault: Faults
) -> None:
    before = set(threading.enumerate())
    registry = make_fake_registry(speed=0.005, keepalive_interval=60, faults=fault)
    jobs = [("build", registry.add_job("build", "manual")) for _ in range(3)]
    ended: list[int] = []

    def end_next(*_: Any) -> None:
        if len(ended) < len(jobs):
            registry.transition(*jobs[len(ended)], "completed")
            ended.append(len(ended))

    def on_event(event: Event) -> None:
        if event.event == "ack":
            end_next()

    client = JobsClient(registry.url, retries=0)
    try:
        finals = wait_all_with(
            client, jobs, timeout=30, idle_timeout=0.3, on_event=on_event, _sleep=end_next
        )
    finally:
        client.close()
    assert [(str(f.job.type), f.job.job.id, str(f.job.state)) for f in finals] == [
        (t, i, "completed") for t, i in jobs
    ]
    registry.wait_for_open_streams(0, timeout=5)
    assert client_connections(registry.port) == 0
    assert registry.errors == []
    registry.stop()
    assert [t.name for t in threading.enumerate() if t not in before] == []


def test_a_refused_authorisation_ends_wait_all_at_once_and_leaves_nothing_behind(
    make_fake_registry: Callable[..., FakeRegistry],
) -> None:
    # Without credentials to renew, a 401 will not change by asking again (as for wait_for).
    before = set(threading.enumerate())
    registry = make_fake_registry(speed=0.005, faults=Faults(status=401, times=1))
    jobs = [("build", registry.add_job("build", "manual")) for _ in range(2)]
    client = JobsClient(registry.url, retries=0)
    try:
        with pytest.raises(AuthError, match="got 401"):
            client.wait_all(jobs, timeout=30)
        assert len(registry.requests) == 1  # the refused subscription, nothing after it
    finally:
        client.close()
    assert client_connections(registry.port) == 0
    registry.stop()
    assert [t.name for t in threading.enumerate() if t not in before] == []

"""Many waits of one event loop over one shared event stream (``_wait.shared``), against the
fake registry: what Airflow's triggers in one triggerer do."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from waylay_jobs import JobResponse, NotFoundError, WaitTimeout
from waylay_jobs._config import Credentials
from waylay_jobs._http.aio import AsyncTransport
from waylay_jobs._wait.machine import WaitOptions
from waylay_jobs._wait.shared import wait_shared
from waylay_jobs._wait.targets import Target
from waylay_jobs.testing import FakeRegistry, Faults

from .netcheck import client_connections

EVENTS = "/registry/v2/jobs/events"
OPTIONS = WaitOptions(raise_on_failure=False, idle_timeout=5.0, poll_interval=0.5)


def transport(registry: FakeRegistry, **credentials: Any) -> AsyncTransport:
    return AsyncTransport(Credentials(gateway_url=registry.url, **credentials))


def streams(registry: FakeRegistry) -> int:
    return sum(1 for r in registry.requests if r.path == EVENTS)


@pytest.fixture
def registry(make_fake_registry: Any) -> FakeRegistry:
    return make_fake_registry(speed=0.01)


def test_forty_waits_share_one_stream_and_each_gets_its_own_job(registry: FakeRegistry) -> None:
    outcomes = ["success"] * 30 + ["fail"] * 10
    jobs = [
        ("build" if i % 2 else "deploy", registry.add_job("build" if i % 2 else "deploy", o))
        for i, o in enumerate(outcomes)
    ]

    async def main() -> list[JobResponse]:
        # A transport per wait, as each trigger builds its own: the credentials group them.
        waits = [wait_shared(transport(registry), Target(t, i), OPTIONS) for t, i in jobs]
        return await asyncio.gather(*waits)

    finals = asyncio.run(main())
    assert [(str(f.job.type), str(f.job.job.id)) for f in finals] == jobs
    assert [str(f.job.state) for f in finals] == ["completed"] * 30 + ["failed"] * 10
    assert streams(registry) == 1
    registry.wait_for_open_streams(0)
    assert client_connections(registry.port) == 0


def test_waits_that_come_one_by_one_for_ended_jobs_open_no_stream(registry: FakeRegistry) -> None:
    # As after a triggerer restart: the triggers are adopted one at a time, their jobs ended
    # while no triggerer ran. Each looks at its job once; none needs a stream.
    ended = [registry.add_job("build", "manual") for _ in range(5)]
    for job_id in ended:
        registry.transition("build", job_id, "completed")

    async def main() -> list[JobResponse]:
        return [
            await wait_shared(transport(registry), Target("build", job_id), OPTIONS)
            for job_id in ended
        ]

    assert [str(f.job.state) for f in asyncio.run(main())] == ["completed"] * 5
    assert streams(registry) == 0
    assert len(registry.requests) == 5


def test_a_wait_that_leaves_does_not_disturb_the_others_and_the_last_closes_the_stream(
    registry: FakeRegistry,
) -> None:
    jobs = [registry.add_job("build", "manual") for _ in range(4)]

    async def main() -> None:
        waits = [
            asyncio.ensure_future(wait_shared(transport(registry), Target("build", i), OPTIONS))
            for i in jobs
        ]
        await asyncio.to_thread(registry.wait_for_subscribers, 1)
        registry.transition("build", jobs[0], "completed")
        assert str((await waits[0]).job.state) == "completed"  # it left: its job ended
        waits[1].cancel()  # as the triggerer does for a cleared task
        await asyncio.wait([waits[1]])
        registry.transition("build", jobs[2], "completed")
        assert str((await waits[2]).job.state) == "completed"  # the stream still serves it
        assert registry.open_streams == 1
        waits[3].cancel()  # the last one leaves
        await asyncio.wait([waits[3]])

    asyncio.run(main())
    registry.wait_for_open_streams(0)
    assert streams(registry) == 1


def test_each_wait_keeps_its_own_deadline(registry: FakeRegistry) -> None:
    stuck = registry.add_job("build", "manual")
    done = registry.add_job("build", "success")

    async def main() -> tuple[BaseException, JobResponse]:
        short = wait_shared(transport(registry), Target("build", stuck), OPTIONS, timeout=0.3)
        long = wait_shared(transport(registry), Target("build", done), OPTIONS, timeout=30)
        results = await asyncio.gather(short, long, return_exceptions=True)
        assert isinstance(results[0], BaseException)
        assert isinstance(results[1], JobResponse)
        return results[0], results[1]

    timed_out, final = asyncio.run(main())
    assert isinstance(timed_out, WaitTimeout)
    assert timed_out.job_id == stuck
    assert timed_out.last_state == "waiting"
    assert str(final.job.state) == "completed"


def test_an_unknown_job_fails_only_its_own_wait(registry: FakeRegistry) -> None:
    real = registry.add_job("build", "success")

    async def main() -> list[Any]:
        waits = [
            wait_shared(transport(registry), Target("build", "no-such-job"), OPTIONS),
            wait_shared(transport(registry), Target("build", real), OPTIONS),
        ]
        return await asyncio.gather(*waits, return_exceptions=True)

    missing, final = asyncio.run(main())
    assert isinstance(missing, NotFoundError)
    assert str(final.job.state) == "completed"


STREAM_FAULTS = {
    "dropped twice": Faults(drop_after=2, times=2),
    "503 twice": Faults(endpoint="events", status=503, retry_after="0", times=2),
    "silent": Faults(stall_after=0, times=1),
}


@pytest.mark.parametrize("fault", STREAM_FAULTS.values(), ids=STREAM_FAULTS.keys())
def test_a_fault_on_the_shared_stream_is_ridden_out_for_every_wait(
    make_fake_registry: Any, fault: Faults
) -> None:
    # Every wait still ends right, over a stream opened again (a silent one is noticed by the
    # idle timeout), and none fails because of the stream.
    registry = make_fake_registry(speed=0.01, faults=fault)
    options = WaitOptions(raise_on_failure=False, idle_timeout=0.3, poll_interval=0.5)
    jobs = [registry.add_job("build", "success", start=False) for _ in range(6)]

    async def start_when_subscribed() -> None:
        # Started once the stream is up, so that their events come over it (and drop it).
        await asyncio.to_thread(registry.wait_for_subscribers, 1)
        for job in jobs:
            registry.start_job("build", job)

    async def main() -> list[JobResponse]:
        starter = asyncio.ensure_future(start_when_subscribed())
        finals = await asyncio.gather(
            *(wait_shared(transport(registry), Target("build", i), options) for i in jobs)
        )
        await starter
        return finals

    finals = asyncio.run(main())
    assert [str(f.job.state) for f in finals] == ["completed"] * 6
    if fault.stall_after is None:
        assert streams(registry) >= 2  # it failed, and the wait subscribed again
    # A silent stream sent no job event: the ends were found by the check its idle timeout
    # led to (and the jobs had all ended by then: no second stream was needed).
    registry.wait_for_open_streams(0)


def test_different_credentials_do_not_share_a_stream(make_fake_registry: Any) -> None:
    registry = make_fake_registry(speed=0.01, tokens=("one", "two"))
    jobs = [registry.add_job("build", "success") for _ in range(4)]

    async def main() -> list[JobResponse]:
        return await asyncio.gather(
            *(
                wait_shared(
                    transport(registry, token=("one", "two")[n % 2]), Target("build", i), OPTIONS
                )
                for n, i in enumerate(jobs)
            )
        )

    assert [str(f.job.state) for f in asyncio.run(main())] == ["completed"] * 4
    assert streams(registry) == 2

"""wait_all and as_completed against the real local fake registry: one stream for many jobs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from waylay_jobs import (
    Event,
    InvalidArgument,
    JobEvent,
    JobFailed,
    JobReference,
    JobsClient,
    JobsFailed,
    NotFoundError,
    TransportError,
    WaitTimeout,
)
from waylay_jobs._exceptions import WaitCancelled
from waylay_jobs.testing import FakeRegistry, Faults

from .netcheck import client_connections
from .waits import wait_all_with


@pytest.fixture
def registry(make_fake_registry: Callable[..., FakeRegistry]) -> FakeRegistry:
    return make_fake_registry(speed=0.005)


@pytest.fixture
def client(registry: FakeRegistry) -> Iterator[JobsClient]:
    with JobsClient(registry.url, retries=0) as client:
        yield client


def _requests(registry: FakeRegistry, kind: str) -> list[str]:
    """The query strings of the requests of one kind: events, list or get."""
    found = []
    for r in registry.requests:
        if r.path.endswith("/jobs/events"):
            what = "events"
        elif r.path.endswith("/jobs/"):
            what = "list"
        else:
            what = "get"
        if what == kind:
            found.append(r.query)
    return found


def _assert_nothing_left_open(client: JobsClient, registry: FakeRegistry) -> None:
    client.close()
    assert client_connections(registry.port) == 0


def _ids(finals: list[Any]) -> list[tuple[str, str]]:
    return [(str(f.job.type), str(f.job.job.id)) for f in finals]


class TestOutcomes:
    def test_results_come_in_the_order_given_whatever_form_each_job_takes(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        a = registry.add_job("build", "success")
        b = registry.add_job("deploy", "success", step=2)
        c = registry.add_job("verify", "finished")
        d = registry.add_job("scale", "success")
        e = registry.add_job("build", "retry")
        listed = next(j for j in client.list(type="build").jobs if j.id == e)
        jobs: list[Any] = [
            ("deploy", b),
            c,  # a bare id: its type is found first
            JobReference(type="build", id=a),
            f"{registry.url}/registry/v2/jobs/scale/{d}",
            listed,
            ("deploy", b),  # given twice: back at both positions
        ]
        finals = client.wait_all(jobs, timeout=30)
        assert _ids(finals) == [
            ("deploy", b), ("verify", c), ("build", a), ("scale", d), ("build", e), ("deploy", b)
        ]  # fmt: skip
        assert all(f.job.state == "completed" for f in finals)
        assert finals[-1] is finals[0]
        assert len(_requests(registry, "events")) == 1
        _assert_nothing_left_open(client, registry)

    def test_an_empty_list_returns_at_once_without_a_request(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        assert client.wait_all([], timeout=0) == []
        assert list(client.as_completed(iter(()))) == []
        assert registry.requests == []

    def test_failures_raise_jobs_failed_only_after_every_job_ended(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        ok = registry.add_job("build", "success", step=4)  # ends last
        bad1 = registry.add_job("deploy", "fail", reason="pull back-off")
        bad2 = registry.add_job("build", "fail", reason="npm ERR!")
        jobs = [("build", ok), ("deploy", bad1), ("build", bad2)]
        with pytest.raises(JobsFailed, match="2 of the 3 jobs failed") as info:
            client.wait_all(jobs, timeout=30)
        error = info.value
        assert issubclass(type(error), JobFailed)  # what a wait_for caller already catches
        assert [f.job.state for f in error.results] == ["completed", "failed", "failed"]
        assert _ids(error.failed) == [("deploy", bad1), ("build", bad2)]
        assert error.job is error.failed[0]
        assert error.reason == "pull back-off"

    def test_failed_jobs_are_returned_when_asked(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        bad = registry.add_job("deploy", "fail", reason="boom")
        finals = client.wait_all([("deploy", bad)], timeout=30, raise_on_failure=False)
        assert finals[0].job.state == "failed"
        assert finals[0].job.job.failed_reason == "boom"

    def test_jobs_that_ended_before_the_wait_return_from_the_first_check(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        done = [registry.add_job("build", "finished") for _ in range(3)]
        done.append(registry.add_job("deploy", "finished-failed"))
        finals = client.wait_all(
            [("build", i) for i in done[:3]] + [("deploy", done[3])], raise_on_failure=False
        )
        assert [f.job.state for f in finals] == ["completed"] * 3 + ["failed"]
        # One subscription, one list for the three builds, a get for each final job.
        assert len(_requests(registry, "events")) == 1
        assert _requests(registry, "list") == ["limit=1000&type=build"]
        assert len(_requests(registry, "get")) == 4

    def test_a_failed_attempt_followed_by_a_retry_is_not_the_end(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        retried = registry.add_job("build", "manual")
        other = registry.add_job("build", "manual")
        states: list[str] = []

        def on_event(event: Event) -> None:
            if event.event == "ack":
                registry.transition("build", retried, "failed", final=False)
                registry.transition("build", retried, "delayed")
            elif isinstance(event, JobEvent):
                states.append(event.event)
                if event.event == "delayed":
                    registry.transition("build", retried, "active")
                    registry.transition("build", retried, "completed")
                    registry.transition("build", other, "completed")

        finals = client.wait_all([("build", retried), ("build", other)], on_event=on_event)
        assert [f.job.state for f in finals] == ["completed", "completed"]
        assert states[:2] == ["failed", "delayed"]

    def test_state_changes_are_logged_once_each(
        self, registry: FakeRegistry, client: JobsClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        job_id = registry.add_job("build", "manual")

        def on_event(event: Event) -> None:
            if event.event == "ack":
                registry.transition("build", job_id, "active")
            elif event.event == "active":
                registry.transition("build", job_id, "completed")

        caplog.set_level(logging.INFO, logger="waylay_jobs")
        client.wait_all([("build", job_id)], timeout=30, on_event=on_event)
        messages = [r.getMessage() for r in caplog.records]
        lines = [m for m in messages if f"build job {job_id} is" in m]
        # Moved to active before the check after ack: the check and the event agree, one line.
        assert [line.split(" is ")[1].split()[0].rstrip(",") for line in lines] == [
            "active",
            "completed",
        ]


class TestAsCompleted:
    def test_yields_each_job_as_it_ends_failed_ones_included(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        a, b, c = (registry.add_job("build", "manual") for _ in range(3))
        registry.transition("build", c, "completed")
        seen = []
        for final in client.as_completed([("build", a), ("build", b), ("build", c)], timeout=30):
            seen.append((final.job.job.id, str(final.job.state)))
            if len(seen) == 1:
                registry.transition("build", a, "completed")
            elif len(seen) == 2:
                registry.transition("build", b, "failed", failed_reason="no")
        assert seen == [(c, "completed"), (a, "completed"), (b, "failed")]

    def test_a_job_given_twice_is_yielded_twice(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        a = registry.add_job("build", "finished")
        assert len(list(client.as_completed([("build", a), a]))) == 2

    def test_leaving_the_loop_early_closes_the_stream(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        a = registry.add_job("build", "finished")
        b = registry.add_job("build", "manual")
        results = client.as_completed([("build", a), ("build", b)])
        for final in results:
            assert final.job.job.id == a
            break
        results.close()
        registry.wait_for_open_streams(0, timeout=10)
        _assert_nothing_left_open(client, registry)

    def test_bad_arguments_fail_at_the_call_before_any_request(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        with pytest.raises(InvalidArgument, match="expected a list of jobs"):
            client.as_completed("abc")
        with pytest.raises(InvalidArgument, match="non-empty strings"):
            client.as_completed([("build", "")])
        with pytest.raises(InvalidArgument, match="timeout"):
            client.wait_all([("build", "x")], timeout=-1)
        assert registry.requests == []


class TestMissingJobs:
    def test_jobs_that_do_not_exist_are_named_before_anything_is_reported(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        done = registry.add_job("build", "finished")
        jobs = [("build", done), "no-such-id", ("deploy", "nope")]
        results = client.as_completed(jobs, timeout=30)
        with pytest.raises(NotFoundError) as info:
            next(results)
        message = str(info.value)
        assert "2 of the 3 jobs do not exist" in message
        assert "no-such-id" in message
        assert "deploy job nope" in message

    def test_a_gateway_that_never_answers_is_an_error(self) -> None:
        with JobsClient("http://127.0.0.1:9", retries=0) as client, pytest.raises(TransportError):
            client.wait_all(["abc", ("build", "x")], timeout=10)


class TestChildren:
    def test_children_events_do_not_end_their_parents(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        parent = registry.add_job_with_children("verify", ("build", "deploy"), start=False)
        other = registry.add_job("undeploy", "manual")
        (deploy,) = registry.children("verify", parent)
        (build,) = registry.children(*deploy)
        seen: list[tuple[str, str]] = []

        def on_event(event: Event) -> None:
            if event.event == "ack":
                registry.start_job("verify", parent)
            elif isinstance(event, JobEvent):
                seen.append((str(event.job_type), event.event))
                if (str(event.job_type), event.event) == ("verify", "completed"):
                    registry.transition("undeploy", other, "completed")

        finals = client.wait_all(
            [("verify", parent), ("undeploy", other)], timeout=30, on_event=on_event, children=True
        )
        assert [f.job.state for f in finals] == ["completed", "completed"]
        # The children's ends came first, and did not end the parent.
        assert seen.index(("build", "completed")) < seen.index(("verify", "completed"))
        assert seen.index(("deploy", "completed")) < seen.index(("verify", "completed"))
        assert build[0] == "build"

    def test_without_children_only_the_jobs_waited_for_reach_on_event(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        mine = registry.add_job("build", "manual")
        noise = registry.add_job("build", "manual")
        seen: list[str] = []

        def on_event(event: Event) -> None:
            if event.event == "ack":
                registry.transition("build", noise, "completed")
                registry.transition("build", mine, "active")
            elif isinstance(event, JobEvent):
                seen.append(str(event.job_id))
                registry.transition("build", mine, "completed")

        client.wait_all([("build", mine)], timeout=30, on_event=on_event)
        assert seen
        assert set(seen) == {mine}

    def test_one_type_subscribes_with_type_and_mixed_types_without(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        a = registry.add_job("build", "finished")
        b = registry.add_job("deploy", "finished")
        # The first check finds both ended; nothing needs a stream for long, but it is opened.
        client.wait_all([("build", a)])
        client.wait_all([("build", a), ("deploy", b)])
        assert _requests(registry, "events") == ["type=build", ""]


class TestFaults:
    def _manual(self, registry: FakeRegistry, count: int = 3) -> list[tuple[str, str]]:
        return [("build", registry.add_job("build", "manual")) for _ in range(count)]

    def test_a_dropped_stream_rechecks_then_reconnects(
        self, make_fake_registry: Callable[..., FakeRegistry]
    ) -> None:
        registry = make_fake_registry(faults=Faults(drop_after=1, times=1))
        jobs = self._manual(registry)
        acks = 0

        def on_event(event: Event) -> None:
            nonlocal acks
            if event.event == "ack":
                acks += 1
                if acks == 1:  # its event is written, then the stream drops
                    registry.transition(*jobs[0], "completed")
                else:
                    registry.transition(*jobs[1], "completed")
                    registry.transition(*jobs[2], "failed", failed_reason="x")

        with JobsClient(registry.url, retries=0) as client:
            finals = wait_all_with(
                client, jobs, timeout=30, on_event=on_event, raise_on_failure=False,
                _sleep=lambda s: None,
            )  # fmt: skip
        assert [f.job.state for f in finals] == ["completed", "completed", "failed"]
        assert len(_requests(registry, "events")) == 2
        # The check after the drop looks for ends only, among jobs created since the oldest.
        rechecks = [q for q in _requests(registry, "list") if "state=" in q]
        assert rechecks
        assert all("state=completed&state=failed" in q and "createdAfter=" in q for q in rechecks)

    def test_a_silent_stream_is_noticed_by_the_idle_timeout(
        self, make_fake_registry: Callable[..., FakeRegistry]
    ) -> None:
        registry = make_fake_registry(faults=Faults(stall_after=0, times=1))
        jobs = self._manual(registry)

        def sleep(seconds: float) -> None:  # the backoff after the silence
            for job in jobs:
                if registry.get_job_state(*job) != "completed":
                    registry.transition(*job, "completed")

        with JobsClient(registry.url, retries=0) as client:
            finals = wait_all_with(client, jobs, timeout=30, idle_timeout=0.2, _sleep=sleep)
        assert [f.job.state for f in finals] == ["completed"] * 3
        assert len(_requests(registry, "events")) == 2

    def test_a_refused_stream_rechecks_then_reconnects(
        self, make_fake_registry: Callable[..., FakeRegistry]
    ) -> None:
        registry = make_fake_registry(faults=Faults(status=503, times=2))
        jobs = self._manual(registry)
        pauses: list[float] = []

        def sleep(seconds: float) -> None:
            pauses.append(seconds)
            if len(pauses) == 2:  # while the stream is refused: the recheck must find it
                registry.transition(*jobs[0], "completed")

        def on_event(event: Event) -> None:
            if event.event == "ack":
                registry.transition(*jobs[1], "completed")
                registry.transition(*jobs[2], "completed")

        with JobsClient(registry.url, retries=0) as client:
            finals = wait_all_with(client, jobs, timeout=30, on_event=on_event, _sleep=sleep)
        assert [f.job.state for f in finals] == ["completed"] * 3
        assert len(_requests(registry, "events")) == 3
        assert len(pauses) == 2
        assert all(p >= 1 for p in pauses)  # Retry-After: 1 is a floor

    def test_a_stream_that_keeps_failing_falls_back_to_polling_with_list(
        self, make_fake_registry: Callable[..., FakeRegistry], caplog: pytest.LogCaptureFixture
    ) -> None:
        registry = make_fake_registry(faults=Faults(status=503, retry_after=None))
        jobs = self._manual(registry, 4)
        polls = 0

        def sleep(seconds: float) -> None:
            nonlocal polls
            polls += 1
            if polls <= len(jobs):  # one job ends between two polls
                registry.transition(*jobs[polls - 1], "completed")

        caplog.set_level(logging.INFO, logger="waylay_jobs")
        with JobsClient(registry.url, retries=0) as client:
            finals = wait_all_with(
                client, jobs, timeout=30, max_stream_failures=2, poll_interval=0.01,
                _sleep=sleep,
            )  # fmt: skip
        assert [f.job.state for f in finals] == ["completed"] * 4
        assert len(_requests(registry, "events")) == 2
        polls_sent = [q for q in _requests(registry, "list") if "state=" in q]
        assert len(polls_sent) >= 3
        # Polling costs one list per round, and one get per job to fetch its final state.
        assert len(_requests(registry, "get")) == 4
        assert any("instead" in r.getMessage() for r in caplog.records)


class TestDeadline:
    def test_the_deadline_raises_wait_timeout_with_the_pending_jobs(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        done = registry.add_job("build", "finished")
        slow = registry.add_job("deploy", "manual")
        slower = registry.add_job("build", "manual")
        reference = JobReference(type="build", id=slower)
        # Long enough for the first check on a busy machine: the state must be known by then.
        with pytest.raises(WaitTimeout, match=r"2 of the 3 jobs did not end within 2s") as info:
            client.wait_all([("build", done), ("deploy", slow), reference], timeout=2)
        assert info.value.pending == [("deploy", slow), reference]
        assert info.value.job_id == slow
        assert info.value.last_state == "waiting"
        _assert_nothing_left_open(client, registry)

    def test_as_completed_reports_the_ended_jobs_before_the_deadline(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        done = registry.add_job("build", "finished")
        slow = registry.add_job("build", "manual")
        results = client.as_completed([slow, done], timeout=2)
        assert next(results).job.job.id == done
        with pytest.raises(WaitTimeout) as info:
            next(results)
        assert info.value.pending == [slow]


class TestCancel:
    def test_setting_cancel_ends_the_wait_and_closes_the_stream(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        jobs = [("build", registry.add_job("build", "manual")) for _ in range(2)]
        stop = threading.Event()

        def on_event(event: Event) -> None:
            if event.event == "ack":
                stop.set()

        with pytest.raises(WaitCancelled, match="2 had not ended"):
            client.wait_all(jobs, timeout=30, on_event=on_event, cancel=stop)
        _assert_nothing_left_open(client, registry)


class TestScale:
    def test_three_hundred_jobs_of_mixed_types_over_one_stream(
        self, make_fake_registry: Callable[..., FakeRegistry]
    ) -> None:
        registry = make_fake_registry(keepalive_interval=5.0)
        types = ("build", "deploy", "verify", "undeploy", "scale")
        jobs = [(types[i % 5], registry.add_job(types[i % 5], "manual")) for i in range(300)]
        expected = ["failed" if i % 7 == 0 else "completed" for i in range(300)]

        def drive() -> None:
            registry.wait_for_subscribers(1, timeout=30)
            for i in reversed(range(300)):
                registry.transition(*jobs[i], expected[i])

        driver = threading.Thread(target=drive)
        driver.start()
        with JobsClient(registry.url, retries=0) as client:
            finals = client.wait_all(jobs, timeout=60, raise_on_failure=False)
        driver.join()
        assert [str(f.job.state) for f in finals] == expected
        assert _ids(finals) == jobs
        assert len(_requests(registry, "events")) == 1
        # One list per type for the first check (60 jobs a page), one get per final job,
        # and a few more for jobs that ended during the check: far from 3 per job.
        assert len(_requests(registry, "get")) <= 300 + 10
        assert len(registry.requests) <= 320

    def test_the_first_check_pages_through_a_list_capped_by_the_server(
        self, make_fake_registry: Callable[..., FakeRegistry]
    ) -> None:
        registry = make_fake_registry(max_limit=10)
        now = datetime.now(timezone.utc)
        jobs = [
            ("build", registry.add_job("build", "manual", created_at=now - timedelta(seconds=i)))
            for i in range(25)
        ]

        def on_event(event: Event) -> None:
            if event.event == "ack":
                for job in jobs:
                    registry.transition(*job, "completed")

        with JobsClient(registry.url, retries=0) as client:
            client.wait_all(jobs, timeout=30, on_event=on_event)
        pages = _requests(registry, "list")
        assert len(pages) == 3
        assert all("createdBefore=" in q for q in pages[1:])
        assert len(_requests(registry, "get")) == 25  # the final jobs, nothing more


class TestNothingLeftBehind:
    def test_no_reader_thread_or_connection_outlives_a_wait_whatever_its_end(
        self, registry: FakeRegistry
    ) -> None:
        done = registry.add_job("build", "finished")
        stuck = registry.add_job("build", "manual")
        before = {t.name for t in threading.enumerate()}
        with JobsClient(registry.url, retries=0) as client:
            client.wait_all([("build", done)])
            with pytest.raises(WaitTimeout):
                client.wait_all([("build", done), ("build", stuck)], timeout=0.3)
            results = client.as_completed([("build", done), ("build", stuck)])
            next(results)
            results.close()
        after = {t.name for t in threading.enumerate()}
        assert "waylay-jobs-events" not in after - before
        assert client_connections(registry.port) == 0

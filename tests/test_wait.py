"""wait_for against the real local fake registry: outcomes, races, faults, deadlines, signals."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any, Callable
from urllib.parse import quote

import pytest

from waylay_jobs import (
    AuthError,
    Event,
    InvalidArgument,
    JobFailed,
    JobReference,
    JobsClient,
    NotFoundError,
    UnknownEvent,
    WaitCancelled,
    WaitTimeout,
)
from waylay_jobs.testing import FakeRegistry, Faults

from .netcheck import client_connections
from .waits import wait_with


def _assert_nothing_left_open(client: JobsClient, registry: FakeRegistry) -> None:
    # Closing the client drops its idle pooled connections; a stream left open would remain.
    client.close()
    assert client_connections(registry.port) == 0


@pytest.fixture
def registry(make_fake_registry: Callable[..., FakeRegistry]) -> FakeRegistry:
    return make_fake_registry(speed=0.005)


@pytest.fixture
def client(registry: FakeRegistry) -> Iterator[JobsClient]:
    with JobsClient(registry.url, retries=0) as client:
        yield client


def _events_requests(registry: FakeRegistry) -> int:
    return sum(1 for r in registry.requests if r.path.endswith("/jobs/events"))


class TestOutcomes:
    def test_completed_job_returns_the_final_job_and_logs_progress(
        self, registry: FakeRegistry, client: JobsClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        job_id = registry.add_job("build", "success")
        caplog.set_level(logging.INFO, logger="waylay_jobs")
        final = client.wait_for(("build", job_id), timeout=30)
        assert final.job.state == "completed"
        assert final.job.job.id == job_id
        assert final.job.result is not None
        messages = [r.getMessage() for r in caplog.records if r.name == "waylay_jobs"]
        assert any(f"build job {job_id} is completed" in m for m in messages), messages

    def test_failed_job_raises_job_failed_with_the_reason(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("deploy", "fail", reason="image pull back-off")
        with pytest.raises(JobFailed, match="image pull back-off") as info:
            client.wait_for(("deploy", job_id), timeout=30)
        assert info.value.reason == "image pull back-off"
        assert info.value.job.job.state == "failed"

    def test_failed_job_is_returned_when_asked(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("deploy", "fail", reason="boom")
        final = client.wait_for(("deploy", job_id), timeout=30, raise_on_failure=False)
        assert final.job.state == "failed"
        assert final.job.job.failed_reason == "boom"

    def test_a_failure_followed_by_a_retry_is_not_the_end(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "retry")
        seen: list[str] = []
        final = client.wait_for(
            ("build", job_id), timeout=30, on_event=lambda e: seen.append(e.event)
        )
        assert final.job.state == "completed"
        assert "failed" in seen
        assert seen.index("failed") < seen.index("completed")

    def test_already_finished_job_returns_at_once(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "finished")
        final = client.wait_for(("build", job_id), timeout=30)
        assert final.job.state == "completed"
        assert _events_requests(registry) == 1

    def test_already_failed_job_raises_at_once(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "finished-failed", reason="it broke")
        with pytest.raises(JobFailed, match="it broke"):
            client.wait_for(("build", job_id), timeout=30)

    def test_children_events_reach_the_callback(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        parent = registry.add_job_with_children("verify", ("build", "deploy"))
        seen: list[tuple[str, str]] = []

        def on_event(event: Event) -> None:
            job = getattr(event.data, "job", None)
            if job is not None:
                seen.append((str(job.type), event.event))

        final = client.wait_for(("verify", parent), timeout=30, children=True, on_event=on_event)
        assert final.job.state == "completed"
        assert ("build", "completed") in seen
        assert ("deploy", "completed") in seen
        assert seen[-1] == ("verify", "completed")


class TestJobDesignations:
    def test_bare_id_is_resolved_by_probing_the_job_types(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("deploy", "finished")
        final = client.wait_for(job_id, timeout=30)
        assert final.job.type == "deploy"
        probes = [r.path for r in registry.requests if "/jobs/events" not in r.path]
        assert probes[0].startswith("/registry/v2/jobs/build/")
        assert probes[1].startswith("/registry/v2/jobs/deploy/")

    def test_unknown_bare_id_is_not_found_after_probing_every_type(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        with pytest.raises(NotFoundError, match="probed the job types"):
            client.wait_for("no-such-job", timeout=30)
        assert _events_requests(registry) == 0

    @pytest.mark.parametrize("form", ["ref", "summary", "response", "href", "event-href"])
    def test_every_designation_form(
        self, registry: FakeRegistry, client: JobsClient, form: str
    ) -> None:
        job_id = registry.add_job("scale", "finished")
        job: Any
        if form == "ref":
            job = JobReference(type="scale", id=job_id)
        elif form == "summary":
            job = next(j for j in client.list(type=["scale"]).jobs if j.id == job_id)
        elif form == "response":
            job = client.get("scale", job_id)
        elif form == "href":
            job = f"{registry.url}/registry/v2/jobs/scale/{job_id.replace('$', '%24')}"
        else:
            job = client.get("scale", job_id).links.event.href  # type: ignore[union-attr]
        assert client.wait_for(job, timeout=30).job.job.id == job_id

    @pytest.mark.parametrize(
        ("job", "message"),
        [
            (123, "got int"),
            ("", "empty"),
            (("build",), "pair"),
            (("build", ""), "pair"),
            (JobReference(type="build"), "has no id"),
            ("https://x/registry/v2/jobs/", "expected a job href"),
        ],
    )
    def test_bad_designations_fail_before_any_request(
        self, registry: FakeRegistry, client: JobsClient, job: Any, message: str
    ) -> None:
        with pytest.raises(InvalidArgument, match=message):
            client.wait_for(job)
        assert registry.requests == []

    @pytest.mark.parametrize(
        "options",
        [{"timeout": -1}, {"timeout": "10"}, {"idle_timeout": True}, {"poll_interval": -2}],
    )
    def test_bad_options_fail_before_any_request(
        self, registry: FakeRegistry, client: JobsClient, options: dict[str, Any]
    ) -> None:
        with pytest.raises(InvalidArgument):
            client.wait_for(("build", "x"), **options)
        assert registry.requests == []


class TestRaces:
    def test_event_sent_between_subscribing_and_get_is_not_lost(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "manual")

        def on_event(event: Event) -> None:
            # Runs before the waiter's first get: the job ends in the gap.
            if event.event == "ack":
                registry.transition("build", job_id, "active")
                registry.transition("build", job_id, "completed")

        final = client.wait_for(("build", job_id), timeout=30, on_event=on_event)
        assert final.job.state == "completed"

    def test_job_that_ends_while_waiting_is_seen_through_the_stream(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "manual")
        results: list[Any] = []
        waiter = threading.Thread(
            target=lambda: results.append(client.wait_for(("build", job_id), timeout=30))
        )
        waiter.start()
        registry.wait_for_subscribers(1, timeout=10)
        registry.transition("build", job_id, "active")
        registry.transition("build", job_id, "completed")
        waiter.join(30)
        assert not waiter.is_alive()
        assert results[0].job.state == "completed"
        assert _events_requests(registry) == 1


class TestFaults:
    @pytest.mark.parametrize(
        "fault",
        [
            pytest.param(Faults(drop_after=1, times=1), id="dropped-connection"),
            pytest.param(Faults(truncate_terminal=True, times=1), id="truncated-close"),
            pytest.param(Faults(malformed_json=True, times=1), id="malformed-json"),
            pytest.param(Faults(status=502, html=True, times=1), id="html-502"),
            pytest.param(Faults(status=503, retry_after="0", times=2), id="503-retry-after"),
            pytest.param(Faults(status=429, retry_after="0", times=1), id="429"),
            pytest.param(Faults(content_type="text/html", times=1), id="wrong-content-type"),
            pytest.param(Faults(framing="close"), id="close-delimited"),
            pytest.param(Faults(line_ending="\r"), id="cr-line-ends"),
            pytest.param(Faults(line_ending="\n", bom=True), id="lf-and-bom"),
            pytest.param(Faults(unknown_event=True), id="unknown-event"),
        ],
    )
    def test_wait_survives_stream_faults(
        self, registry: FakeRegistry, client: JobsClient, fault: Faults
    ) -> None:
        # Started by the first subscription, so that the stream meets the fault.
        job_id = registry.add_job("build", "success", faults=fault, start="subscribe")
        final = wait_with(client, ("build", job_id), timeout=30, _sleep=lambda s: None)
        assert final.job.state == "completed"
        _assert_nothing_left_open(client, registry)

    def test_stalled_stream_is_noticed_by_the_idle_timeout(
        self, registry: FakeRegistry, client: JobsClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        # A manual job: the first stream goes silent after ack; the job ends only when the
        # waiter backs off after noticing the silence, so every run takes the same path.
        job_id = registry.add_job("build", "manual", faults=Faults(stall_after=0, times=1))

        def sleep(seconds: float) -> None:
            registry.transition("build", job_id, "completed")

        caplog.set_level(logging.INFO, logger="waylay_jobs")
        final = wait_with(client, ("build", job_id), timeout=30, idle_timeout=0.2, _sleep=sleep)
        assert final.job.state == "completed"
        assert _events_requests(registry) == 2  # the silent one, then the one that saw the end
        assert any("no bytes" in r.getMessage() or "idle" in r.getMessage() for r in caplog.records)

    def test_malformed_event_is_logged_with_its_name_and_a_snippet(
        self, registry: FakeRegistry, client: JobsClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        # A manual job, moved as the waiter observes it: a scripted one may end before its
        # (malformed) active event is read, and a check with get would then see the end first.
        job_id = registry.add_job("build", "manual", faults=Faults(malformed_json=True, times=1))

        def on_event(event: Event) -> None:
            if event.event == "ack":
                registry.transition("build", job_id, "active")  # its event is the broken one

        def sleep(seconds: float) -> None:  # the waiter backs off after the broken event
            registry.transition("build", job_id, "completed")

        caplog.set_level(logging.INFO, logger="waylay_jobs")
        final = wait_with(client, ("build", job_id), timeout=30, on_event=on_event, _sleep=sleep)
        assert final.job.state == "completed"
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("'active' event" in w and '{"_links"' in w for w in warnings), warnings

    def test_unknown_event_reaches_the_callback(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        # A manual job that ends once the unknown event came through: a scripted one could
        # end before it, and the check with get after ack would then return first.
        job_id = registry.add_job("build", "manual", faults=Faults(unknown_event=True))
        seen: list[Event] = []

        def on_event(event: Event) -> None:
            seen.append(event)
            if isinstance(event, UnknownEvent):
                registry.transition("build", job_id, "completed")

        client.wait_for(("build", job_id), timeout=30, on_event=on_event)
        assert [e.event for e in seen if isinstance(e, UnknownEvent)] == ["progress"]

    def test_retry_after_is_a_floor_for_the_reconnect_delay(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        # Started by the first subscription that succeeds: the job cannot have ended before
        # the 503, so the waiter must back off.
        job_id = registry.add_job(
            "build",
            "success",
            faults=Faults(status=503, retry_after="7", times=1),
            start="subscribe",
        )
        sleeps: list[float] = []
        final = wait_with(client, ("build", job_id), timeout=30, _sleep=sleeps.append)
        assert final.job.state == "completed"
        assert sleeps
        assert sleeps[0] >= 7

    @pytest.mark.parametrize(
        ("status", "error"), [(401, AuthError), (403, AuthError), (404, NotFoundError)]
    )
    def test_no_retrying_on_auth_and_not_found(
        self, registry: FakeRegistry, client: JobsClient, status: int, error: type[Exception]
    ) -> None:
        job_id = registry.add_job("build", "manual", faults=Faults(status=status))
        with pytest.raises(error):
            client.wait_for(("build", job_id), timeout=30)
        assert _events_requests(registry) == 1

    def test_falls_back_to_polling_when_the_stream_keeps_failing(
        self, registry: FakeRegistry, client: JobsClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        job_id = registry.add_job("build", "manual", faults=Faults(status=503, retry_after="0"))
        caplog.set_level(logging.INFO, logger="waylay_jobs")
        polls = 0

        def sleep(seconds: float) -> None:
            nonlocal polls
            if any("polling" in r.getMessage() for r in caplog.records):
                polls += 1
                if polls == 2:
                    registry.transition("build", job_id, "completed")

        final = wait_with(
            client, ("build", job_id), timeout=30, max_stream_failures=3, _sleep=sleep
        )
        assert final.job.state == "completed"
        assert _events_requests(registry) == 3
        assert any("polling get" in r.getMessage() for r in caplog.records)


class TestDeadline:
    def test_timeout_raises_wait_timeout_with_the_last_state(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "manual")
        with pytest.raises(WaitTimeout) as info:
            client.wait_for(("build", job_id), timeout=0.3)
        assert isinstance(info.value, TimeoutError)
        assert info.value.last_state == "waiting"
        assert info.value.job_id == job_id
        assert "0.3s" in str(info.value)

    def test_no_read_outlives_the_deadline_on_a_silent_stream(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "manual", faults=Faults(stall_after=0))  # never ends
        # The idle timeout (60 s) would hang the test; the deadline bounds every read.
        with pytest.raises(WaitTimeout):
            client.wait_for(("build", job_id), timeout=0.3, idle_timeout=60)

    def test_timeout_none_still_notices_a_dead_connection(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "success", faults=Faults(stall_after=0, times=1))
        final = client.wait_for(("build", job_id), timeout=None, idle_timeout=0.2)
        assert final.job.state == "completed"


class TestInterrupts:
    def test_signal_handler_that_raises_stops_a_blocked_wait(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        class Alarm(Exception):
            pass

        def handler(signum: int, frame: Any) -> None:
            raise Alarm

        job_id = registry.add_job("build", "manual")
        previous = signal.signal(signal.SIGALRM, handler)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(Alarm):
                client.wait_for(("build", job_id))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        _assert_nothing_left_open(client, registry)

    def test_keyboard_interrupt_in_the_callback_propagates_and_closes(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "manual")

        def on_event(event: Event) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            client.wait_for(("build", job_id), on_event=on_event)
        _assert_nothing_left_open(client, registry)


@contextlib.contextmanager
def _logged(fragment: str) -> Iterator[threading.Event]:
    """An event set once the library logs a message containing ``fragment``."""
    seen = threading.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if fragment in record.getMessage():
                seen.set()

    logger = logging.getLogger("waylay_jobs")
    handler, level = Seen(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _wait_in_a_thread(
    client: JobsClient, job: Any, stop: threading.Event
) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``client.wait_for(job, cancel=stop)`` in a thread; what it raises is collected."""
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            client.wait_for(job, cancel=stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    return waiter, outcome


class TestCancel:
    def test_setting_the_event_unblocks_a_read_in_progress(
        self, make_fake_registry: Callable[..., FakeRegistry]
    ) -> None:
        # No keep-alives for a minute: the wait sits in a blocking read of a silent stream.
        registry = make_fake_registry(speed=0.005, keepalive_interval=60.0)
        job_id = registry.add_job("build", "manual")
        client = JobsClient(registry.url, retries=0)
        stop = threading.Event()
        with _logged(f"build job {job_id} is waiting") as learned:
            waiter, outcome = _wait_in_a_thread(client, ("build", job_id), stop)
            registry.wait_for_open_streams(1)
            assert learned.wait(10)  # the state check after ack was answered
        stop.set()
        waiter.join(timeout=10)
        assert not waiter.is_alive()
        assert len(outcome) == 1
        assert isinstance(outcome[0], WaitCancelled)
        assert outcome[0].job_id == job_id
        assert outcome[0].last_state == "waiting"
        assert not any(t.name == "waylay-jobs-cancel" for t in threading.enumerate())
        _assert_nothing_left_open(client, registry)

    def test_an_event_set_before_the_wait_sends_nothing(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "manual")
        stop = threading.Event()
        stop.set()
        with pytest.raises(WaitCancelled, match="was cancelled"):
            client.wait_for(("build", job_id), cancel=stop)
        assert registry.requests == []

    def test_setting_the_event_ends_a_pause(self, registry: FakeRegistry) -> None:
        # The subscription is refused with Retry-After: 60: the wait pauses for a minute.
        job_id = registry.add_job("build", "manual", faults=Faults(status=503, retry_after="60"))
        client = JobsClient(registry.url, retries=0)
        stop = threading.Event()
        waiter, outcome = _wait_in_a_thread(client, ("build", job_id), stop)
        registry.wait_for_requests(2)  # the refused subscription, then the state check
        stop.set()
        waiter.join(timeout=30)  # far less than the minute's pause
        assert not waiter.is_alive()
        assert [type(exc) for exc in outcome] == [WaitCancelled]
        _assert_nothing_left_open(client, registry)

    @pytest.mark.parametrize("endpoint", ["get", "token"])
    def test_setting_the_event_cuts_a_request_in_flight(
        self, make_fake_registry: Callable[..., FakeRegistry], endpoint: str
    ) -> None:
        # The state check (or the token exchange before anything) gets no answer for a
        # minute: the wait sits in a blocking read of that request's response.
        stall = Faults(endpoint=endpoint, delay=60.0)
        registry = make_fake_registry(speed=0.005, api_key="key", api_secret="secret", faults=stall)
        job_id = registry.add_job("build", "manual")
        client = JobsClient(registry.url, api_key="key", api_secret="secret", retries=0)
        check = f"/registry/v2/jobs/build/{quote(job_id, safe='')}"
        path = "/accounts/v1/tokens" if endpoint == "token" else check
        stop = threading.Event()
        waiter, outcome = _wait_in_a_thread(client, ("build", job_id), stop)
        registry.wait_for_requests(1, path=path)  # it arrived, and is not answered
        stop.set()
        waiter.join(timeout=10)  # far less than the minute the request would take
        assert not waiter.is_alive()
        assert [type(exc) for exc in outcome] == [WaitCancelled]
        _assert_nothing_left_open(client, registry)


class TestRetries:
    """``JobsClient(retries=N)`` is the policy of the requests a wait makes, and exactly one
    layer repeats them: a failing state check is sent 1 + N times back to back, no more."""

    @pytest.mark.parametrize("retries", [0, 2])
    @pytest.mark.parametrize("many", [False, True], ids=["wait_for", "wait_all"])
    def test_a_failing_check_is_sent_once_plus_the_retries(
        self, registry: FakeRegistry, retries: int, many: bool
    ) -> None:
        # The first 1 + N gets answer 503: all of them are the wait's first check, asked
        # again N times by the wait (a second layer would have sent more, and succeeded).
        failing = 1 + retries
        fault = Faults(endpoint="get", status=503, retry_after="0", times=failing)
        job_id = registry.add_job("build", "manual", faults=fault)
        path = f"/registry/v2/jobs/build/{quote(job_id, safe='')}"
        finals: list[Any] = []
        logged = _logged(f"build job {job_id} is waiting")  # the state a get told the wait
        with logged as learned, JobsClient(registry.url, retries=retries) as client:
            job = ("build", job_id)
            waiting = threading.Thread(
                target=lambda: finals.append(
                    client.wait_all([job], timeout=30) if many else client.wait_for(job)
                )
            )
            waiting.start()
            registry.wait_for_requests(failing, path=path, timeout=10)
            if many:
                # The tenant stream gives no close to check after: once its retries are
                # spent, the wait asks once more after a backoff, and that one is answered.
                assert learned.wait(10)
            registry.transition("build", job_id, "completed")
            waiting.join(30)
        gets = [r for r in registry.requests if r.path == path]
        # wait_for: the failing check, then the get that confirmed the end after close;
        # wait_all: the failing check, the one answered, and the one that confirmed the end.
        assert len(gets) == failing + (2 if many else 1)
        assert _events_requests(registry) == 1
        assert not waiting.is_alive()
        assert len(finals) == 1

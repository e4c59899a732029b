"""client.events() over a real local HTTP server: framing, promptness, limits, cancel, faults."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import Any, Callable

import pytest
import responses

from waylay_jobs import (
    AckEvent,
    ApiError,
    AuthError,
    CloseEvent,
    EventDecodeError,
    EventStream,
    EventTooLarge,
    IdleTimeout,
    InvalidArgument,
    JobEvent,
    JobsClient,
    KeepAliveEvent,
    StreamInterrupted,
    UnknownEvent,
)
from waylay_jobs.testing import FakeRegistry, Faults

from .netcheck import client_connections


@pytest.fixture
def registry(make_fake_registry: Callable[..., FakeRegistry]) -> FakeRegistry:
    # A long keep-alive interval: a stream is silent unless the test makes the job move.
    return make_fake_registry(speed=0.005, keepalive_interval=60)


@pytest.fixture
def client(registry: FakeRegistry) -> Iterator[JobsClient]:
    with JobsClient(registry.url, retries=0) as client:
        yield client


def _manual(registry: FakeRegistry, faults: Faults | None = None) -> str:
    return registry.add_job("build", "manual", faults=faults)


class TestRequest:
    @responses.activate
    def test_request_shape(self) -> None:
        responses.get(
            "https://gw.example/registry/v2/jobs/events",
            body=b"event: close\ndata: bye\n\n",
            content_type="text/event-stream",
        )
        with JobsClient("gw.example", token="t0k") as client:
            stream = client.events(query={"type": "build", "id": "a$b", "children": True})
            assert [e.event for e in stream] == ["close"]
        request = responses.calls[0].request
        assert request.url == (
            "https://gw.example/registry/v2/jobs/events?type=build&id=a%24b&children=true"
        )
        assert request.headers["Accept"] == "text/event-stream"
        assert request.headers["Accept-Encoding"] == "identity"
        assert request.headers["Authorization"] == "Bearer t0k"

    @responses.activate
    def test_keyword_form_sends_the_same_request(self) -> None:
        for _ in range(2):
            responses.get(
                "https://gw.example/registry/v2/jobs/events",
                body=b"event: close\ndata: bye\n\n",
                content_type="text/event-stream",
            )
        with JobsClient("https://gw.example") as client:
            list(client.events(type="deploy", id="x", children=False))
            list(client.events(query={"type": "deploy", "id": "x", "children": False}))
        assert responses.calls[0].request.url == responses.calls[1].request.url

    @pytest.mark.parametrize(
        "kwargs",
        [{"type": 123}, {"id": ""}, {"children": "yes"}, {"idle_timeout": 0}, {"type": ["a"]}],
    )
    def test_bad_input_fails_before_any_request(
        self, registry: FakeRegistry, client: JobsClient, kwargs: dict[str, Any]
    ) -> None:
        with pytest.raises(InvalidArgument):
            client.events(**kwargs)
        assert registry.requests == []


class TestPromptness:
    @pytest.mark.parametrize("framing", ["chunked", "close"])
    @pytest.mark.parametrize("line_ending", ["\r\n", "\n", "\r"])
    @pytest.mark.parametrize("size", ["small", "large"])
    def test_each_event_arrives_while_the_connection_stays_open(
        self,
        registry: FakeRegistry,
        client: JobsClient,
        framing: str,
        line_ending: str,
        size: str,
    ) -> None:
        job_id = _manual(registry, Faults(framing=framing, line_ending=line_ending))
        result = {"digest": "sha256:0", "log": ["x" * 1000] * (200 if size == "large" else 0)}
        # A read waiting for more than 10 s means the event was held back: IdleTimeout fails it.
        with client.events(type="build", id=job_id, idle_timeout=10) as stream:
            assert isinstance(next(stream), AckEvent)
            registry.transition("build", job_id, "active")
            event = next(stream)
            assert isinstance(event, JobEvent)
            assert event.event == "active"
            assert registry.open_streams == 1  # delivered before the server let go
            registry.transition("build", job_id, "completed", result=result)
            done = next(stream)
            assert done.event == "completed"
            assert len(done.data.data.returnvalue.log) == len(result["log"])
            assert isinstance(next(stream), CloseEvent)
            with pytest.raises(StopIteration):
                next(stream)


class TestLifecycle:
    def test_typed_events_of_a_job_with_children(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        parent = registry.add_job_with_children("verify", ("build", "deploy"), start="subscribe")
        events = list(client.events(type="verify", id=parent, children=True))
        assert isinstance(events[0], AckEvent)
        assert isinstance(events[-1], CloseEvent)
        jobs = [e for e in events if isinstance(e, JobEvent)]
        assert {str(e.job_type) for e in jobs} == {"verify", "build", "deploy"}
        build_done = next(e for e in jobs if e.job_type == "build" and e.event == "completed")
        assert build_done.data.data.returnvalue.digest.startswith("sha256:")
        assert build_done.data.timestamp
        assert build_done.data.function is not None
        assert jobs[-1].job_id == parent
        assert jobs[-1].state == "completed"

    def test_failed_event_carries_the_reason(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("deploy", "fail", reason="no luck", start="subscribe")
        events = list(client.events(type="deploy", id=job_id))
        failed = next(e for e in events if e.event == "failed")
        assert failed.data.data.failed_reason == "no luck"
        assert failed.data.data.prev == "active"

    def test_keep_alives_come_through(
        self, make_fake_registry: Callable[..., FakeRegistry]
    ) -> None:
        registry = make_fake_registry(speed=0.005, keepalive_interval=0.05)
        job_id = _manual(registry)
        with JobsClient(registry.url) as client, client.events(type="build", id=job_id) as stream:
            next(stream)
            assert isinstance(next(stream), KeepAliveEvent)

    def test_stream_ends_after_close_and_releases_the_connection(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "finished")
        stream = client.events(type="build", id=job_id)
        assert [e.event for e in stream] == ["ack", "close"]
        client.close()
        assert client_connections(registry.port) == 0


class TestRelease:
    def test_leaving_a_with_block_early_closes_the_connection(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = _manual(registry)
        with client.events(type="build", id=job_id) as stream:
            next(stream)
            assert client_connections(registry.port) == 1
        assert client_connections(registry.port) == 0

    def test_an_exception_in_the_loop_releases_the_connection(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = _manual(registry)

        def consume() -> None:
            for _event in client.events(type="build", id=job_id):
                raise ValueError("caller bug")

        with pytest.raises(ValueError, match="caller bug"):
            consume()
        assert client_connections(registry.port) == 0

    def test_a_stream_never_iterated_is_released_when_dropped(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        stream: EventStream | None = client.events(type="build", id=_manual(registry))
        assert client_connections(registry.port) == 1
        stream = None  # noqa: F841 - dropping the last reference is the point
        assert client_connections(registry.port) == 0

    def test_an_interrupt_before_the_stream_is_built_closes_the_response(
        self, registry: FakeRegistry, client: JobsClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Say a Ctrl-C lands right after the response opened, while the stream is being
        # built: the response has no owner yet, so the client must close it itself.
        def interrupted(*args: Any, **kwargs: Any) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(EventStream, "__init__", interrupted)
        with pytest.raises(KeyboardInterrupt) as info:
            client.events(type="build", id=_manual(registry))
        # The traceback (kept alive here, as a logged exception would keep it) still refers
        # to the response: only an explicit close can have released the connection.
        registry.wait_for_open_streams(0)
        assert client_connections(registry.port) == 0
        assert info.traceback

    def test_cancel_from_another_thread_unblocks_a_waiting_read(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        stream = client.events(type="build", id=_manual(registry))
        assert isinstance(next(stream), AckEvent)
        outcome: list[Any] = []

        def reader() -> None:
            try:
                outcome.append(list(stream))
            except Exception as exc:  # noqa: BLE001 - the assertion below reports it
                outcome.append(exc)

        thread = threading.Thread(target=reader)
        thread.start()
        registry.wait_for_open_streams(1)
        stream.cancel()
        thread.join(10)
        assert not thread.is_alive()
        assert outcome == [[]]
        assert client_connections(registry.port) == 0

    def test_a_signal_handler_that_raises_interrupts_a_blocked_read(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        class Alarm(Exception):
            pass

        def handler(signum: int, frame: Any) -> None:
            raise Alarm

        def read_two() -> None:
            with client.events(type="build", id=_manual(registry)) as stream:
                next(stream)
                signal.setitimer(signal.ITIMER_REAL, 0.1)
                next(stream)  # blocks: the job never moves

        previous = signal.signal(signal.SIGALRM, handler)
        try:
            with pytest.raises(Alarm):
                read_two()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert client_connections(registry.port) == 0


class TestFaults:
    """Scripted jobs here start with their first subscription: one that ended before the
    stream opened would get ``close`` at once and never meet its fault."""

    def test_idle_timeout(self, registry: FakeRegistry, client: JobsClient) -> None:
        job_id = registry.add_job(
            "build", "success", faults=Faults(stall_after=0), start="subscribe"
        )
        with pytest.raises(IdleTimeout, match="idle timeout"):
            list(client.events(type="build", id=job_id, idle_timeout=0.2))
        assert client_connections(registry.port) == 0

    def test_dropped_connection_is_an_interruption_not_an_end(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job(
            "build", "success", faults=Faults(drop_after=1), start="subscribe"
        )
        with pytest.raises(StreamInterrupted):
            list(client.events(type="build", id=job_id))

    def test_truncated_close_is_not_taken_for_the_end(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job(
            "build", "success", faults=Faults(truncate_terminal=True), start="subscribe"
        )
        seen: list[str] = []

        def consume() -> None:
            for event in client.events(type="build", id=job_id):
                seen.append(event.event)

        with pytest.raises(StreamInterrupted, match="unterminated event"):
            consume()
        assert "active" in seen  # the events before the cut came through
        assert "close" not in seen

    def test_oversized_event_is_rejected_and_the_connection_closed(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job(
            "build", "success", faults=Faults(oversized=3_000_000), start="subscribe"
        )
        with pytest.raises(EventTooLarge, match="at most 1000000 bytes"):
            list(client.events(type="build", id=job_id, max_event_size=1_000_000))
        assert client_connections(registry.port) == 0

    def test_malformed_json_names_the_event_and_shows_a_snippet(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        # A manual job, moved once the stream is open: a scripted one may have moved on
        # before the subscription, so which event comes first would depend on timing.
        job_id = _manual(registry, Faults(malformed_json=True))
        stream = client.events(type="build", id=job_id)
        assert isinstance(next(stream), AckEvent)
        registry.transition("build", job_id, "active")
        with pytest.raises(EventDecodeError) as info:
            next(stream)
        assert info.value.event == "active"
        assert info.value.snippet.startswith('{"_links"')
        assert repr(info.value.event) in str(info.value)

    def test_unknown_event_is_a_generic_event(
        self, registry: FakeRegistry, client: JobsClient
    ) -> None:
        job_id = registry.add_job("build", "success", faults=Faults(unknown_event=True))
        events = list(client.events(type="build", id=job_id))
        unknown = [e for e in events if isinstance(e, UnknownEvent)]
        assert [e.event for e in unknown] == ["progress"]
        assert isinstance(unknown[0].data, str)

    @pytest.mark.parametrize(
        ("fault", "error", "text"),
        [
            (Faults(status=502, html=True), ApiError, "got 502 text/html: <html>"),
            (Faults(status=403), AuthError, "got 403"),
            (Faults(content_type="text/html"), ApiError, "expected 200 text/event-stream"),
        ],
    )
    def test_a_response_that_is_not_a_stream_raises_like_get(
        self,
        registry: FakeRegistry,
        client: JobsClient,
        fault: Faults,
        error: type[Exception],
        text: str,
    ) -> None:
        job_id = registry.add_job("build", "success", faults=fault)
        with pytest.raises(error, match=text):
            client.events(type="build", id=job_id)
        assert client_connections(registry.port) <= 1  # at most an idle pooled connection

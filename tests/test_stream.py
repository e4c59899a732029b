"""Prompt reads (_stream) and EventStream (_events) over a real local HTTP/1.1 server.

Every script pauses on a ``threading.Event`` after the bytes under test, so "the event reached
the client before the server sent anything else" is checked by construction: a reader that
held the event back would block until the idle timeout instead, and fail with IdleTimeout.
Each test runs with urllib3's ``read1``/``shutdown`` and with the route for urllib3 < 2.2/2.3
(forced here by hiding those methods; native in a urllib3 1.26 environment).
"""

from __future__ import annotations

import gc
import json
import signal
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
import urllib3.response

from waylay_jobs import (
    AckEvent,
    CloseEvent,
    EventDecodeError,
    EventStream,
    EventTooLarge,
    IdleTimeout,
    InvalidArgument,
    JobEvent,
    KeepAliveEvent,
    StreamError,
    StreamInterrupted,
)
from waylay_jobs._stream import cancel_response, iter_chunks

from .sse_server import Connection, Run, ScriptedServer, open_fds

EXAMPLES = Path(__file__).parent / "data" / "examples"
HAS_READ1 = hasattr(urllib3.response.HTTPResponse, "read1")
FRAMINGS = ["chunked", "close"]
GZIP_HEADERS = [("Content-Type", "text/event-stream"), ("Content-Encoding", "gzip")]


def _transcript() -> dict[str, str]:
    """Event name -> data line, from the spec's build transcript."""
    blocks = (EXAMPLES / "events_build_transcript.sse").read_bytes().split(b"\r\n\r\n")
    out = {}
    for block in filter(None, blocks):
        name, data = block.decode().split("\r\n")
        out[name.removeprefix("event: ")] = data.removeprefix("data: ")
    return out


DATA = _transcript()
BIG_COMPLETED = json.loads(DATA["completed"])
BIG_COMPLETED["data"]["returnvalue"]["log"] = ["x" * 1000] * 200
DATA["big-completed"] = json.dumps(BIG_COMPLETED, separators=(",", ":"))


def sse(name: str, data: str | None = None, end: str = "\r\n") -> bytes:
    """One event block with the given line end."""
    data = DATA.get(name, name) if data is None else data
    return f"event: {name.replace('big-', '')}{end}data: {data}{end}{end}".encode()


NO_READ1 = pytest.mark.skipif(not HAS_READ1, reason="urllib3 < 2.2 has no read1")


@pytest.fixture(params=[pytest.param("read1", marks=NO_READ1), "fallback"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which read/cancel route: urllib3's read1 and shutdown, or the route for older urllib3."""
    if request.param == "fallback":
        force_fallback(monkeypatch)
    return str(request.param)


def force_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the route for urllib3 < 2.2 by hiding read1 and shutdown for this test."""
    base = getattr(urllib3.response, "BaseHTTPResponse", None)  # urllib3 >= 2
    for cls in (urllib3.response.HTTPResponse, base):
        for name in ("read1", "shutdown"):
            if cls is not None and name in vars(cls):
                monkeypatch.delattr(cls, name)
    assert not hasattr(urllib3.response.HTTPResponse, "read1")
    assert not hasattr(urllib3.response.HTTPResponse, "shutdown")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def fds(server: ScriptedServer, session: requests.Session) -> set[str]:
    """The open file descriptors before the test's request (see ``assert_released``)."""
    gc.collect()  # idle pooled sockets of earlier tests are closed only when collected
    return open_fds()


def get(session: requests.Session, server: ScriptedServer, idle: float = 10.0) -> requests.Response:
    response = session.get(server.url, stream=True, timeout=(5, idle))
    response.raise_for_status()
    return response


def assert_released(
    run: Run, disconnects: list[bool], session: requests.Session, before: set[str]
) -> None:
    """The server saw the client hang up, and no file descriptor opened since is left open."""
    run.join()
    assert disconnects == [True]
    session.close()
    assert open_fds() - before == set()


def wait_until_blocked_in_recv(thread: threading.Thread) -> None:
    """Return once ``thread``'s innermost Python frame is a socket read (``SocketIO.readinto``)."""
    pause = threading.Event()
    for _ in range(10_000):
        frame = sys._current_frames().get(thread.ident or -1)
        code = frame.f_code if frame is not None else None
        if (
            code is not None
            and code.co_name == "readinto"
            and code.co_filename.endswith("socket.py")
        ):
            return
        pause.wait(0.001)
    raise AssertionError("the reader never blocked in a socket read")


# -- iter_chunks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
def test_iter_chunks_yields_what_has_arrived(
    server: ScriptedServer, session: requests.Session, reader: str, framing: str
) -> None:
    go = threading.Event()

    def script(conn: Connection) -> None:
        conn.send_head(framing=framing)
        conn.send(b"data: a\r\r")
        conn.wait(go)
        conn.send(b"data: b\n\n")
        conn.end()

    run = server.serve(script)
    with get(session, server) as response:
        chunks = iter_chunks(response)
        assert next(chunks) == b"data: a\r\r"
        assert not run.done.is_set()
        go.set()
        assert b"".join(chunks) == b"data: b\n\n"
    run.join()


@NO_READ1
@pytest.mark.parametrize("framing", FRAMINGS)
def test_gzip_is_decoded_as_it_arrives_with_read1(
    server: ScriptedServer, session: requests.Session, framing: str
) -> None:
    go = threading.Event()
    gzip = zlib.compressobj(wbits=31)

    def script(conn: Connection) -> None:
        conn.send_head(framing=framing, headers=GZIP_HEADERS)
        conn.send(gzip.compress(sse("ack")) + gzip.flush(zlib.Z_SYNC_FLUSH))
        conn.wait(go)
        conn.send(gzip.compress(sse("close")) + gzip.flush(zlib.Z_SYNC_FLUSH))
        conn.wait_for_disconnect()  # the client hangs up after close

    run = server.serve(script)
    with EventStream(get(session, server)) as stream:
        assert isinstance(next(stream), AckEvent)
        assert not run.done.is_set()
        go.set()
        assert isinstance(next(stream), CloseEvent)
    run.join()


def test_a_compressed_close_delimited_body_is_refused_without_read1(
    server: ScriptedServer, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    force_fallback(monkeypatch)

    def script(conn: Connection) -> None:
        conn.send_head(framing="close", headers=GZIP_HEADERS)
        conn.wait_for_disconnect()

    run = server.serve(script)
    expected = "expected an uncompressed event stream, got Content-Encoding: gzip"
    with pytest.raises(StreamError, match=expected):
        next(EventStream(get(session, server)))
    run.join()


# -- EventStream: promptness and the end ---------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("end", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
@pytest.mark.parametrize("size", ["small", "big"])
def test_each_event_arrives_before_the_server_sends_anything_else(
    server: ScriptedServer,
    session: requests.Session,
    fds: set[str],
    reader: str,
    framing: str,
    end: str,
    size: str,
) -> None:
    gates = [threading.Event() for _ in range(3)]
    disconnects: list[bool] = []
    completed = sse("big-completed" if size == "big" else "completed", end=end)

    def script(conn: Connection) -> None:
        conn.send_head(framing=framing)
        conn.send(sse("ack", end=end))
        conn.wait(gates[0])
        # A big event goes out in several writes (HTTP chunks when chunked).
        for start in range(0, len(completed), 70_000):
            conn.send(completed[start : start + 70_000])
        conn.wait(gates[1])
        conn.send(sse("close", end=end))
        conn.wait(gates[2])
        disconnects.append(conn.wait_for_disconnect())

    run = server.serve(script)
    stream = EventStream(get(session, server))
    assert isinstance(next(stream), AckEvent)
    gates[0].set()
    event = next(stream)
    assert isinstance(event, JobEvent)
    assert event.event == "completed"
    assert len(event.data.data.returnvalue.log) == (200 if size == "big" else 3)
    gates[1].set()
    assert isinstance(next(stream), CloseEvent)
    assert not run.done.is_set()  # the server is still holding the connection open
    # The stream ends right after close, and hangs up without waiting for the server.
    with pytest.raises(StopIteration):
        next(stream)
    assert stream.closed
    gates[2].set()
    assert_released(run, disconnects, session, fds)


def test_id_and_retry_from_the_server(
    server: ScriptedServer, session: requests.Session, reader: str
) -> None:
    def script(conn: Connection) -> None:
        conn.send_head()
        conn.send(b"retry: 1500\r\nid: 7\r\n" + sse("ack") + b"id: 8\r\n\r\n" + sse("close"))
        conn.wait_for_disconnect()

    run = server.serve(script)
    response = get(session, server)
    with EventStream(response) as stream:
        assert stream.response is response
        assert (stream.last_event_id, stream.retry) == (None, None)
        ack = next(stream)
        assert (ack.id, stream.last_event_id, stream.retry) == ("7", "7", 1500)
        close = next(stream)
        assert (close.id, stream.last_event_id) == ("8", "8")
    run.join()


# -- EventStream: faults ------------------------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_silent_server_gives_idle_timeout(
    server: ScriptedServer, session: requests.Session, fds: set[str], reader: str, framing: str
) -> None:
    disconnects: list[bool] = []

    def script(conn: Connection) -> None:
        conn.send_head(framing=framing)
        conn.send(sse("ack"))
        disconnects.append(conn.wait_for_disconnect())  # silent until the client hangs up

    run = server.serve(script)
    stream = EventStream(get(session, server, idle=0.2))
    assert isinstance(next(stream), AckEvent)
    with pytest.raises(IdleTimeout, match="got nothing within the idle timeout") as info:
        next(stream)
    cause = info.value.__cause__
    assert isinstance(cause, (urllib3.exceptions.ReadTimeoutError, TimeoutError, OSError))
    assert stream.closed
    assert_released(run, disconnects, session, fds)


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_reset_mid_stream_is_an_interruption(
    server: ScriptedServer, session: requests.Session, fds: set[str], reader: str, framing: str
) -> None:
    go = threading.Event()

    def script(conn: Connection) -> None:
        conn.send_head(framing=framing)
        conn.send(sse("ack") + b"event: active\r\ndata: {")
        conn.wait(go)
        conn.reset()

    run = server.serve(script)
    stream = EventStream(get(session, server))
    assert isinstance(next(stream), AckEvent)
    go.set()
    with pytest.raises(StreamInterrupted, match="got a broken connection") as info:
        next(stream)
    assert info.value.__cause__ is not None
    assert stream.closed
    run.join()
    session.close()
    assert open_fds() - fds == set()


def test_an_incomplete_chunked_body_is_an_interruption(
    server: ScriptedServer, session: requests.Session, reader: str
) -> None:
    def script(conn: Connection) -> None:
        conn.send_head(framing="chunked")
        conn.send(sse("ack"))
        conn.send_raw(b"100\r\nevent: active\r\n")  # a chunk of 256 bytes that never completes
        conn.end()

    run = server.serve(script)
    stream = EventStream(get(session, server))
    assert isinstance(next(stream), AckEvent)
    with pytest.raises(StreamInterrupted, match="got a broken connection"):
        next(stream)
    run.join()


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize(
    ("tail", "dropped"),
    [
        pytest.param(b"", "", id="between-events"),
        pytest.param(
            b"event: close\r\ndata: Job done",
            f"; {len('event: close|data: Job done')} bytes of an unterminated event were dropped",
            id="truncated-close",
        ),
    ],
)
def test_the_end_before_close_is_an_interruption(
    server: ScriptedServer,
    session: requests.Session,
    reader: str,
    framing: str,
    tail: bytes,
    dropped: str,
) -> None:
    def script(conn: Connection) -> None:
        conn.send_head(framing=framing)
        conn.send(sse("ack") + tail)
        conn.end()

    run = server.serve(script)
    seen = []
    with pytest.raises(StreamInterrupted) as info:  # noqa: PT012 - the loop is what is tested
        for event in EventStream(get(session, server)):
            seen.append(event)
    assert str(info.value) == (
        "expected the event stream to go on until its close event, "
        "got the end of the stream first" + dropped
    )
    assert [e.event for e in seen] == ["ack"]
    run.join()


def test_a_malformed_job_event_raises_and_closes_the_stream(
    server: ScriptedServer, session: requests.Session, fds: set[str], reader: str
) -> None:
    disconnects: list[bool] = []

    def script(conn: Connection) -> None:
        conn.send_head()
        conn.send(sse("ack") + sse("active", '{"job": '))
        disconnects.append(conn.wait_for_disconnect())

    run = server.serve(script)
    stream = EventStream(get(session, server))
    assert isinstance(next(stream), AckEvent)
    with pytest.raises(EventDecodeError) as info:
        next(stream)
    assert info.value.event == "active"
    assert stream.closed
    assert_released(run, disconnects, session, fds)


def test_an_oversized_event_is_refused_before_it_ends(
    server: ScriptedServer, session: requests.Session, fds: set[str], reader: str
) -> None:
    disconnects: list[bool] = []

    def script(conn: Connection) -> None:
        conn.send_head()
        conn.send(sse("ack") + b"event: completed\r\ndata: {")
        # The event never ends: the client has to give up on its own.
        try:
            for _ in range(100):
                conn.send(b"x" * 10_000)
        except OSError:  # reset or broken pipe: it hung up while the event was still coming
            disconnects.append(True)
            return
        disconnects.append(conn.wait_for_disconnect())

    run = server.serve(script)
    stream = EventStream(get(session, server), max_event_size=100_000)
    assert isinstance(next(stream), AckEvent)
    with pytest.raises(EventTooLarge, match="expected events of at most 100000 bytes"):
        next(stream)
    assert stream.closed
    assert_released(run, disconnects, session, fds)


# -- EventStream: cancel, close, signals, release -----------------------------------------------


def _silent_after_ack(framing: str, disconnects: list[bool]) -> Callable[[Connection], None]:
    def script(conn: Connection) -> None:
        conn.send_head(framing=framing)
        conn.send(sse("ack"))
        disconnects.append(conn.wait_for_disconnect())

    return script


def _read_in_thread(stream: EventStream) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def read() -> None:
        try:
            outcome.append(list(stream))
        except Exception as exc:  # noqa: BLE001 - the test asserts on it
            outcome.append(exc)

    thread = threading.Thread(target=read, name="sse-reader")
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("how", ["cancel", "close"])
def test_cancel_from_another_thread_unblocks_a_blocked_read(
    server: ScriptedServer,
    session: requests.Session,
    fds: set[str],
    reader: str,
    framing: str,
    how: str,
) -> None:
    disconnects: list[bool] = []
    run = server.serve(_silent_after_ack(framing, disconnects))
    stream = EventStream(get(session, server, idle=30))
    assert isinstance(next(stream), AckEvent)
    thread, outcome = _read_in_thread(stream)
    wait_until_blocked_in_recv(thread)
    getattr(stream, how)()  # close() from another thread acts as cancel()
    thread.join(10)
    assert not thread.is_alive()
    assert outcome == [[]]  # iteration ended quietly
    assert stream.closed
    assert_released(run, disconnects, session, fds)


def test_cancel_is_idempotent_and_safe_from_many_threads(
    server: ScriptedServer, session: requests.Session, fds: set[str], reader: str
) -> None:
    disconnects: list[bool] = []
    run = server.serve(_silent_after_ack("chunked", disconnects))
    stream = EventStream(get(session, server, idle=30))
    assert isinstance(next(stream), AckEvent)
    thread, outcome = _read_in_thread(stream)
    wait_until_blocked_in_recv(thread)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def cancel() -> None:
        barrier.wait()
        try:
            stream.cancel()
            stream.cancel()
        except Exception as exc:  # noqa: BLE001 - the test asserts there is none
            errors.append(exc)

    cancellers = [threading.Thread(target=cancel) for _ in range(8)]
    for t in cancellers:
        t.start()
    for t in [*cancellers, thread]:
        t.join(10)
    assert errors == []
    assert outcome == [[]]
    stream.cancel()  # after the end: still harmless
    stream.close()
    cancel_response(stream.response)
    assert_released(run, disconnects, session, fds)


def test_cancel_before_reading_ends_the_stream_quietly(
    server: ScriptedServer, session: requests.Session, fds: set[str], reader: str
) -> None:
    disconnects: list[bool] = []
    run = server.serve(_silent_after_ack("chunked", disconnects))
    stream = EventStream(get(session, server, idle=30))
    run.connected.wait(5)
    stream.cancel()
    assert list(stream) == []  # not even the ack the server had sent
    assert stream.closed
    assert_released(run, disconnects, session, fds)


def test_a_signal_handler_that_raises_interrupts_a_blocked_read(
    server: ScriptedServer, session: requests.Session, fds: set[str], reader: str
) -> None:
    class Alarm(Exception):
        pass

    def on_alarm(signum: int, frame: Any) -> None:
        raise Alarm

    disconnects: list[bool] = []
    run = server.serve(_silent_after_ack("chunked", disconnects))
    stream = EventStream(get(session, server, idle=30))
    assert isinstance(next(stream), AckEvent)
    # pytest-timeout may be using SIGALRM too: put its handler and timer back afterwards.
    previous = signal.signal(signal.SIGALRM, on_alarm)
    timer = signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        with pytest.raises(Alarm):
            next(stream)  # the server says nothing more
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if timer[0]:
            signal.setitimer(signal.ITIMER_REAL, *timer)
    assert stream.closed
    assert_released(run, disconnects, session, fds)


def test_leaving_a_with_block_early_releases_the_connection(
    server: ScriptedServer, session: requests.Session, fds: set[str], reader: str
) -> None:
    disconnects: list[bool] = []

    def script(conn: Connection) -> None:
        conn.send_head()
        conn.send(sse("ack") + sse("waiting"))
        disconnects.append(conn.wait_for_disconnect())

    run = server.serve(script)
    with EventStream(get(session, server)) as stream:
        assert isinstance(next(stream), AckEvent)
    assert stream.closed
    stream.close()  # idempotent
    assert_released(run, disconnects, session, fds)


def test_an_exception_in_the_callers_loop_releases_the_connection(
    server: ScriptedServer, session: requests.Session, fds: set[str], reader: str
) -> None:
    disconnects: list[bool] = []
    run = server.serve(_silent_after_ack("close", disconnects))

    def consume() -> None:
        for _event in EventStream(get(session, server)):
            raise ValueError("a bug in the caller's loop")

    with pytest.raises(ValueError, match="caller's loop"):
        consume()
    assert_released(run, disconnects, session, fds)


def test_dropping_an_unread_stream_releases_the_connection(
    server: ScriptedServer, session: requests.Session, fds: set[str], reader: str
) -> None:
    disconnects: list[bool] = []
    run = server.serve(_silent_after_ack("chunked", disconnects))
    stream: EventStream | None = EventStream(get(session, server))
    run.connected.wait(5)
    stream = None  # noqa: F841 - dropping the last reference is the point
    assert_released(run, disconnects, session, fds)


def test_reading_after_close_is_a_caller_error(
    server: ScriptedServer, session: requests.Session, reader: str
) -> None:
    disconnects: list[bool] = []
    run = server.serve(_silent_after_ack("chunked", disconnects))
    stream = EventStream(get(session, server))
    assert isinstance(next(stream), AckEvent)
    stream.close()
    # Ending quietly would look like the end of the job's events.
    with pytest.raises(InvalidArgument, match="expected an open event stream"):
        next(stream)
    run.join()
    assert disconnects == [True]


def test_keep_alives_and_unknown_events_pass_through(
    server: ScriptedServer, session: requests.Session, reader: str
) -> None:
    def script(conn: Connection) -> None:
        conn.send_head()
        conn.send(sse("ack") + sse("keep-alive") + sse("progress", "42%") + sse("close"))
        conn.wait_for_disconnect()

    run = server.serve(script)
    events = list(EventStream(get(session, server)))
    names = [type(e).__name__ for e in events]
    assert names == ["AckEvent", "KeepAliveEvent", "UnknownEvent", "CloseEvent"]
    assert isinstance(events[1], KeepAliveEvent)
    run.join()

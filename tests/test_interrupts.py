"""A signal handler that raises (Ctrl-C, Airflow's execution_timeout) in the middle of a
plain GET, waiting for the head or for the body: the socket is closed at once, not left to the
garbage collector (urllib3 closes it; these tests keep it that way)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from waylay_jobs import JobsClient

from .sse_server import Connection, ScriptedServer

JSON = [("Content-Type", "application/json")]


class Alarm(Exception):
    pass


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.mark.parametrize("phase", ["head", "chunked-body", "close-delimited-body"])
def test_a_signal_mid_get_closes_the_connection(server: ScriptedServer, phase: str) -> None:
    disconnects: list[bool] = []

    def script(conn: Connection) -> None:
        if phase != "head":
            conn.send_head(framing=phase.split("-")[0], headers=JSON)
            conn.send(b'{"job": {"type": "build", "state": "act')  # and then nothing more
        disconnects.append(conn.wait_for_disconnect())

    def on_alarm(signum: int, frame: Any) -> None:
        raise Alarm

    run = server.serve(script)
    client = JobsClient(f"http://127.0.0.1:{server.port}", timeout=(5, 30), retries=0)
    # pytest-timeout may be using SIGALRM too: put its handler and timer back afterwards.
    previous = signal.signal(signal.SIGALRM, on_alarm)
    timer = signal.setitimer(signal.ITIMER_REAL, 0.1)
    try:
        with pytest.raises(Alarm):
            client.get("build", "job-1")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if timer[0]:
            signal.setitimer(signal.ITIMER_REAL, *timer)
    # The client is still open and the traceback still refers to the response: only an
    # explicit close can have hung up by now.
    run.join()
    assert disconnects == [True]
    client.close()

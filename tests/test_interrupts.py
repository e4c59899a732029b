"""A signal handler that raises (Ctrl-C, Airflow's execution_timeout) in the middle of a
plain GET, waiting for the head or for the body: the socket is closed at once, not left to the
garbage collector (urllib3 closes it; these tests keep it that way)."""

from __future__ import annotations

import dis
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any, Callable

import pytest

from waylay_jobs import JobsClient
from waylay_jobs._http.blocking import _new_session

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


def _interrupt_at(step: int, action: Callable[[], object]) -> bool:
    """Run ``action`` with a KeyboardInterrupt raised at its ``step``-th point where CPython
    may run a signal handler (the entry of a Python function, right after a call returns, a
    jump back), counted in every Python frame; whether it was raised."""
    count = 0
    last: dict[int, str] = {}
    previous = sys.gettrace()  # coverage's tracer, when it runs: put back afterwards

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        if event == "opcode":
            op = dis.opname[frame.f_code.co_code[frame.f_lasti]]
            after_call = last.get(id(frame), "").startswith("CALL")
            last[id(frame)] = op
            if not (after_call or "BACKWARD" in op or op == "JUMP_ABSOLUTE"):
                return trace
        elif event != "call":
            return trace
        count += 1
        if count == step:
            sys.settrace(previous)
            raise KeyboardInterrupt
        return trace

    sys.settrace(trace)
    try:
        action()
    except KeyboardInterrupt:
        return True
    finally:
        sys.settrace(previous)
    return False


def test_an_interrupt_anywhere_in_taking_a_pooled_connection_leaves_the_pool_usable() -> None:
    # queue.Queue takes its lock in threading.Condition.__enter__, a Python method: a Ctrl-C
    # landing after the acquire and before that method returned left the lock held, and the
    # next get or put (urllib3's clean-up of the interrupted request, or the thread reading an
    # event stream handing its connection back while the wait joins it) waited for ever.
    session = _new_session()
    try:
        pool = session.get_adapter("http://127.0.0.1:9/").poolmanager.connection_from_url(
            "http://127.0.0.1:9/"
        )
        step = 0
        while True:
            step += 1
            interrupted = _interrupt_at(step, lambda: pool._put_conn(pool._get_conn()))
            assert not pool.pool.mutex.locked(), f"the pool's lock was left held at step {step}"
            if not interrupted:
                break
        assert step > 10  # the action ran to its end at last, after being cut at every step
    finally:
        session.close()

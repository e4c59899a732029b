"""Shared helpers of the benchmark scripts: the bench server process, statistics, consumers.

The consumers all do the same user-level work per event (take the job id out of a job
event) so that only the way the stream is read and decoded differs.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ACCEPT = {"Accept": "text/event-stream"}


@contextlib.contextmanager
def bench_server() -> Iterator[str]:
    """Start ``server.py`` in its own process; yield its base URL; stop it on exit."""
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "server.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=BENCH,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"expected 'PORT <n>' from the bench server, got {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated runs."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1), nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def events_url(base: str, jid: str) -> str:
    """The events URL of a bench-server job id."""
    return f"{base}/registry/v2/jobs/events?type=build&id={jid}"


def emit(result: Any) -> None:
    """Print a script's result as JSON on stdout (the orchestrator reads it)."""
    print(json.dumps(result), flush=True)


# -- consumers: each returns (job events seen, monotonic ns when it saw ``close``) ---------------


def consume_raw(session: Any, url: str) -> tuple[int, int]:
    """The lower bound: ``resp.raw.read1``, a minimal CRLF line split, json.loads per data line."""
    count = 0
    with session.get(url, stream=True, headers=ACCEPT) as response:
        raw = response.raw
        buffer = b""
        name = b""
        while True:
            chunk = raw.read1(65536)
            if not chunk:
                break
            lines = (buffer + chunk).split(b"\r\n")
            buffer = lines.pop()
            for line in lines:
                if line.startswith(b"event: "):
                    name = line[7:]
                elif line.startswith(b"data: "):
                    if name == b"close":
                        return count, time.monotonic_ns()
                    if line.startswith(b"data: {"):
                        count += bool(json.loads(line[6:])["job"]["id"])  # the user's work
    return count, 0


def consume_sseclient(session: Any, url: str) -> tuple[int, int]:
    """sseclient-py as its README shows it: ``SSEClient(response)`` over ``iter(response)``."""
    import sseclient

    count = 0
    with session.get(url, stream=True, headers=ACCEPT) as response:
        client = sseclient.SSEClient(response)
        for event in client.events():
            if event.event == "close":
                return count, time.monotonic_ns()
            if event.data.startswith("{"):
                count += bool(json.loads(event.data)["job"]["id"])  # the user's work
    return count, 0


def consume_waylay(client: Any, jid: str) -> tuple[int, int]:
    """``client.events(...)`` with typed events, until it ends after ``close``."""
    from waylay_jobs._models import CloseEvent, JobEvent

    count = 0
    closed = 0
    with client.events(type="build", id=jid) as stream:
        for event in stream:
            if isinstance(event, JobEvent):
                count += bool(event.data.job.id)  # the user's work
            elif isinstance(event, CloseEvent):
                closed = time.monotonic_ns()
    return count, closed

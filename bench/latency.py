"""Close latency: from the server's write of a small ``close`` event to the consumer having it.

Usage: ``python bench/latency.py BASE_URL SAMPLES RUNS`` (prints JSON).

The bench server records ``time.monotonic_ns()`` just before it writes ``close`` (one write,
TCP_NODELAY) and keeps the response open afterwards (at most ``server.HOLD`` s, until the
client hangs up); the consumer takes ``time.monotonic_ns()`` when it has the event; both are
CLOCK_MONOTONIC, one clock for both processes. For ``wait_for`` the end is its return: it
must also confirm the final state with the get it sends after ``close`` (the server answers
``completed`` from the moment ``close`` is written), so its figure includes that round trip.
Before ``close``, the server waits for the get ``wait_for`` sends after ``ack`` and 10 ms
more, so every consumer is parked in a read when ``close`` is written.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

import requests
from common import consume_raw, consume_sseclient, consume_waylay, emit, events_url
from server import HOLD

from waylay_jobs import JobsClient

CONSUMERS = ("raw", "sseclient", "events", "wait_for")
FRAMINGS = ("chunked", "close")
HELD_SAMPLES = 2  # sseclient-py on a close-delimited body: each sample takes HOLD seconds


def main() -> None:
    """Print ``{framing: {consumer: [[latency seconds of each sample] per run]}}``."""
    base, samples, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    results: dict[str, dict[str, list[list[float]]]] = {
        framing: {name: [] for name in CONSUMERS} for framing in FRAMINGS
    }
    serial = 0
    with requests.Session() as session, requests.Session() as stamps:
        for _run in range(runs):
            with JobsClient(base) as client:

                def wait(jid: str, client: JobsClient = client) -> int:
                    client.wait_for(("build", jid), timeout=10)
                    return time.monotonic_ns()

                readers: dict[str, Callable[[str], int]] = {
                    "raw": lambda jid: consume_raw(session, events_url(base, jid))[1],
                    "sseclient": lambda jid: consume_sseclient(session, events_url(base, jid))[1],
                    "events": lambda jid, client=client: consume_waylay(client, jid)[1],
                    "wait_for": wait,
                }
                for framing in FRAMINGS:
                    for name in CONSUMERS:
                        count = samples
                        if name == "sseclient" and framing == "close":
                            count = HELD_SAMPLES
                        values = []
                        for _ in range(count):
                            serial += 1
                            jid = f"lat-{framing}-{serial}" + ("-w" if name == "wait_for" else "")
                            seen = readers[name](jid)
                            written = stamps.get(f"{base}/bench/stamp/{jid}").json()
                            if not seen or written is None:
                                raise RuntimeError(f"{name} on {framing}: close not seen")
                            values.append((seen - written) / 1e9)
                        results[framing][name].append(values)
    emit({"hold": HOLD, "results": results})


if __name__ == "__main__":
    main()

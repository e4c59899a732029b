"""Event throughput: ``client.events(...)`` against the raw lower bound and sseclient-py.

Usage: ``python bench/throughput.py BASE_URL EVENTS RUNS`` (prints JSON). In every run each
consumer reads the same ``EVENTS`` realistic job events from the bench server, on both
framings, in an order that rotates between runs; a figure is events/s over the whole read
(request to end of stream).
"""

from __future__ import annotations

import sys
import time

import requests
from common import consume_raw, consume_sseclient, consume_waylay, emit, events_url

from waylay_jobs import JobsClient

CONSUMERS = ("raw", "sseclient", "waylay_jobs")
FRAMINGS = ("chunked", "close")


def main() -> None:
    """Measure and print ``{framing: {consumer: [events/s per run]}}``."""
    base, count, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    results: dict[str, dict[str, list[float]]] = {
        framing: {name: [] for name in CONSUMERS} for framing in FRAMINGS
    }
    with requests.Session() as session, JobsClient(base) as client:
        readers = {
            "raw": lambda url, jid: consume_raw(session, url),
            "sseclient": lambda url, jid: consume_sseclient(session, url),
            "waylay_jobs": lambda url, jid: consume_waylay(client, jid),
        }
        # Warm-up, not counted: the server renders and caches the bodies, and each consumer
        # loads what it loads on first use (waylay_jobs: its models and decoders, about 50 ms,
        # reported on their own in the import table).
        for framing in FRAMINGS:
            jid = f"tp-{framing}-{count}"
            for name in CONSUMERS:
                readers[name](events_url(base, jid), jid)
        for run in range(runs):
            for framing in FRAMINGS:
                jid = f"tp-{framing}-{count}"
                url = events_url(base, jid)
                order = CONSUMERS[run % 3 :] + CONSUMERS[: run % 3]
                for name in order:
                    start = time.perf_counter()
                    seen, _ = readers[name](url, jid)
                    elapsed = time.perf_counter() - start
                    if seen != count:
                        raise RuntimeError(f"{name} saw {seen} job events, expected {count}")
                    results[framing][name].append(count / elapsed)
    emit(results)


if __name__ == "__main__":
    main()

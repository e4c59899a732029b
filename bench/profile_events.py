"""Where the time of ``client.events()`` goes, per event, stage by stage (no network).

Usage: ``.venv/bin/python bench/profile_events.py`` (from the repository root, with the
repository on ``PYTHONPATH`` or installed). The 20 000 bench events are cut into 64 KiB reads
and pushed through each stage on its own; best of 7, microseconds per event. Compare with the
raw lower bound's own work (split + ``json.loads``) to see what the typed path adds.
"""

from __future__ import annotations

import json
import time
from typing import Callable

import corpus

from waylay_jobs._models import JobEvent, JobEventData, parse_event
from waylay_jobs._sse import ServerSentEvent, SSEDecoder

COUNT = 20_000


def best(run: Callable[[], object], repeat: int = 7) -> float:
    """Microseconds per event, best of ``repeat``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) / COUNT * 1e6


def main() -> None:
    """Print the per-stage table."""
    body = corpus.ACK + b"".join(corpus.job_events(COUNT)) + corpus.CLOSE
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    events = list(SSEDecoder().iter_events(iter(chunks)))
    documents = [(e.event, json.loads(e.data)) for e in events if e.data.startswith("{")]

    def raw_bound() -> None:
        buffer = b""
        for chunk in chunks:
            lines = (buffer + chunk).split(b"\r\n")
            buffer = lines.pop()
            for line in lines:
                if line.startswith(b"data: {"):
                    json.loads(line[6:])

    def sse() -> None:
        for _ in SSEDecoder().iter_events(iter(chunks)):
            pass

    def sse_raw() -> None:
        for _ in SSEDecoder().iter_raw(iter(chunks)):
            pass

    def parse() -> None:
        for e in events:
            parse_event(e.event, e.data, e.id)

    def loads() -> None:
        for e in events:
            if e.data.startswith("{"):
                json.loads(e.data)

    def from_wire() -> None:
        for name, document in documents:
            JobEventData.from_wire(document, event=name)

    def typed_path() -> None:
        decoder = SSEDecoder()
        for name, data in decoder.iter_raw(iter(chunks)):  # what EventStream does
            parse_event(name, data, decoder.last_event_id)

    rows = [
        ("raw lower bound: split + json.loads (its whole work)", best(raw_bound)),
        (
            "_sse.SSEDecoder.iter_events (normaliser, fast path, sseclient-py)",
            best(sse),
        ),
        (
            "  of which ServerSentEvent(...) (frozen dataclass init)",
            best(lambda: [ServerSentEvent("a", "b", None, None) for _ in range(COUNT)]),
        ),
        ("_sse.SSEDecoder.iter_raw (the same, name and data only: EventStream's)", best(sse_raw)),
        ("_models.parse_event (json.loads + from_wire + JobEvent)", best(parse)),
        ("  of which json.loads", best(loads)),
        (
            "  of which JobEventData.from_wire (links, function, payload left for first access)",
            best(from_wire),
        ),
        (
            "  of which JobEvent(...) (frozen dataclass init)",
            best(lambda: [JobEvent("active", None, None) for _ in range(COUNT)]),
        ),  # type: ignore[arg-type]
        ("typed path: SSEDecoder.iter_raw + parse_event", best(typed_path)),
    ]
    print("| stage | µs per event |\n|---|---|")
    for label, value in rows:
        print(f"| {label} | {value:.2f} |")


if __name__ == "__main__":
    main()

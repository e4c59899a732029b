"""Peak RSS growth while streaming, in a fresh process per measurement.

Usage: ``python bench/memory.py BASE_URL CONSUMER FRAMING EVENTS`` with CONSUMER ``raw`` or
``waylay_jobs`` (prints JSON). The resident set (``VmRSS``) is read after the imports and the
client set-up, before the request, and its peak (``VmHWM``, the ``ru_maxrss`` figure) after
the stream ended: the difference is how far memory rose above its level before streaming.

``python bench/memory.py BASE_URL big FRAMING SIZE``: one ``SIZE``-byte event through
``client.events(...)`` with the default ``max_event_size``; it must raise ``EventTooLarge``,
and the peak growth must stay near the limit, not near ``SIZE``.
"""

from __future__ import annotations

import resource
import sys

import corpus
import requests
from common import consume_raw, consume_waylay, emit, events_url

import waylay_jobs
from waylay_jobs import JobsClient


def _status_kb(field: str) -> int:
    """A ``/proc/self/status`` figure in KiB (Linux); ``ru_maxrss`` elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass  # not Linux: the peak so far is the only figure there is
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _load_on_demand_parts() -> None:
    """Load what the first events load (the modules imported on first use, the decoders of the
    event models), so that the growth measured is that of streaming, not of importing."""
    import waylay_jobs._events  # noqa: F401 - loaded for its import cost
    from waylay_jobs._models import parse_event
    from waylay_jobs._sse import SSEDecoder

    for sse in SSEDecoder().iter_events([corpus.ACK, *corpus.job_events(50), corpus.CLOSE]):
        event = parse_event(sse.event, sse.data, sse.id)
        getattr(event.data, "links", None)  # decoded on first access
        getattr(event.data, "function", None)


def main() -> None:
    """Measure one consumer and print the result."""
    base, consumer, framing, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    result: dict[str, object] = {"consumer": consumer, "framing": framing}
    with requests.Session() as session, JobsClient(base) as client:
        _load_on_demand_parts()
        before = _status_kb("VmRSS")  # now: an earlier, higher peak cannot hide growth
        if consumer == "raw":
            seen, _ = consume_raw(session, events_url(base, f"tp-{framing}-{size}"))
        elif consumer == "waylay_jobs":
            seen, _ = consume_waylay(client, f"tp-{framing}-{size}")
        else:
            from waylay_jobs._sse import DEFAULT_MAX_EVENT_SIZE

            result["limit"] = DEFAULT_MAX_EVENT_SIZE
            seen = 0
            try:
                consume_waylay(client, f"big-{framing}-{size}")
            except waylay_jobs.EventTooLarge as exc:
                result["raised"] = type(exc).__name__
                result["message"] = str(exc)[:200]
            else:
                result["raised"] = None
        after = _status_kb("VmHWM")  # the peak so far
    if consumer in ("raw", "waylay_jobs") and seen != size:
        raise RuntimeError(f"{consumer} saw {seen} job events, expected {size}")
    result.update(seen=seen, before_mb=before / 1024, growth_mb=(after - before) / 1024)
    emit(result)


if __name__ == "__main__":
    main()

"""Cold start: a fresh process until the first decoded job (and then the first job event).

Usage: ``python bench/coldstart.py plain|ours BASE_URL`` (prints JSON: seconds since the
interpreter started running this file, at each milestone). Run it in a fresh interpreter
each time; ``run.py`` alternates the two and repeats them.

* ``plain``, the baseline: ``import requests, json``, a ``Session``, ``GET`` of a job
  document and ``json.loads`` of it ("job"); then a streaming ``GET`` of the events,
  ``read1`` until the first job event's data line, ``json.loads`` of it ("event").
* ``ours``: ``import waylay_jobs``, ``JobsClient(url)``, ``client.get(...)`` (a decoded
  ``JobResponse``: "job"); then ``client.events(...)`` until the first ``JobEvent``
  ("event").

Both do the same HTTP against the bench server, so the difference is what waylay_jobs adds:
its imports, its client and its decoding, paid once per process (a CLI run, an Airflow task).
"""

from __future__ import annotations

import time

START = time.perf_counter()

import sys  # noqa: E402

JOB = "coldstart-1"
EVENTS = "/registry/v2/jobs/events?type=build&id=tp-chunked-1"


def plain(base: str) -> dict[str, float]:
    """The baseline with requests and json only."""
    import json

    import requests

    with requests.Session() as session:
        document = json.loads(session.get(f"{base}/registry/v2/jobs/build/{JOB}").content)
        assert document["job"]["type"] == "build"
        job = time.perf_counter() - START
        with session.get(base + EVENTS, stream=True) as response:
            buffer = b""
            while b"\ndata: {" not in buffer:
                chunk = response.raw.read1(65536)
                if not chunk:
                    raise RuntimeError("the stream ended before a job event")
                buffer += chunk
            line = buffer.split(b"\ndata: {", 1)[1].split(b"\r\n", 1)[0]
            assert json.loads(b"{" + line)["job"]["id"]
        event = time.perf_counter() - START
    return {"job": job, "event": event}


def ours(base: str) -> dict[str, float]:
    """The same with waylay_jobs: typed job, typed event."""
    import waylay_jobs

    with waylay_jobs.JobsClient(base) as client:
        document = client.get("build", JOB)
        assert document.job.type == "build"
        job = time.perf_counter() - START
        with client.events(type="build", id="tp-chunked-1") as stream:
            for item in stream:
                if isinstance(item, waylay_jobs.JobEvent):
                    assert item.data.job.id
                    break
        event = time.perf_counter() - START
    return {"job": job, "event": event}


def main() -> None:
    """Print the milestones of one cold start as JSON."""
    mode, base = sys.argv[1], sys.argv[2]
    result = plain(base) if mode == "plain" else ours(base)
    import json

    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

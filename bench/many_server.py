"""The many-jobs bench's server side: a FakeRegistry and its driver thread, in their own process.

Usage: ``python bench/many_server.py JOBS SPREAD SEED SUBSCRIBERS``. Protocol on stdin/stdout,
one JSON document per line:

1. prints ``{"url": ..., "jobs": [[type, id, expected_state], ...]}`` (manual jobs of five
   types, about 1 in 5 to fail);
2. on the line ``go``: waits until ``SUBSCRIBERS`` streams got their ``ack`` (1 for
   ``wait_all``, one per job for the threads), then moves each job to its expected state at a
   random moment within ``SPREAD`` seconds, recording ``time.monotonic_ns()`` just before each
   ``transition()``; prints ``{"ended": {id: ns}}`` when all are done;
3. on the line ``stats``: prints the requests the registry received since ``go``, by kind,
   and its errors;
4. stops the registry when stdin closes.
"""

from __future__ import annotations

import json
import random
import sys
import time

from waylay_jobs.testing import FakeRegistry

TYPES = ("build", "deploy", "verify", "undeploy", "scale")


def main() -> None:
    """Serve one run over stdin/stdout."""
    count, spread, seed, subscribers = (
        int(sys.argv[1]),
        float(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    rng = random.Random(seed)
    with FakeRegistry(keepalive_interval=15.0) as reg:
        jobs = []
        for index in range(count):
            job_type = TYPES[index % len(TYPES)]
            state = "failed" if rng.random() < 0.2 else "completed"
            jobs.append([job_type, reg.add_job(job_type, "manual"), state])
        print(json.dumps({"url": reg.url, "jobs": jobs}), flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        before = len(reg.requests)  # the client's warm-up request is not the wait's
        reg.wait_for_subscribers(subscribers, timeout=120)
        plan = sorted((rng.uniform(0.05, spread), job) for job in jobs)
        ended: dict[str, int] = {}
        start = time.monotonic()
        for at, (job_type, job_id, state) in plan:
            delay = start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the schedule of the job ends, not a synchronisation
            ended[job_id] = time.monotonic_ns()
            if state == "failed":
                reg.transition(job_type, job_id, "failed", failed_reason="bench: on purpose")
            else:
                reg.transition(job_type, job_id, "completed")
        print(json.dumps({"ended": ended}), flush=True)
        if sys.stdin.readline().strip() == "stats":
            kinds = {"events": 0, "list": 0, "get": 0}
            for request in reg.requests[before:]:
                if request.path.endswith("/jobs/events"):
                    kinds["events"] += 1
                elif request.path.endswith("/jobs/"):
                    kinds["list"] += 1
                else:
                    kinds["get"] += 1
            print(json.dumps({"requests": kinds, "server_errors": len(reg.errors)}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()

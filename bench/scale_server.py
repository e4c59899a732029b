"""The scale test's server side: a FakeRegistry and its driver thread, in their own process.

Usage: ``python bench/scale_server.py WAITERS SPREAD SEED [settled|ready]``. Protocol on
stdin/stdout, one JSON document per line:

1. prints ``{"url": ..., "jobs": [[type, id, expected_state], ...]}`` (manual jobs);
2. on the line ``go``: waits until every job has a subscribed stream (with ``settled``: and
   until the server got two requests per job, the subscription and the first check, so that
   the ends are measured in the steady state, not behind the start-up; with ``ready``: not at
   all, the client says ``go`` once its waits are settled, as many waits over one stream
   are), then a driver thread
   moves each job to its expected state (``completed``, or ``failed`` for about 1 in 4) at a
   random moment within ``SPREAD`` seconds, recording ``time.monotonic_ns()`` just before each
   ``transition()``; prints ``{"ended": {id: ns}, "server_errors": n, "requests": n,
   "streams": n}`` (requests and event-stream requests served in all) when all are done;
3. stops the registry when stdin closes.

Running the registry in its own process keeps its 200 stream threads off the client's GIL,
as a real server would be.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from typing import Any

from waylay_jobs.testing import FakeRegistry

TYPES = ("build", "deploy", "verify", "undeploy", "scale")


def drive(
    reg: FakeRegistry, jobs: list[list[str]], spread: float, rng: random.Random
) -> dict[str, int]:
    """Transition every job at its random moment; return when each one ended."""
    plan = sorted((rng.uniform(0.05, spread), job) for job in jobs)
    ended: dict[str, int] = {}
    start = time.monotonic()
    for at, (job_type, jid, state) in plan:
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ended[jid] = time.monotonic_ns()
        if state == "failed":
            reg.transition(job_type, jid, "failed", failed_reason="bench: failed on purpose")
        else:
            reg.transition(job_type, jid, "completed")
    return ended


def main() -> None:
    """Serve one scale run over stdin/stdout."""
    waiters, spread, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else ""
    rng = random.Random(seed)
    with FakeRegistry(keepalive_interval=15.0) as reg:
        jobs = []
        for _ in range(waiters):
            job_type = rng.choice(TYPES)
            state = "failed" if rng.random() < 0.25 else "completed"
            jobs.append([job_type, reg.add_job(job_type, "manual"), state])
        print(json.dumps({"url": reg.url, "jobs": jobs}), flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        if mode != "ready":
            reg.wait_for_subscribers(waiters, timeout=60)
        if mode == "settled":
            reg.wait_for_requests(2 * waiters, timeout=60)
        result: dict[str, Any] = {}
        driver = threading.Thread(
            target=lambda: result.update(ended=drive(reg, jobs, spread, rng)), daemon=True
        )
        driver.start()
        driver.join()
        result["server_errors"] = len(reg.errors)
        result["requests"] = len(reg.requests)
        result["streams"] = sum(1 for r in reg.requests if r.path.endswith("/jobs/events"))
        print(json.dumps(result), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()

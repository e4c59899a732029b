"""Scale: many concurrent ``wait_for`` calls on one shared client, jobs ending at random times.

Usage: ``python bench/scale.py WAITERS SPREAD RUNS`` (prints JSON). Per run, scale_server.py
(its own process) holds a FakeRegistry with ``WAITERS`` manual jobs; here one thread per job
calls ``client.wait_for((type, id), timeout=60, raise_on_failure=False)`` on one shared
``JobsClient``; once every stream got its ``ack`` the server's driver thread moves each job to
``completed`` or ``failed`` at a random moment within ``SPREAD`` seconds. For each job: did
``wait_for`` return the right final state, how long after the ``transition()`` call (both
processes read CLOCK_MONOTONIC) did its terminal event reach ``on_event`` (the server's and
the stream's share), and how long until ``wait_for`` returned (after its confirming get).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from typing import Any

from common import BENCH, emit

from waylay_jobs import JobsClient


class _Counter(logging.Handler):
    """Counts urllib3's "Connection pool is full" warnings (connections beyond the pool's size)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "pool is full" in record.getMessage()


def one_run(waiters: int, spread: float, seed: int) -> dict[str, Any]:
    """One run; returns the per-job delays and the count of right outcomes."""
    server = subprocess.Popen(
        [sys.executable, str(BENCH / "scale_server.py"), str(waiters), str(spread), str(seed)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        setup = json.loads(server.stdout.readline())
        jobs = setup["jobs"]
        returned: dict[str, tuple[int, str]] = {}
        heard: dict[str, int] = {}
        errors: list[str] = []
        lock = threading.Lock()
        with JobsClient(setup["url"]) as client:

            def wait(job_type: str, jid: str) -> None:
                def on_event(event: Any) -> None:
                    if event.event in ("completed", "failed") and jid not in heard:
                        heard[jid] = time.monotonic_ns()

                try:
                    final = client.wait_for(
                        (job_type, jid), timeout=60, raise_on_failure=False, on_event=on_event
                    )
                except Exception as exc:  # reported, not swallowed: the run fails below
                    with lock:
                        errors.append(f"{job_type}/{jid}: {type(exc).__name__}: {exc}")
                    return
                done = time.monotonic_ns()
                with lock:
                    returned[jid] = (done, str(final.job.state))

            threads = [
                threading.Thread(target=wait, args=(t, jid), daemon=True) for t, jid, _ in jobs
            ]
            for thread in threads:
                thread.start()
            server.stdin.write("go\n")
            server.stdin.flush()
            ended = json.loads(server.stdout.readline())
            for thread in threads:
                thread.join(timeout=60)
        hung = sum(thread.is_alive() for thread in threads)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    right = sum(returned.get(jid, (0, ""))[1] == state for _, jid, state in jobs)
    delays = [
        (returned[jid][0] - ended["ended"][jid]) / 1e9 for _, jid, _ in jobs if jid in returned
    ]
    delivered = [(heard[jid] - ended["ended"][jid]) / 1e9 for _, jid, _ in jobs if jid in heard]
    return {
        "waiters": waiters,
        "right": right,
        "failed_expected": sum(state == "failed" for _, _, state in jobs),
        "errors": errors[:5],
        "hung": hung,
        "delays": delays,
        "delivered": delivered,
        "server_errors": ended["server_errors"],
    }


def main() -> None:
    """Print ``{"runs": [...], "pool_full_warnings": n}``."""
    waiters, spread, runs = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    counter = _Counter()
    pool_logger = logging.getLogger("urllib3.connectionpool")
    pool_logger.addHandler(counter)
    pool_logger.propagate = False
    results = [one_run(waiters, spread, seed) for seed in range(runs)]
    emit({"runs": results, "pool_full_warnings": counter.count})


if __name__ == "__main__":
    main()

"""Many jobs: ``wait_all`` over one event stream vs one ``wait_for`` thread per job.

Usage: ``python bench/many.py MODE JOBS SPREAD SEED`` (prints JSON), MODE ``wait_all`` or
``threads``; each mode runs in a fresh process so that its memory and CPU are its own. The
registry (many_server.py) runs in another process with ``JOBS`` manual jobs ending at random
moments within ``SPREAD`` seconds. ``wait_all`` mode follows them with ``client.as_completed``
(the same machine as ``wait_all``, handing each job over as it ends); ``threads`` mode starts one
thread per job calling ``client.wait_for`` on one shared client. Measured in this process:
connections opened (urllib3 ``connect()`` calls), peak threads and peak RSS growth (sampled
every 10 ms), CPU seconds (``process_time``), and for each job the time from the server's
``transition()`` to its report (both processes read CLOCK_MONOTONIC); the server reports the
requests it received.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import time
from typing import Any

import urllib3.connection
from common import BENCH, emit

from waylay_jobs import JobsClient

_PAGE = 4096


def rss_mb() -> float:
    """The current resident set size of this process, in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE / 2**20


class Sampler(threading.Thread):
    """Samples the thread count and RSS every 10 ms until stopped (it is one thread itself)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.threads = 0
        self.rss = 0.0

    def run(self) -> None:
        while not self.stop.wait(0.01):
            self.threads = max(self.threads, threading.active_count() - 1)
            self.rss = max(self.rss, rss_mb())


def main() -> None:
    """One run of one mode."""
    mode, count, spread, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    connects = 0
    original = urllib3.connection.HTTPConnection.connect

    def counting_connect(self: Any) -> None:
        nonlocal connects
        connects += 1
        original(self)

    urllib3.connection.HTTPConnection.connect = counting_connect  # type: ignore[method-assign]
    subscribers = 1 if mode == "wait_all" else count
    server = subprocess.Popen(
        [sys.executable, str(BENCH / "many_server.py"), str(count), str(spread), seed,
         str(subscribers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert server.stdin is not None
    assert server.stdout is not None
    reported: dict[str, tuple[int, str]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    try:
        setup = json.loads(server.stdout.readline())
        jobs = [(t, i) for t, i, _ in setup["jobs"]]
        with JobsClient(setup["url"]) as client:
            # Everything either mode needs is imported and warm before the baseline.
            client.list(limit=1)
            baseline_rss = rss_mb()
            sampler = Sampler()
            sampler.start()
            cpu = time.process_time()
            started = time.monotonic()
            server.stdin.write("go\n")
            server.stdin.flush()
            if mode == "wait_all":
                for final in client.as_completed(jobs, timeout=120):
                    reported[str(final.job.job.id)] = (time.monotonic_ns(), str(final.job.state))
            else:

                def wait(job: tuple[str, str]) -> None:
                    try:
                        final = client.wait_for(job, timeout=120, raise_on_failure=False)
                    except Exception as exc:  # reported, not swallowed: the run fails below
                        with lock:
                            errors.append(f"{job}: {type(exc).__name__}: {exc}")
                        return
                    with lock:
                        reported[job[1]] = (time.monotonic_ns(), str(final.job.state))

                threads = [threading.Thread(target=wait, args=(job,), daemon=True) for job in jobs]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=120)
            wall = time.monotonic() - started
            cpu = time.process_time() - cpu
            sampler.stop.set()
            sampler.join()
        ended = json.loads(server.stdout.readline())["ended"]
        server.stdin.write("stats\n")
        server.stdin.flush()
        stats = json.loads(server.stdout.readline())
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    expected = {i: state for _, i, state in setup["jobs"]}
    right = sum(reported.get(i, (0, ""))[1] == state for i, state in expected.items())
    emit(
        {
            "mode": mode,
            "jobs": count,
            "right": right,
            "errors": errors[:5],
            "connections": connects,
            "requests": stats["requests"],
            "server_errors": stats["server_errors"],
            "peak_threads": sampler.threads,
            "rss_growth_mb": max(0.0, sampler.rss - baseline_rss),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cpu_s": cpu,
            "wall_s": wall,
            "latencies": [(reported[i][0] - ended[i]) / 1e9 for i in ended if i in reported],
        }
    )


if __name__ == "__main__":
    main()

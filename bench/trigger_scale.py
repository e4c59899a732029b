"""Triggerer scale: many ``WaylayJobTrigger``s in one event loop, jobs ending at random times.

Usage: ``python bench/trigger_scale.py TRIGGERS SPREAD RUNS [FIRST_SEED] [per-trigger]``
(prints JSON; needs Airflow 2.11 or 3.x and httpx: a ``.venv-airflow*`` of ``.ci/airflow.sh``).
Per run, scale_server.py (its own process) holds a FakeRegistry with ``TRIGGERS`` manual jobs;
here every job gets a ``WaylayJobTrigger`` (through an Airflow connection of type ``waylay``),
all run in one asyncio loop as a triggerer runs them, and once every trigger follows its job
(the shared stream is up and every job was checked: the steady state of a triggerer) the server
moves each job to ``completed`` or ``failed`` at a random moment within ``SPREAD`` seconds. For
each job: the right outcome, and the time from the ``transition()`` call to the trigger's
``TriggerEvent`` (both processes read CLOCK_MONOTONIC). For the process: OS threads (before, and
the most seen while waiting, sampled every 20 ms), peak RSS over the baseline (per trigger; only
the first run of a process counts, later ones reuse the memory the first one freed), CPU seconds
of the wait, and the requests and event-stream connections the server saw.

``per-trigger`` runs the baseline, the previous release's trigger: each trigger waits over a
stream of its own (``wait_for_async``, the one-job wait on the asyncio driver) through an
``httpx.AsyncClient`` of its own (as that release gave each stream one: 500 streams in one pool
cost the loop milliseconds per request), and the ends start once every trigger has subscribed
and checked its job.

Then, for comparison, one round of what reschedule-mode sensors spend per poke interval for
the same jobs: ``TRIGGERS`` pokes, each as ``WaylayJobSensor.poke`` does it (a new client,
one ``get``, closed), one after another: requests, CPU seconds and wall time.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from typing import Any

# Airflow reads its configuration on import: a throw-away home, no example DAGs.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="waylay-bench-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import httpx
import psutil

from waylay_jobs import JobResponse, JobsClient
from waylay_jobs._config import Credentials
from waylay_jobs._http.aio import AsyncTransport, _shared
from waylay_jobs._policy import Deadline
from waylay_jobs._wait.aio import wait_for_async
from waylay_jobs._wait.machine import WaitOptions
from waylay_jobs._wait.shared import _GROUPS
from waylay_jobs._wait.targets import Target
from waylay_jobs.airflow import WaylayJobTrigger
from waylay_jobs.airflow import triggers as triggers_mod

HERE = os.path.dirname(os.path.abspath(__file__))
CONN_ID = "waylay_bench"
TOKEN = "bench"  # the fake registry takes any token


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


async def _read_line(reader: asyncio.StreamReader) -> Any:
    return json.loads(await reader.readline())


async def _own_stream(
    transport: AsyncTransport, target: Target, options: WaitOptions, *, timeout: Any = None
) -> JobResponse:
    """The previous release's trigger: a wait with a stream and a client of its own (the
    baseline); its clients share one TLS context (a context costs 20 ms to create)."""
    deadline = None if timeout is None else Deadline(timeout)
    async with httpx.AsyncClient(verify=_tls_context()) as client:
        own = AsyncTransport(
            Credentials(gateway_url=transport.gateway_url, token=TOKEN),
            timeout=transport.timeout,
            policy=transport.policy,
            client=client,
        )
        return await wait_for_async(own, target, options, deadline=deadline)


async def _followed(count: int) -> None:
    """Until the shared wait of this loop knows the state of ``count`` jobs: each was checked
    after the stream went live (a bench-only look at the wait's internals)."""
    loop = asyncio.get_running_loop()
    while True:
        groups = list(_GROUPS.get(loop, {}).values())
        known = sum(job.state is not None for g in groups for job in g.driver.waiter.jobs.values())
        if known >= count:
            return
        await asyncio.sleep(0.01)


async def _run_triggers(
    jobs: list[list[str]], server: subprocess.Popen[str], spread: float, shared: bool
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    assert server.stdout is not None
    assert server.stdin is not None
    # The server's result line is read by the loop itself: no helper thread to count.
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), server.stdout)
    await _shared()  # what a triggerer already has once its first trigger ran
    proc = psutil.Process()
    threads_before = proc.num_threads()
    rss_before = proc.memory_info().rss
    cpu_before = sum(proc.cpu_times()[:2])
    peak = {"threads": threads_before, "rss": rss_before}
    heard: dict[str, tuple[int, str]] = {}
    errors: list[str] = []

    async def sample() -> None:
        while True:
            peak["threads"] = max(peak["threads"], proc.num_threads())
            peak["rss"] = max(peak["rss"], proc.memory_info().rss)
            await asyncio.sleep(0.02)

    async def one(job_type: str, jid: str) -> None:
        trigger = WaylayJobTrigger(job_type=job_type, job_id=jid, waylay_conn_id=CONN_ID)
        event = await trigger.run().__anext__()
        heard[jid] = (time.monotonic_ns(), str(event.payload["status"]))
        if event.payload["status"] not in ("completed", "failed"):
            errors.append(f"{job_type}/{jid}: {event.payload}")

    sampler = asyncio.ensure_future(sample())
    started = time.monotonic()
    tasks = [asyncio.ensure_future(one(t, jid)) for t, jid, _ in jobs]
    if shared:
        await _followed(len(jobs))
    server.stdin.write("go\n")
    server.stdin.flush()
    ended = await _read_line(reader)
    done, pending = await asyncio.wait(tasks, timeout=60)
    for task in pending:
        task.cancel()
    wall = time.monotonic() - started
    cpu = sum(proc.cpu_times()[:2]) - cpu_before
    sampler.cancel()
    for task in done:
        if task.exception() is not None:
            errors.append(repr(task.exception()))
    return {
        "triggers": len(jobs),
        "spread": spread,
        "right": sum(heard.get(jid, (0, ""))[1] == state for _, jid, state in jobs),
        "failed_expected": sum(state == "failed" for _, _, state in jobs),
        "hung": len(pending),
        "errors": errors[:5],
        "delays": [(heard[j][0] - ended["ended"][j]) / 1e9 for _, j, _ in jobs if j in heard],
        "threads_before": threads_before,
        "threads_max": peak["threads"],
        "rss_before_mb": rss_before / 2**20,
        "rss_peak_mb": peak["rss"] / 2**20,
        "kb_per_trigger": (peak["rss"] - rss_before) / 1024 / len(jobs),
        "cpu_s": cpu,
        "wall_s": wall,
        "server_requests": ended.get("requests"),
        "streams": ended.get("streams"),
        "mode": "shared" if shared else "per-trigger",
        "server_errors": ended["server_errors"],
    }


def _pokes(url: str, jobs: list[list[str]]) -> dict[str, Any]:
    """One poke per job, as the reschedule-mode sensor does each poke_interval."""
    cpu_before = sum(psutil.Process().cpu_times()[:2])
    started = time.monotonic()
    for job_type, jid, _ in jobs:
        with JobsClient(url, token=TOKEN) as client:
            client.get(job_type, jid)
    return {
        "pokes": len(jobs),
        "requests": len(jobs),
        "cpu_s": sum(psutil.Process().cpu_times()[:2]) - cpu_before,
        "wall_s": time.monotonic() - started,
    }


def one_run(triggers: int, spread: float, seed: int, shared: bool = True) -> dict[str, Any]:
    """One run: the triggers, then a round of pokes against the same (ended) jobs."""
    server = subprocess.Popen(
        [
            sys.executable,
            os.path.join(HERE, "scale_server.py"),
            str(triggers),
            str(spread),
            str(seed),
            "ready" if shared else "settled",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    assert server.stdin is not None
    try:
        setup = json.loads(server.stdout.readline())
        conn = {"conn_type": "waylay", "host": setup["url"], "extra": {"token": TOKEN}}
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(conn)
        result = asyncio.run(_run_triggers(setup["jobs"], server, spread, shared))
        result["poke_round"] = _pokes(setup["url"], setup["jobs"])
        return result
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def main() -> None:
    """Print ``{"runs": [...]}``."""
    args = [a for a in sys.argv[1:] if a != "per-trigger"]
    shared = "per-trigger" not in sys.argv[1:]
    if not shared:
        triggers_mod.wait_shared = _own_stream  # type: ignore[assignment]
    triggers, spread, runs = int(args[0]), float(args[1]), int(args[2])
    first = int(args[3]) if len(args) > 3 else 0
    runs_done = [one_run(triggers, spread, seed, shared) for seed in range(first, first + runs)]
    print(json.dumps({"runs": runs_done}))


if __name__ == "__main__":
    main()

"""List the newest jobs, then show the newest one in full.

With WAYLAY_GATEWAY_URL set it uses your gateway (credentials from WAYLAY_TOKEN, or
WAYLAY_API_KEY and WAYLAY_API_SECRET, or a Waylay SDK profile); otherwise it starts the
embedded fake registry and adds a few jobs to it.
"""

from __future__ import annotations

import contextlib
import os

from waylay_jobs import JobsClient
from waylay_jobs.testing import FakeRegistry


def connect(stack: contextlib.ExitStack) -> JobsClient:
    if os.environ.get("WAYLAY_GATEWAY_URL"):
        return stack.enter_context(JobsClient.from_env())
    registry = stack.enter_context(FakeRegistry(speed=0.1))
    registry.add_job("build", "finished")
    registry.add_job("deploy", "finished-failed", function_type="webscripts")
    return stack.enter_context(JobsClient(registry.url))


with contextlib.ExitStack() as stack:
    client = connect(stack)
    jobs = client.list(created_after="7d", limit=5).jobs  # or state=["failed"], type=[...]
    for job in jobs:
        print(f"{job.type!s:8} {job.state!s:10} {job.id}")
    if jobs:
        newest = client.get(jobs[0].type, str(jobs[0].id))
        details = newest.job
        print(f"\nnewest: {details.type} job, {details.state}, progress {details.job.progress}")
        print(f"function: {details.function.name if details.function else '-'}")
        if details.job.failed_reason:
            print(f"failed because: {details.job.failed_reason}")

"""Wait for a job to end, with a timeout, and turn the outcome into an exit status.

Usage: python wait_for_job.py [JOB] where JOB is an id, a job href, or omitted with the
embedded fake registry (used unless WAYLAY_GATEWAY_URL is set), which then adds a build job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any

from waylay_jobs import ApiError, JobFailed, JobsClient, TransportError, WaitTimeout
from waylay_jobs.testing import FakeRegistry

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # progress lines

with contextlib.ExitStack() as stack:
    if os.environ.get("WAYLAY_GATEWAY_URL"):
        if len(sys.argv) != 2:
            sys.exit("usage: python wait_for_job.py JOB")
        client = stack.enter_context(JobsClient.from_env())
        job: Any = sys.argv[1]  # an id, a job href, or see wait_for's docs
    else:
        registry = stack.enter_context(FakeRegistry(speed=0.1))
        client = stack.enter_context(JobsClient(registry.url))
        job = ("build", registry.add_job("build", "success"))
    try:
        final = client.wait_for(job, timeout=600)
    except JobFailed as exc:
        sys.exit(f"the job failed: {exc.reason}")
    except WaitTimeout as exc:
        sys.exit(f"gave up after {exc.timeout:g}s; the job was {exc.last_state}")
    except (ApiError, TransportError) as exc:
        sys.exit(f"could not follow the job: {exc}")
    print(f"{final.job.type} job {final.job.job.id} {final.job.state}: {final.job.result}")

"""Start many jobs and wait for them all over one event stream, reporting each as it ends.

Usage: python wait_for_many.py [JOB ...] where each JOB is an id or a job href; with no
WAYLAY_GATEWAY_URL set, the embedded fake registry is used and 20 jobs of mixed types are
started on it (a few of them fail), as a deployment script that rebuilds functions would.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from typing import Any

from waylay_jobs import ApiError, JobsClient, JobsFailed, TransportError, WaitTimeout
from waylay_jobs.testing import FakeRegistry

with contextlib.ExitStack() as stack:
    jobs: list[Any]
    if os.environ.get("WAYLAY_GATEWAY_URL"):
        if len(sys.argv) < 2:
            sys.exit("usage: python wait_for_many.py JOB [JOB ...]")
        client = stack.enter_context(JobsClient.from_env())
        jobs = sys.argv[1:]  # ids or hrefs: anything wait_for accepts
    else:
        registry = stack.enter_context(FakeRegistry(speed=0.02))
        client = stack.enter_context(JobsClient(registry.url))
        rng = random.Random(7)  # noqa: S311 - job lengths, not cryptography
        jobs = []
        for number in range(20):
            job_type = ("build", "deploy", "verify")[number % 3]
            script = "fail" if number % 7 == 3 else "success"
            jobs.append((job_type, registry.add_job(job_type, script, step=rng.uniform(1, 5))))

    try:
        # as_completed: each job as soon as it ends (failed ones too), over one subscription.
        for final in client.as_completed(jobs, timeout=600):
            reason = f" ({final.job.job.failed_reason})" if final.job.state == "failed" else ""
            print(f"{final.job.type} job {final.job.job.id} {final.job.state}{reason}")
        # wait_all: the final jobs in the order given, or JobsFailed once all have ended.
        finals = client.wait_all(jobs, timeout=600)
    except JobsFailed as exc:
        print(f"{len(exc.failed)} of {len(exc.results)} jobs failed; the first: {exc.reason}")
    except WaitTimeout as exc:
        sys.exit(f"gave up after {exc.timeout:g}s; {len(exc.pending)} jobs had not ended")
    except (ApiError, TransportError) as exc:
        sys.exit(f"could not follow the jobs: {exc}")
    else:
        print(f"all {len(finals)} jobs completed")

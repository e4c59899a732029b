"""Print a job's events (and its children's) as they happen, until the job ends.

Usage: python follow_events.py [TYPE ID]. With WAYLAY_GATEWAY_URL set it follows that job on
your gateway (credentials as in list_and_get.py); otherwise it starts the embedded fake
registry with a verify job whose children (build, then deploy) run first.
"""

from __future__ import annotations

import contextlib
import os
import sys

from waylay_jobs import JobEvent, JobsClient
from waylay_jobs.testing import FakeRegistry

with contextlib.ExitStack() as stack:
    if os.environ.get("WAYLAY_GATEWAY_URL"):
        if len(sys.argv) != 3:
            sys.exit("usage: python follow_events.py TYPE ID")
        job_type, job_id = sys.argv[1], sys.argv[2]
        client = stack.enter_context(JobsClient.from_env())
    else:
        registry = stack.enter_context(FakeRegistry(speed=0.1))
        job_type, job_id = "verify", registry.add_job_with_children("verify", start="subscribe")
        client = stack.enter_context(JobsClient(registry.url))

    # The stream ends after the job's "close" event; leaving the block early closes it too.
    with client.events(type=job_type, id=job_id, children=True) as stream:
        for event in stream:
            if isinstance(event, JobEvent):
                print(f"{event.event:17} {event.job_type} job {event.job_id}")
            else:  # ack, keep-alive, close (text), or an event name newer than this library
                print(f"{event.event:17} {event.data}")

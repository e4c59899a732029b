"""``python -m waylay_jobs.testing``: run a fake registry with a few demo jobs until Ctrl-C."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from typing import Optional

from ._server import FakeRegistry


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Serve on 127.0.0.1 and keep adding demo jobs; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m waylay_jobs.testing", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="real seconds per nominal second (default 1)"
    )
    parser.add_argument(
        "--every", type=float, default=20.0, help="seconds between new demo jobs (default 20)"
    )
    options = parser.parse_args(argv)
    stop = threading.Event()
    with FakeRegistry(port=options.port, speed=options.speed) as registry:
        registry.add_job("build", "finished")
        registry.add_job("deploy", "finished-failed", function_type="webscripts")
        print(f"Fake Waylay registry on {registry.url} (Ctrl-C to stop)", flush=True)
        print(f"  jobs:   {registry.url}/registry/v2/jobs/", flush=True)
        print(f"  events: {registry.url}/registry/v2/jobs/events", flush=True)
        scripts = ("success", "retry", "fail")
        round_ = 0
        try:
            while True:
                parent = registry.add_job_with_children("verify")
                job_id = registry.add_job("build", scripts[round_ % len(scripts)])
                print(f"  new: verify {parent} (with children), build {job_id}", flush=True)
                round_ += 1
                stop.wait(options.every)
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m waylay_jobs.testing``: run a fake registry with a few demo jobs until Ctrl-C."""

from __future__ import annotations

import argparse
import math
import threading
from collections.abc import Sequence
from typing import Optional

from ._server import FakeRegistry

#: The token the printed ``export`` line sets: this registry checks none, so any would do.
TOKEN = "local-fake-registry"  # noqa: S105 - printed on purpose; it opens nothing
_DESCRIPTION = (
    "Run a local fake Waylay registry on 127.0.0.1 with a few demo jobs, and add new ones "
    "every --every seconds, until Ctrl-C. It prints the export lines that point waylay-jobs "
    "and the examples at it from another shell."
)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Serve on 127.0.0.1 and keep adding demo jobs; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m waylay_jobs.testing", description=_DESCRIPTION)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument(
        "--speed",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="real seconds per job step (default 1; smaller is faster), as in "
        "waylay-jobs demo --speed",
    )
    parser.add_argument(
        "--every",
        type=_seconds,
        default=20.0,
        metavar="SECONDS",
        help="seconds between new demo jobs (default 20)",
    )
    options = parser.parse_args(argv)
    stop = threading.Event()
    with FakeRegistry(port=options.port, speed=options.speed) as registry:
        registry.add_job("build", "finished")
        registry.add_job("deploy", "finished-failed", function_type="webscripts")
        _say(f"Fake Waylay registry on {registry.url} (Ctrl-C to stop)")
        _say(f"  jobs:   {registry.url}/registry/v2/jobs/")
        _say(f"  events: {registry.url}/registry/v2/jobs/events")
        _say("To use it from another shell (any token works: this registry checks none), paste:")
        _say(f"export WAYLAY_GATEWAY_URL={registry.url}")
        _say(f"export WAYLAY_TOKEN={TOKEN}")
        _say("then: waylay-jobs list, or python examples/list_and_get.py")
        scripts = ("success", "retry", "fail")
        round_ = 0
        try:
            while True:
                parent = registry.add_job_with_children("verify")
                job_id = registry.add_job("build", scripts[round_ % len(scripts)])
                _say(f"  new: verify {parent} (with children), build {job_id}")
                round_ += 1
                stop.wait(options.every)
        except KeyboardInterrupt:
            _say("stopping")
    return 0


def _say(text: str) -> None:
    print(text, flush=True)  # a reader on a pipe sees each line at once


if __name__ == "__main__":
    raise SystemExit(main())

"""``waylay-jobs demo``: list, get, events and wait against an embedded fake registry.

No account and no network: a :class:`~waylay_jobs.testing.FakeRegistry` on 127.0.0.1 plays a
``verify`` job whose children (``build``, then ``deploy``) run first, at a pace a person can
follow. Each section shows the command a user would type, then its real output.
"""

from __future__ import annotations

import time
from typing import Optional, TextIO

from ._cli_render import event_line, job_summary, jobs_table
from ._cli_wait import CliLogHandler, run_wait
from ._client import JobsClient
from ._models import JobEvent
from .testing import FakeRegistry

#: Real seconds per lifecycle step: the whole demo then takes about 12 seconds.
DEFAULT_SPEED = 1.25
_SECTIONS = 4


def run_demo(
    *,
    speed: float,
    out: TextIO,
    err: TextIO,
    handler: Optional[CliLogHandler],
    live: bool,
) -> int:
    """Run the demo; returns the exit status (0)."""
    started = time.monotonic()
    with FakeRegistry(speed=speed, keepalive_interval=max(1.0, 10 * speed)) as registry:
        registry.add_job("build", "finished")
        registry.add_job("deploy", "finished-failed", function_type="webscripts")
        parent = registry.add_job_with_children("verify", ("build", "deploy"), start="subscribe")
        gateway = f"--gateway {registry.url} --no-auth"
        _say(out, "waylay-jobs demo: a local fake Waylay registry; no account, no network.")
        _say(out, f"It runs on {registry.url} and plays each job step in {speed:g}s.")
        with JobsClient(registry.url) as client:
            _section(out, 1, "list: the newest jobs", f"waylay-jobs {gateway} list")
            _say(out, jobs_table(client.list().jobs))

            _section(
                out,
                2,
                "get: one job (a verify job; its children build and deploy run first)",
                f"waylay-jobs {gateway} get verify '{parent}'",
            )
            _say(out, job_summary(client.get("verify", parent)))

            _section(
                out,
                3,
                "events: the job and its children, as they happen",
                f"waylay-jobs {gateway} events --type verify --id '{parent}' --children",
            )
            _follow_until_build_completes(client, parent, out)
            _say(out, "(the demo stops listening here: closing the stream releases it)")

            _section(
                out,
                4,
                "wait: block until the job ends (progress goes to stderr)",
                f"waylay-jobs {gateway} wait verify '{parent}' --children",
            )
            run_wait(
                client,
                ("verify", parent),
                timeout=120 * speed + 10,
                children=True,
                as_json=False,
                out=out,
                err=err,
                handler=handler,
                live=live,
                make_poll_client=lambda: JobsClient(registry.url),
            )
    elapsed = time.monotonic() - started
    _say(out, f"\nDone in {elapsed:.1f}s. To try the commands on a registry that")
    _say(out, "keeps running: `python -m waylay_jobs.testing`. For your own gateway: set")
    _say(out, "WAYLAY_GATEWAY_URL and WAYLAY_TOKEN (or WAYLAY_API_KEY and WAYLAY_API_SECRET),")
    _say(out, "or use a Waylay SDK profile (--profile NAME; `waylay-jobs configure` saves one).")
    return 0


def _follow_until_build_completes(client: JobsClient, parent: str, out: TextIO) -> None:
    with client.events(type="verify", id=parent, children=True) as stream:
        for event in stream:
            _say(out, event_line(event))
            if isinstance(event, JobEvent) and event.event == "completed":
                return


def _section(out: TextIO, number: int, title: str, command: str) -> None:
    _say(out, f"\n== {number}/{_SECTIONS} {title} ==")
    _say(out, f"$ {command}")


def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()

"""Job designations (an id, a ``(type, id)`` pair, a reference, a list item, a response, an
href) as :class:`Target` s, without I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import parse_qs, unquote, urlsplit

from .._exceptions import InvalidArgument
from .._models import JobReference, JobResponse, JobSummary


@dataclass(frozen=True)
class Target:
    """A job waited for; ``type`` is ``None`` for a bare id until it is resolved."""

    type: Optional[str]
    id: str

    @property
    def label(self) -> str:
        """``build job 1234``, or ``job 1234`` while the type is unknown."""
        return f"{self.type} job {self.id}" if self.type else f"job {self.id}"


_JOB_PATH = re.compile(r"/registry/v2/jobs/(?P<type>[^/?#]+)/(?P<id>[^?#]+)$")


def target_of(job: Any) -> Target:
    """Any accepted job designation as a :class:`Target`, without I/O.

    A bare id string gives ``Target(None, id)``: its type is probed by the waiter.
    """
    if isinstance(job, Target):
        return job
    if isinstance(job, (JobResponse, JobSummary)):
        return _from_ref(job.ref)
    if isinstance(job, JobReference):
        return _from_ref(job)
    if isinstance(job, tuple):
        if len(job) != 2 or not all(isinstance(part, str) and part for part in job):
            raise InvalidArgument(f"expected a (type, id) pair of non-empty strings, got {job!r}")
        return Target(str(job[0]), str(job[1]))
    if isinstance(job, str):
        if not job.strip():
            raise InvalidArgument("expected a job id, got an empty string")
        target = _from_href(job)
        return target if target is not None else Target(None, job)
    raise InvalidArgument(
        "expected a job id, a (type, id) pair, a JobReference, a list item, a JobResponse "
        f"or a job href, got {type(job).__name__}"
    )


def _from_ref(ref: JobReference) -> Target:
    if not ref.id:
        raise InvalidArgument(f"the job reference {ref!r} has no id")
    return Target(str(ref.type), ref.id)


def _from_href(text: str) -> Optional[Target]:
    if "/registry/v2/jobs/" not in text:
        return None
    parts = urlsplit(text)
    if parts.path.rstrip("/").endswith("/registry/v2/jobs/events"):
        query = parse_qs(parts.query)
        if "type" in query and "id" in query:
            return Target(query["type"][0], query["id"][0])
        raise InvalidArgument(f"the event link {text!r} names no job type and id")
    match = _JOB_PATH.search(parts.path)
    if match is None:
        raise InvalidArgument(
            f"expected a job href like .../registry/v2/jobs/<type>/<id>, got {text!r}"
        )
    return Target(unquote(match["type"]), unquote(match["id"]))


def job_list(jobs: Any) -> list[Any]:
    """``jobs`` as a list, checked: an iterable of job designations, not one designation."""
    if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Iterable):
        raise InvalidArgument(
            "expected a list of jobs (ids, (type, id) pairs, references, list items, "
            f"responses or hrefs), got {type(jobs).__name__}; for one job use wait_for"
        )
    return list(jobs)

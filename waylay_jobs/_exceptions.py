"""The exceptions this library raises on purpose.

Every one derives from :class:`JobsError`::

    JobsError
    ├── InvalidArgument (also ValueError, TypeError)  bad input, raised before any request is sent
    ├── ConfigError                                   a profile or environment that cannot be used
    ├── TransportError                                network/TLS failure; the cause is chained
    ├── ApiError                                      the server answered, but not as expected
    │   ├── AuthError                                 401 or 403
    │   └── NotFoundError                             404 (say, an unknown job)
    ├── StreamError                                   the event stream broke its contract
    │   ├── EventDecodeError                          a job event whose data is not valid JSON
    │   ├── EventTooLarge                             one event exceeded the size limit
    │   └── StreamInterrupted                         the stream ended or broke before ``close``
    │       └── IdleTimeout                           no bytes for longer than the idle timeout
    ├── JobFailed                                     ``wait_for``: the job ended ``failed``
    │   └── JobsFailed                                ``wait_all``: some jobs ended ``failed``
    ├── WaitTimeout (also TimeoutError)               a wait: the deadline passed
    └── WaitCancelled                                 ``wait_for``: its ``cancel`` event was set

Messages say what was expected and what came back, and never contain a token or secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    import requests

    from ._models import JobResponse


class JobsError(Exception):
    """Base class of every exception raised on purpose by ``waylay_jobs``."""


class InvalidArgument(JobsError, ValueError, TypeError):
    """An argument has the wrong type or value; raised before any request is sent."""


class ConfigError(JobsError):
    """A profile file or the environment does not describe a usable configuration."""


class TransportError(JobsError):
    """The request could not be completed: connection refused, reset, TLS or timeout.

    The underlying ``requests``/``urllib3``/``socket`` exception is chained as ``__cause__``.

    Attributes:
        connect_failed: no connection could be made (refused, DNS, TLS handshake), so nothing
            at all came back from the server; ``False`` when a connection broke or went silent.
    """

    def __init__(self, message: str, *, connect_failed: bool = False) -> None:
        super().__init__(message)
        self.connect_failed = connect_failed


class ApiError(JobsError):
    """The server answered with an error status, or with a body of the wrong kind.

    Attributes:
        status_code: the HTTP status code.
        error: the server's error text (the ``error`` field of the JSON body when there is one,
            else the start of the body).
        data: the parsed JSON error body, or ``None`` when the body was not JSON.
        response: the ``requests.Response`` (its body already read).
        retry_after: the seconds the server asked to wait with ``Retry-After`` (``None`` when
            it did not, or the header was unusable).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error: Optional[str] = None,
        data: Any = None,
        response: Optional[requests.Response] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.data = data
        self.response = response
        self.retry_after = retry_after


class AuthError(ApiError):
    """401 or 403: the credentials are missing, wrong, expired or not allowed."""


class NotFoundError(ApiError):
    """404: the job (or path) does not exist."""


class DecodeError(JobsError, ValueError):
    """A JSON document does not have the shape of the model it should decode to.

    Attributes:
        model: the model that was being decoded (``JobsResponse``, ...).
        path: where in the document, e.g. ``jobs[1].function`` (empty for the top level).
    """

    def __init__(self, message: str, *, model: str, path: str) -> None:
        super().__init__(message)
        self.model = model
        self.path = path


class StreamError(JobsError):
    """The event stream broke its contract."""


class EventDecodeError(StreamError):
    """A job event's data is not the JSON document it should be.

    Attributes:
        event: the event name (``completed``, ...).
        snippet: the start of the offending data.
    """

    def __init__(self, message: str, *, event: str, snippet: str) -> None:
        super().__init__(message)
        self.event = event
        self.snippet = snippet


class EventTooLarge(StreamError):
    """One event grew beyond the configured ``max_event_size``; the connection was closed."""


class StreamInterrupted(StreamError):
    """The stream ended or broke before its ``close`` event (EOF, reset, truncated event)."""


class IdleTimeout(StreamInterrupted):
    """No bytes arrived for longer than the idle timeout: the connection is presumed dead."""


class JobFailed(JobsError):
    """``wait_for``: the job ended in the ``failed`` state.

    Attributes:
        job: the final ``JobResponse``.
        reason: the job's ``failedReason`` (``None`` when the server gave none).
    """

    def __init__(self, message: str, *, job: JobResponse, reason: Optional[str]) -> None:
        super().__init__(message)
        self.job = job
        self.reason = reason


class JobsFailed(JobFailed):
    """``wait_all``: one or more of the jobs ended ``failed`` (raised once all have ended).

    Attributes:
        failed: the final ``JobResponse`` of every job that failed, in the order given
            (a job given twice is listed once).
        results: the final ``JobResponse`` of every job, in the order given (one per position).
        job, reason: those of the first failed job, as for :class:`JobFailed`.
    """

    def __init__(
        self, message: str, *, failed: Sequence[JobResponse], results: Sequence[JobResponse]
    ) -> None:
        if not failed:
            raise ValueError("JobsFailed needs at least one failed job")
        first = failed[0]
        super().__init__(message, job=first, reason=first.job.job.failed_reason)
        self.failed = list(failed)
        self.results = list(results)


class WaitTimeout(JobsError, TimeoutError):
    """``wait_for``, ``wait_all``, ``as_completed``: the overall deadline passed first.

    Attributes:
        job_type, job_id: the job waited for; for many jobs, the first that had not ended
            (``job_type`` is ``None`` when a bare id could not be resolved in time).
        last_job: the last ``JobResponse`` seen of that job, or ``None`` when none was fetched.
        last_state: its last known state (``None`` when unknown).
        timeout: the deadline that passed, in seconds.
        pending: ``wait_all``/``as_completed``: the jobs that had not ended, as they were given,
            in the order given; empty for ``wait_for``.
    """

    def __init__(
        self,
        message: str,
        *,
        job_type: Optional[str],
        job_id: str,
        last_job: Optional[JobResponse],
        last_state: Optional[str],
        timeout: float,
        pending: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self.job_type = job_type
        self.job_id = job_id
        self.last_job = last_job
        self.last_state = last_state
        self.timeout = timeout
        self.pending = list(pending)


class WaitCancelled(JobsError):
    """``wait_for``: the wait's ``cancel`` event was set; nothing was left open.

    Attributes:
        job_type, job_id: the job waited for (``job_type`` is ``None`` if not yet known).
        last_state: the last known state (``None`` when unknown).
    """

    def __init__(
        self, message: str, *, job_type: Optional[str], job_id: str, last_state: Optional[str]
    ) -> None:
        super().__init__(message)
        self.job_type = job_type
        self.job_id = job_id
        self.last_state = last_state

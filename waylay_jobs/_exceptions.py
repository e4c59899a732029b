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
    └── WaitTimeout (also TimeoutError)               ``wait_for``: the deadline passed

Messages say what was expected and what came back, and never contain a token or secret.
"""

from __future__ import annotations

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
    """


class ApiError(JobsError):
    """The server answered with an error status, or with a body of the wrong kind.

    Attributes:
        status_code: the HTTP status code.
        error: the server's error text (the ``error`` field of the JSON body when there is one,
            else the start of the body).
        data: the parsed JSON error body, or ``None`` when the body was not JSON.
        response: the ``requests.Response`` (its body already read).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error: Optional[str] = None,
        data: Any = None,
        response: Optional[requests.Response] = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.data = data
        self.response = response


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


class WaitTimeout(JobsError, TimeoutError):
    """``wait_for``: the overall deadline passed before the job finished.

    Attributes:
        job_type, job_id: the job waited for.
        last_job: the last ``JobResponse`` seen, or ``None`` when none could be fetched.
        last_state: the last known state (``None`` when unknown).
        timeout: the deadline that passed, in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        job_type: str,
        job_id: str,
        last_job: Optional[JobResponse],
        last_state: Optional[str],
        timeout: float,
    ) -> None:
        super().__init__(message)
        self.job_type = job_type
        self.job_id = job_id
        self.last_job = last_job
        self.last_state = last_state
        self.timeout = timeout


#: Characters of a response body quoted in an exception message.
SNIPPET_LENGTH = 200


def body_snippet(body: bytes, encoding: str | None = None, limit: int = SNIPPET_LENGTH) -> str:
    """The start of a response body as one line: decoded leniently, whitespace collapsed."""
    text = body[: limit * 4].decode(encoding or "utf-8", errors="replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def body_encoding(response: requests.Response) -> str:
    """The charset the response declares if Python knows it, else UTF-8 (never ISO-8859-1)."""
    import codecs

    declared = (response.headers.get("Content-Type") or "").lower()
    if "charset=" in declared and response.encoding:
        try:
            return codecs.lookup(response.encoding).name
        except LookupError:
            return "utf-8"
    return "utf-8"


def media_type(response: requests.Response) -> str:
    """The media type without parameters (``text/html``), or a phrase saying there was none."""
    value = response.headers.get("Content-Type")
    if not value:
        return "no content type"
    return value.split(";", 1)[0].strip().lower() or "no content type"


def error_from_response(
    response: requests.Response, *, expected: str, body: bytes | None = None
) -> ApiError:
    """Build the exception for a response that is not what the caller expected.

    401/403 give :class:`AuthError`, 404 :class:`NotFoundError`, any other status (a 2xx of the
    wrong content type included) :class:`ApiError`. The message reads like
    ``GET /registry/v2/jobs/build/x: expected 200 application/json, got 502 text/html: <body>``.

    Args:
        response: the response; its body is read unless ``body`` is given.
        expected: what a good answer would have been, e.g. ``"200 application/json"``.
        body: the (already read, possibly truncated) body of a streamed response.
    """
    import json
    from urllib.parse import urlsplit

    raw = response.content if body is None else body
    encoding = body_encoding(response)
    data: Any = None
    error: str | None = None
    if raw:
        try:
            data = json.loads(raw.decode(encoding, errors="replace"))
        except ValueError:
            data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        error = data["error"]
    snippet = body_snippet(raw, encoding)
    if error is None and snippet:
        error = snippet
    request = response.request
    method = (request.method if request is not None else None) or "GET"
    parts = urlsplit((request.url if request is not None else None) or response.url or "")
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    message = (
        f"{method} {target or '/'}: expected {expected}, "
        f"got {response.status_code} {media_type(response)}"
    )
    message += f": {snippet}" if snippet else " with an empty body"
    status = response.status_code
    cls: type[ApiError]
    if status in (401, 403):
        cls = AuthError
    elif status == 404:
        cls = NotFoundError
    else:
        cls = ApiError
    return cls(message, status_code=status, error=error, data=data, response=response)

"""waylay-jobs: a synchronous client for the Waylay Function Registry Jobs API."""

from ._exceptions import (
    ApiError,
    AuthError,
    ConfigError,
    EventDecodeError,
    EventTooLarge,
    IdleTimeout,
    InvalidArgument,
    JobFailed,
    JobsError,
    NotFoundError,
    StreamError,
    StreamInterrupted,
    TransportError,
    WaitTimeout,
)
from ._version import __version__

__all__ = [
    "ApiError",
    "AuthError",
    "ConfigError",
    "EventDecodeError",
    "EventTooLarge",
    "IdleTimeout",
    "InvalidArgument",
    "JobFailed",
    "JobsError",
    "NotFoundError",
    "StreamError",
    "StreamInterrupted",
    "TransportError",
    "WaitTimeout",
    "__version__",
]

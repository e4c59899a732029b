"""waylay-jobs: a synchronous client for the Waylay Function Registry Jobs API.

Everything public is imported from here::

    from waylay_jobs import JobsClient, JobFailed, WaitTimeout, ApiError
"""

import logging
from typing import TYPE_CHECKING, Any

from ._client import JobsClient
from ._config import Credentials, save_profile
from ._exceptions import (
    ApiError,
    AuthError,
    ConfigError,
    DecodeError,
    EventDecodeError,
    EventTooLarge,
    IdleTimeout,
    InvalidArgument,
    JobFailed,
    JobsError,
    JobsFailed,
    NotFoundError,
    StreamError,
    StreamInterrupted,
    TransportError,
    WaitCancelled,
    WaitTimeout,
)
from ._version import __version__

# As requests and urllib3 do: a script that never configured logging gets none of the
# library's records on stderr (Python's last-resort handler prints WARNINGs otherwise).
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from ._events import EventStream
    from ._models import (
        JOB_EVENT_NAMES,
        TERMINAL_STATES,
        AckEvent,
        ActiveEventData,
        BatchArgs,
        BatchResult,
        BuildArgs,
        BuildResult,
        CleanupResult,
        CloseEvent,
        CompletedEventData,
        DelayedEventData,
        DeployArgs,
        DeployResult,
        DeploySpecOverrides,
        Event,
        ExposedOpenfaasDeploySpec,
        FailedEventData,
        FunctionRef,
        FunctionType,
        HalLink,
        JobDetails,
        JobEvent,
        JobEventData,
        JobHalLink,
        JobReference,
        JobResponse,
        JobsResponse,
        JobState,
        JobStatus,
        JobSummary,
        JobType,
        KeepAliveEvent,
        Links,
        NotifyResult,
        ParentKeys,
        QueueEvent,
        RequestOperation,
        ResourceLimits,
        ScaleArgs,
        UndeployArgs,
        UndeployResult,
        UnknownEvent,
        VerifyArgs,
        VerifyResult,
        WaitingEventData,
    )

__all__ = [
    "JOB_EVENT_NAMES",
    "TERMINAL_STATES",
    "AckEvent",
    "ActiveEventData",
    "ApiError",
    "AuthError",
    "BatchArgs",
    "BatchResult",
    "BuildArgs",
    "BuildResult",
    "CleanupResult",
    "CloseEvent",
    "CompletedEventData",
    "ConfigError",
    "Credentials",
    "DecodeError",
    "DelayedEventData",
    "DeployArgs",
    "DeployResult",
    "DeploySpecOverrides",
    "Event",
    "EventStream",
    "EventDecodeError",
    "EventTooLarge",
    "ExposedOpenfaasDeploySpec",
    "FailedEventData",
    "FunctionRef",
    "FunctionType",
    "HalLink",
    "IdleTimeout",
    "InvalidArgument",
    "JobDetails",
    "JobEvent",
    "JobEventData",
    "JobFailed",
    "JobHalLink",
    "JobReference",
    "JobResponse",
    "JobState",
    "JobStatus",
    "JobSummary",
    "JobType",
    "JobsClient",
    "JobsError",
    "JobsFailed",
    "JobsResponse",
    "KeepAliveEvent",
    "Links",
    "NotFoundError",
    "NotifyResult",
    "ParentKeys",
    "QueueEvent",
    "RequestOperation",
    "ResourceLimits",
    "ScaleArgs",
    "StreamError",
    "StreamInterrupted",
    "TransportError",
    "UndeployArgs",
    "UndeployResult",
    "UnknownEvent",
    "VerifyArgs",
    "VerifyResult",
    "WaitCancelled",
    "WaitTimeout",
    "WaitingEventData",
    "save_profile",
    "__version__",
]


if not TYPE_CHECKING:  # type checkers see the imports above (and no catch-all __getattr__)

    def __getattr__(name: str) -> Any:
        # PEP 562: the models and the event stream are imported on first use. They are most
        # of the import time, which a CLI run or an Airflow DAG file being parsed pays for
        # nothing (the README's Performance section has the numbers).
        if name not in __all__:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib import import_module

        module = import_module("._events" if name == "EventStream" else "._models", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))

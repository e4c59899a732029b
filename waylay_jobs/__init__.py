"""waylay-jobs: a synchronous client for the Waylay Function Registry Jobs API.

Everything public is imported from here::

    from waylay_jobs import JobsClient, JobFailed, WaitTimeout, ApiError
"""

from typing import TYPE_CHECKING, Any

from ._client import JobsClient
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
    WaitTimeout,
)
from ._version import __version__

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
    "WaitTimeout",
    "WaitingEventData",
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

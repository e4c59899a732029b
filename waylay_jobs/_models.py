"""Wire models of the Jobs API: enums, dataclasses and their JSON codecs.

Every model is a frozen dataclass whose attributes are the snake_case of the camelCase wire names
(``_links`` becomes ``links``). The wire mapping is declared once, with ``dataclasses-json``
metadata (camelCase letter case, ``field_name`` overrides); from it each class gets a field plan,
built once, that drives the fast codecs:

* ``Model.from_wire(document)`` decodes a parsed JSON object. Missing optional fields and explicit
  ``null`` both give ``None``; unknown keys are kept in ``extra``; unknown enum values stay plain
  strings. A document of the wrong shape (an object that is a list, a missing job ``type``, ...)
  raises :class:`DecodeError`. Scalars are not type-checked: the server's values pass through.
  Timestamps (``created_at``, ``processed_at``, ``finished_at``, an event's ``timestamp``) are
  timezone-aware ``datetime`` objects; text that is not an ISO-8601 date-time with an offset
  stays the string it was (and a number stays a number).
* ``model.to_wire()`` gives the wire document back: ``Model.from_wire(d).to_wire() == d`` holds,
  including unknown keys, explicit ``null`` values and the exact text of each timestamp (the
  decoder notes which known keys were ``null`` and the text a ``datetime`` came from; a model
  built by hand omits its ``None`` fields and writes its datetimes with :func:`format_time`).
* ``from_dict``/``to_dict``/``from_json``/``to_json`` (the ``dataclasses-json`` API) use the same
  codecs, so both paths agree. Free-form values (maps, lists, ``extra``) are shared, not copied.
  ``schema()`` is still dataclasses-json's own marshmallow schema, which knows nothing of the
  per-job-type unions: prefer the codecs above.

The codecs walk the plan in a plain loop (no generated code): decoding costs about 1.5-2x
``json.loads`` of the same document, where generic dataclasses-json decoding costs ~300x.
"""

# Field types keep typing.Optional/Union: dataclasses-json and the plan builder resolve them at
# run time, where ``X | None`` does not evaluate on Python 3.9.

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum
from typing import (
    Any,
    Optional,
    Union,
)

from ._codec import (
    _EXTRA,
    _LINKS,
    _REQUIRED,
    WireModel,
    _hook,
    _lazy,
    _make_lazy,
    _plan,
    _raw,
    _shape_error,
)
from ._exceptions import DecodeError, EventDecodeError

_SNIPPET = 200


# -- enums ------------------------------------------------------------------------------------


class _WireEnum(str, Enum):
    """A ``str`` enum whose ``str()`` and format are the wire value."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)


class JobType(_WireEnum):
    """The job types (``EJobType``)."""

    BUILD = "build"
    DEPLOY = "deploy"
    VERIFY = "verify"
    UNDEPLOY = "undeploy"
    BATCH = "batch"
    SCALE = "scale"
    CLEANUP = "cleanup"
    NOTIFY = "notify"


class JobState(_WireEnum):
    """The job states (``JobStateResult``); ``completed`` and ``failed`` are terminal."""

    COMPLETED = "completed"
    FAILED = "failed"
    ACTIVE = "active"
    DELAYED = "delayed"
    WAITING = "waiting"
    WAITING_CHILDREN = "waiting-children"
    PRIORITIZED = "prioritized"
    UNKNOWN = "unknown"


class FunctionType(_WireEnum):
    """The kinds of function a job acts on (``kfserving`` is a BYOML model)."""

    PLUGS = "plugs"
    WEBSCRIPTS = "webscripts"
    KFSERVING = "kfserving"


class QueueEvent(_WireEnum):
    """BullMQ queue events (``QueueEvents``), used as the ``prev`` state of job events."""

    COMPLETED = "completed"
    FAILED = "failed"
    ACTIVE = "active"
    DELAYED = "delayed"
    WAITING = "waiting"
    WAITING_CHILDREN = "waiting-children"
    ADDED = "added"
    CLEANED = "cleaned"
    DRAINED = "drained"
    ERROR = "error"
    PAUSED = "paused"
    PROGRESS = "progress"
    REMOVED = "removed"
    RESUMED = "resumed"
    RETRIES_EXHAUSTED = "retries-exhausted"
    STALLED = "stalled"


class RequestOperation(_WireEnum):
    """The operations that start jobs (``ERequestOperation``)."""

    CREATE = "create"
    METADATA_UPDATE = "metadata-update"
    ASSETS_UPDATE = "assets-update"
    REBUILD = "rebuild"
    VERIFY = "verify"
    PUBLISH = "publish"
    DEPRECATE = "deprecate"
    UNDEPLOY = "undeploy"
    UNDEPRECATE = "undeprecate"
    PROTECT = "protect"
    UNPROTECT = "unprotect"


#: The states in which a job has ended (enum members compare equal to these strings).
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed"})


def _is_object(v: Any) -> bool:
    # What json.loads makes; any other mapping is decoded at once.
    return v.__class__ is dict


def _is_links(v: Any) -> bool:
    """Whether decoding ``Links`` from ``v`` cannot fail: an object whose known links are
    objects or lists of objects (the fields of a link, and other keys, are never checked)."""
    if v.__class__ is not dict:
        return False
    for key in _LINK_KEYS:
        value = v.get(key)
        cls = value.__class__
        if cls is list:
            if not all(item.__class__ is dict for item in value):
                return False
        elif cls is not dict and value is not None:
            return False
    return True


_Number = Union[int, float]
#: A timestamp: a timezone-aware ``datetime``, or the wire text when it is not an ISO-8601
#: date-time with an offset (forward compatible: odd text never fails a decode).
_Time = Union[datetime, str, None]

# -- common parts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionRef(WireModel):
    """The function a job acts on."""

    function_type: Union[FunctionType, str, None] = None
    name: Optional[str] = None
    version: Optional[str] = None
    runtime: Optional[str] = None
    runtime_version: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class JobReference(WireModel):
    """A job's type and id (the ``job`` of an event, ``scheduledJob`` of a cleanup)."""

    type: Union[JobType, str] = field(metadata=_REQUIRED)
    id: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class ParentKeys(WireModel):
    """The parent of a job (``JobStatus.parent``)."""

    id: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class JobStatus(WireModel):
    """The BullMQ view of a job (``job.job`` in a get response)."""

    id: Optional[str] = None
    name: Optional[str] = None
    progress: Union[int, float, dict[str, Any], None] = None
    attempts_made: Optional[_Number] = None
    finished_on: Union[str, int, float, None] = None
    processed_on: Union[str, int, float, None] = None
    failed_reason: Optional[str] = None
    parent: Optional[ParentKeys] = None
    delay: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)

    @property
    def numeric_progress(self) -> Optional[float]:
        """``progress`` as a float when it is a number, else ``None`` (it may be an object)."""
        value = self.progress
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None


@dataclass(frozen=True)
class HalLink(WireModel):
    """A HAL link."""

    href: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class JobHalLink(WireModel):
    """A HAL link to a job; ``job_type`` is absent from servers older than API 2.17."""

    href: Optional[str] = None
    job_type: Union[JobType, str, None] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class Links(WireModel):
    """HAL ``_links``: each value is one link or a list of links; which keys appear varies."""

    job: Union[JobHalLink, list[JobHalLink], None] = None
    event: Union[HalLink, list[HalLink], None] = None
    plug: Union[HalLink, list[HalLink], None] = None
    webscript: Union[HalLink, list[HalLink], None] = None
    model: Union[HalLink, list[HalLink], None] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


_LINK_KEYS = tuple(f.name for f in fields(Links) if f.name != "extra")  # wire names too


# -- requests (``job.request``, per job type) -------------------------------------------------


@dataclass(frozen=True)
class BuildArgs(WireModel):
    """The request of a build job."""

    storage_location: Optional[str] = None
    image_name: Optional[str] = None
    runtime_name: Optional[str] = None
    runtime_version: Optional[str] = None
    revision: Optional[str] = None
    args: Optional[dict[str, str]] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class ResourceLimits(WireModel):
    """Memory and CPU limits or requests of a deployment."""

    memory: Optional[str] = None
    cpu: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class DeploySpecOverrides(WireModel):
    """Overrides of the openfaas deploy spec (``DeployArgsDeploySpecOverrides``)."""

    service: Optional[str] = None
    image: Optional[str] = None
    namespace: Optional[str] = None
    network: Optional[str] = None
    env_vars: Optional[dict[str, str]] = None
    constraints: Optional[list[str]] = None
    labels: Optional[dict[str, str]] = None
    annotations: Optional[dict[str, str]] = None
    secrets: Optional[list[str]] = None
    registry_auth: Optional[str] = None
    limits: Optional[ResourceLimits] = None
    requests: Optional[ResourceLimits] = None
    read_only_root_filesystem: Optional[bool] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class DeployArgs(WireModel):
    """The request of a deploy job."""

    namespace: Optional[str] = None
    endpoint: Optional[str] = None
    image_name: Optional[str] = None
    runtime_name: Optional[str] = None
    runtime_version: Optional[str] = None
    revision: Optional[str] = None
    deploy_spec_overrides: Optional[DeploySpecOverrides] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class VerifyArgs(WireModel):
    """The request of a verify job."""

    namespace: Optional[str] = None
    endpoint: Optional[str] = None
    runtime_name: Optional[str] = None
    runtime_version: Optional[str] = None
    revision: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class UndeployArgs(WireModel):
    """The request of an undeploy job."""

    storage_location: Optional[str] = None
    image_name: Optional[str] = None
    namespace: Optional[str] = None
    endpoint: Optional[str] = None
    runtime_name: Optional[str] = None
    runtime_version: Optional[str] = None
    revision: Optional[str] = None
    delete_entity: Optional[bool] = None
    reset_entity: Optional[bool] = None
    delete_image: Optional[bool] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class ScaleArgs(WireModel):
    """The request of a scale job."""

    namespace: Optional[str] = None
    endpoint: Optional[str] = None
    runtime_name: Optional[str] = None
    runtime_version: Optional[str] = None
    revision: Optional[str] = None
    replicas: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class BatchArgs(WireModel):
    """The request of a batch job."""

    plug_name: Optional[str] = None
    function_type: Union[FunctionType, str, None] = None
    child_type: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


# -- results (``job.result`` and the ``returnvalue`` of a completed event) ----------------------


@dataclass(frozen=True)
class BuildResult(WireModel):
    """The result of a build job."""

    digest: Optional[str] = None
    log: Optional[list[str]] = None
    status: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class ExposedOpenfaasDeploySpec(WireModel):
    """The deploy spec a deploy job applied."""

    service: Optional[str] = None
    image: Optional[str] = None
    namespace: Optional[str] = None
    labels: Optional[dict[str, str]] = None
    annotations: Optional[dict[str, str]] = None
    limits: Optional[ResourceLimits] = None
    requests: Optional[ResourceLimits] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class DeployResult(WireModel):
    """The result of a deploy job."""

    deploy_spec: Optional[ExposedOpenfaasDeploySpec] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class VerifyResult(WireModel):
    """The result of a verify job."""

    healthy: Optional[bool] = None
    replicas: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class UndeployResult(WireModel):
    """The result of an undeploy job: what was removed."""

    deployment: Optional[bool] = None
    assets: Optional[bool] = None
    registration: Optional[bool] = None
    image: Optional[bool] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


#: The result of a scale job is a free-form object.
ScaleResult = dict[str, Any]


@dataclass(frozen=True)
class BatchResult(WireModel):
    """The result of a batch job."""

    job_count: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class CleanupResult(WireModel):
    """The result of a cleanup job."""

    scheduled_job: Optional[JobReference] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class NotifyResult(WireModel):
    """The result of a notify job."""

    operation: Union[RequestOperation, str, None] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


#: A JSON value as ``json.loads`` gives it (the request or result of a loose job type).
JsonValue = Union[dict[str, Any], list[Any], str, int, float, bool]

JobRequest = Union[BuildArgs, DeployArgs, VerifyArgs, UndeployArgs, ScaleArgs, BatchArgs, JsonValue]
JobResult = Union[
    BuildResult,
    DeployResult,
    VerifyResult,
    UndeployResult,
    BatchResult,
    CleanupResult,
    NotifyResult,
    JsonValue,
]

_REQUESTS: dict[str, type] = {
    "build": BuildArgs,
    "deploy": DeployArgs,
    "verify": VerifyArgs,
    "undeploy": UndeployArgs,
    "scale": ScaleArgs,
    "batch": BatchArgs,
}
_RESULTS: dict[str, type] = {
    "build": BuildResult,
    "deploy": DeployResult,
    "verify": VerifyResult,
    "undeploy": UndeployResult,
    "scale": dict,
    "batch": BatchResult,
    "cleanup": CleanupResult,
    "notify": NotifyResult,
}


#: Job types whose request and result the spec leaves loose: a value that is not an object
#: (``"ok"``, ``3``, a list) stays the plain JSON value instead of failing the decode.
_LOOSE_TYPES = frozenset({"notify", "cleanup", "scale"})


def _by_job_type(table: dict[str, type], job_type: Any, value: Any, path: str) -> Any:
    """Decode a request or result by job type. A type without a model keeps the plain JSON
    value; so does a loose type (notify, cleanup, scale) whose value is not an object."""
    model = table.get(job_type) if isinstance(job_type, str) else None
    if model is None or model is dict or (job_type in _LOOSE_TYPES and not _is_mapping(value)):
        return value
    return _plan(model).decoder(value, path)


def _is_mapping(value: Any) -> bool:
    return value.__class__ is dict or isinstance(value, Mapping)


def _request_hook(value: Any, path: str, od: dict[str, Any]) -> Any:
    return _by_job_type(_REQUESTS, od["type"], value, path)


def _result_hook(value: Any, path: str, od: dict[str, Any]) -> Any:
    return _by_job_type(_RESULTS, od["type"], value, path)


# -- list and get ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSummary(WireModel):
    """One job in a list response (any job type, including notify and cleanup)."""

    type: Union[JobType, str] = field(metadata=_REQUIRED)
    id: Optional[str] = None
    operation: Optional[str] = None
    created_by: Optional[str] = None
    created_at: _Time = None
    processed_at: _Time = None
    finished_at: Union[datetime, Any] = None
    attempts_made: Optional[_Number] = None
    state: Union[JobState, str, None] = None
    function: Optional[FunctionRef] = None
    links: Optional[Links] = field(default=None, metadata=_LINKS)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)

    @property
    def ref(self) -> JobReference:
        """The job's type and id."""
        return JobReference(type=self.type, id=self.id)


@dataclass(frozen=True)
class JobsResponse(WireModel):
    """The list response."""

    jobs: list[JobSummary] = field(metadata=_REQUIRED)
    limit: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class JobDetails(WireModel):
    """The status of one job (``job`` in a get response; the spec's ``*JobStatus`` variants).

    ``request`` and ``result`` are decoded by ``type`` (``BuildArgs``/``BuildResult``, ...). A
    scale result, the request and result of a job type without a model (unknown types, a
    notify or cleanup request), and a notify, cleanup or scale request or result that is not
    an object (``"ok"``, ``3``, a list) stay plain JSON values.
    """

    type: Union[JobType, str] = field(metadata=_REQUIRED)
    job: JobStatus = field(metadata=_REQUIRED)
    operation: Optional[str] = None
    created_by: Optional[str] = None
    created_at: _Time = None
    processed_at: _Time = None
    finished_at: Union[datetime, Any] = None
    attempts_made: Optional[_Number] = None
    state: Union[JobState, str, None] = None
    request: Optional[JobRequest] = field(default=None, metadata=_hook(_request_hook))
    result: Optional[JobResult] = field(default=None, metadata=_hook(_result_hook))
    function: Optional[FunctionRef] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)

    @property
    def ref(self) -> JobReference:
        """The job's type and id (``job.id``)."""
        return JobReference(type=self.type, id=self.job.id)


@dataclass(frozen=True)
class JobResponse(WireModel):
    """The get response."""

    job: JobDetails = field(metadata=_REQUIRED)
    links: Optional[Links] = field(default=None, metadata=_LINKS)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)

    @property
    def ref(self) -> JobReference:
        """The job's type and id."""
        return self.job.ref


def decode_jobs_response(document: Any) -> JobsResponse:
    """Decode a parsed list response; raises :class:`DecodeError` when its shape is wrong."""
    return JobsResponse.from_wire(document)


def decode_job_response(document: Any) -> JobResponse:
    """Decode a parsed get response; raises :class:`DecodeError` when its shape is wrong."""
    return JobResponse.from_wire(document)


# -- event payloads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveEventData(WireModel):
    """The payload of an ``active`` event."""

    prev: Union[QueueEvent, str, None] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class WaitingEventData(WireModel):
    """The payload of a ``waiting`` event."""

    prev: Union[QueueEvent, str, None] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class CompletedEventData(WireModel):
    """The payload of a ``completed`` event; ``returnvalue`` is decoded by the job's type, as
    :attr:`JobDetails.result` is (so it may be a plain JSON value)."""

    prev: Union[QueueEvent, str, None] = None
    returnvalue: Optional[JobResult] = field(default=None, metadata=_hook(_raw))
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class FailedEventData(WireModel):
    """The payload of a ``failed`` event."""

    prev: Union[QueueEvent, str, None] = None
    failed_reason: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class DelayedEventData(WireModel):
    """The payload of a ``delayed`` event (``delay``: probably the epoch ms of the next try)."""

    delay: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


#: The payload of a ``waiting-children`` event is a free-form object (``{}`` in practice).
WaitingChildrenEventData = dict[str, Any]

JobEventPayload = Union[
    ActiveEventData,
    WaitingEventData,
    CompletedEventData,
    FailedEventData,
    DelayedEventData,
    dict[str, Any],
]

_PAYLOADS: dict[str, type] = {
    "active": ActiveEventData,
    "waiting": WaitingEventData,
    "completed": CompletedEventData,
    "failed": FailedEventData,
    "delayed": DelayedEventData,
    "waiting-children": dict,
}

#: The names of the events that carry a JSON job event (the job's new state).
JOB_EVENT_NAMES: frozenset[str] = frozenset(_PAYLOADS)


@dataclass(frozen=True)
class JobEventData(WireModel):
    """The JSON envelope of a job event: which job, the per-event ``data``, when, on what.

    ``data`` is decoded by the event name given to :meth:`from_wire` (``parse_event`` gives it);
    without one it stays the plain object. ``function`` is ``None`` for batch jobs.
    """

    job: JobReference = field(metadata=_REQUIRED)
    data: JobEventPayload = field(metadata=_hook(_raw, required=True))
    # Decoded on first access: links and function are half the decoding cost of an event,
    # and a loop that follows events rarely looks at them.
    links: Optional[Links] = field(default=None, metadata={**_LINKS, **_lazy(_is_links)})
    timestamp: _Time = None
    function: Optional[FunctionRef] = field(default=None, metadata=_lazy(_is_object))
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], event: Optional[str] = None) -> JobEventData:
        """Decode an event envelope; ``event`` (the SSE event name) selects the payload model."""
        decoded: JobEventData = _plan(cls).decoder(data, cls.__name__)
        payload = _PAYLOADS.get(event) if event is not None else None
        raw = decoded.data
        path = f"{cls.__name__}.data"
        if payload is None or payload is dict:
            if not isinstance(raw, dict):
                raise _shape_error("an object", path, raw)
            return decoded
        value = _plan(payload).decoder(raw, path)
        if payload is CompletedEventData and value.returnvalue is not None:
            value.__dict__["returnvalue"] = _by_job_type(
                _RESULTS, decoded.job.type, value.returnvalue, f"{path}.returnvalue"
            )
        decoded.__dict__["data"] = value
        return decoded


_make_lazy(JobEventData)


# -- stream events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One server-sent event: its wire name, its data and its SSE ``id`` (when one was sent)."""

    event: str
    data: Any
    id: Optional[str] = None


@dataclass(frozen=True)
class AckEvent(Event):
    """``ack``: the subscription is active; ``data`` is the server's text."""

    data: str


@dataclass(frozen=True)
class KeepAliveEvent(Event):
    """``keep-alive``: a heartbeat; ``data`` is the server's text (may be empty)."""

    data: str


@dataclass(frozen=True)
class CloseEvent(Event):
    """``close``: the job named in the subscription is done; the stream ends after it."""

    data: str


@dataclass(frozen=True)
class JobEvent(Event):
    """A job changed state: ``active``, ``completed``, ``failed``, ``delayed``, ``waiting`` or
    ``waiting-children`` (the event name *is* the new state)."""

    data: JobEventData

    @property
    def job_type(self) -> Union[JobType, str]:
        """The type of the job the event is about (a child job with ``children=true``)."""
        return self.data.job.type

    @property
    def job_id(self) -> Optional[str]:
        """The id of the job the event is about."""
        return self.data.job.id

    @property
    def state(self) -> Union[JobState, str]:
        """The state the event announces."""
        return _STATES.get(self.event, self.event)


@dataclass(frozen=True)
class UnknownEvent(Event):
    """An event with a name this library does not know; ``data`` is the raw text."""

    data: str


_STATES: dict[str, JobState] = {state.value: state for state in JobState}
_TEXT_EVENTS: dict[str, type[Event]] = {
    "ack": AckEvent,
    "keep-alive": KeepAliveEvent,
    "close": CloseEvent,
}


def parse_event(name: str, data: str, id: Optional[str] = None) -> Event:
    """Turn one server-sent event (name, data text, id) into an :class:`Event`.

    The six job events are decoded from JSON into a :class:`JobEvent`; data that is not JSON, or
    not a job event envelope, raises :class:`~waylay_jobs.EventDecodeError`. Any other name gives
    an :class:`UnknownEvent`.
    """
    text_event = _TEXT_EVENTS.get(name)
    if text_event is not None:
        return text_event(name, data, id)
    if name not in JOB_EVENT_NAMES:
        return UnknownEvent(name, data, id)
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise EventDecodeError(
            f"expected JSON in the data of the {name!r} event, got invalid JSON ({exc}): "
            f"{_shown(data)}",
            event=name,
            snippet=data[:_SNIPPET],
        ) from exc
    try:
        payload = JobEventData.from_wire(document, event=name)
    except DecodeError as exc:
        raise EventDecodeError(
            f"the data of the {name!r} event is not a job event: {exc}; data: {_shown(data)}",
            event=name,
            snippet=data[:_SNIPPET],
        ) from exc
    # What the frozen dataclass __init__ does, minus its object.__setattr__ per field: this
    # runs once per event.
    event = _new(JobEvent)
    event.__dict__.update(event=name, data=payload, id=id)
    return event


_new = object.__new__


def _shown(data: str) -> str:
    return f"{data[:_SNIPPET]!r}{'...' if len(data) > _SNIPPET else ''}"

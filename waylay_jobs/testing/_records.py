"""The fake's vocabulary (enums of the spec) and its in-memory records."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Optional, Union

from ._faults import Faults

#: ``JobType``: every job type (get path, events ``type``).
JOB_TYPES = ("build", "deploy", "verify", "undeploy", "batch", "scale", "cleanup", "notify")
#: ``JobTypeSchema``: the job types the list ``type`` filter accepts (no ``cleanup``).
LIST_JOB_TYPES = ("build", "deploy", "verify", "undeploy", "scale", "batch", "notify")
#: ``JobStateResult``.
STATES = (
    "completed",
    "failed",
    "active",
    "delayed",
    "waiting",
    "waiting-children",
    "prioritized",
    "unknown",
)
#: States that have an SSE event of the same name.
EVENT_STATES = ("completed", "failed", "active", "delayed", "waiting", "waiting-children")
#: ``QueueEvents`` (the values ``prev`` may take).
QUEUE_EVENTS = (
    "completed",
    "failed",
    "active",
    "delayed",
    "waiting",
    "waiting-children",
    "added",
    "cleaned",
    "drained",
    "error",
    "paused",
    "progress",
    "removed",
    "resumed",
    "retries-exhausted",
    "stalled",
)
FUNCTION_TYPES = ("plugs", "webscripts", "kfserving")
#: HAL entity key and registry collection per function type.
ENTITY_KEYS = {"plugs": "plug", "webscripts": "webscript", "kfserving": "model"}
ENTITY_COLLECTIONS = {"plugs": "plugs", "webscripts": "webscripts", "kfserving": "models"}

JobKey = tuple[str, str]
Progress = Union[int, float, dict[str, Any]]


@dataclasses.dataclass
class JobRecord:
    """One job as the fake stores it; the wire documents are built from it on demand."""

    type: str
    id: str
    seq: int
    operation: str
    created_by: str
    created_at: dt.datetime
    state: str
    request: dict[str, Any]
    function: Optional[dict[str, Any]]
    progress: Progress = 0
    attempts_made: int = 0
    processed_at: Optional[dt.datetime] = None
    finished_at: Optional[dt.datetime] = None
    failed_reason: Optional[str] = None
    result: Optional[dict[str, Any]] = None
    delay_ms: Optional[int] = None
    parent: Optional[JobKey] = None
    final: bool = False
    faults: tuple[Faults, ...] = ()

    @property
    def key(self) -> JobKey:
        """``(type, id)``: job ids are unique per type only."""
        return (self.type, self.id)


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request the registry received. ``repr`` hides credentials and bodies."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def __repr__(self) -> str:
        names = sorted({key for key, _ in self.headers})
        return (
            f"RecordedRequest(method={self.method!r}, path={self.path!r}, "
            f"query={self.query!r}, header_names={names!r}, body_bytes={len(self.body)})"
        )

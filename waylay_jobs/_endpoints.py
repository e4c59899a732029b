"""The endpoints as functions of a transport: the paths, and the decoding of what comes back.

``JobsClient`` and the waiter both call these, so neither needs the other.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Optional

from ._http.blocking import Params, Transport, json_body, quote_segment
from ._policy import Deadline

if TYPE_CHECKING:
    from ._events import EventStream
    from ._models import JobResponse

JOBS_PATH = "/registry/v2/jobs/"
EVENTS_PATH = "/registry/v2/jobs/events"


def job_path(job_type: Any, job_id: Any) -> str:
    """``/registry/v2/jobs/{type}/{id}``, each segment percent-encoded."""
    if isinstance(job_type, enum.Enum):
        job_type = job_type.value
    return f"{JOBS_PATH}{quote_segment('type', job_type)}/{quote_segment('id', job_id)}"


def get_job(
    transport: Transport,
    job_type: str,
    job_id: str,
    *,
    deadline: Optional[Deadline] = None,
    retry: bool = True,
) -> JobResponse:
    """``GET /registry/v2/jobs/{type}/{id}``, decoded (one attempt with ``retry=False``)."""
    from ._models import decode_job_response

    path = job_path(job_type, job_id)
    response = transport.get_json(path, (), deadline=deadline, retry=retry)
    return decode_job_response(json_body(response))


def open_events(
    transport: Transport,
    params: Params,
    *,
    read_timeout: float,
    max_event_size: int,
    deadline: Optional[Deadline] = None,
) -> EventStream:
    """``GET /registry/v2/jobs/events``: an open :class:`EventStream`, ``read_timeout`` per read."""
    # Imported before the request: nothing that may be interrupted (Ctrl-C, a signal handler
    # that raises) should stand between the open response and its owner.
    from ._events import EventStream

    connect = transport.timeout[0]
    response = transport.open_stream(
        EVENTS_PATH, params, timeout=(connect, read_timeout), deadline=deadline
    )
    owned = False
    try:
        stream = EventStream(response, max_event_size=max_event_size)
        owned = True
    finally:
        if not owned:
            response.close()
    return stream

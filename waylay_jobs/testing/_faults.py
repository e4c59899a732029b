"""Fault injection: what to break, on which endpoint, for how many requests."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Hashable, Sequence
from typing import Any, Optional

#: The values accepted for :attr:`Faults.endpoint`.
ENDPOINTS = ("events", "get", "list", "token", "jobs", "any")
_JOB_ENDPOINTS = frozenset({"events", "get", "list"})


@dataclasses.dataclass(frozen=True)
class Faults:
    """One fault rule. Pass it (or a sequence of them) as ``faults=`` to the registry or a job.

    Which requests it hits:

    * ``endpoint``: ``"events"`` (default), ``"get"``, ``"list"``, ``"token"``,
      ``"jobs"`` (the three jobs endpoints) or ``"any"``. A rule given to ``add_job``
      only sees requests about that job (``get`` of it, ``events`` with its ``id``).
    * ``times``: the rule applies to the first ``times`` matching requests, then the
      endpoint works again ("fail K times, then succeed"); ``None`` means every request.

    Delaying the answer (any endpoint, the token endpoint included):

    * ``delay``: wait this many seconds before answering at all (no status line, no
      headers), or until the client hangs up or the registry stops. A slow backend, a
      stalled subscription, a token endpoint that hangs.

    Replacing the whole response (any endpoint):

    * ``status``: answer with this status (429, 503, 401, 502, ...) and a JSON error
      body ``{"error", "statusCode"}``; 429 and 503 carry ``Retry-After: retry_after``.
    * ``html``: with ``status``, send an HTML error page (``text/html``) instead of JSON.
    * ``content_type``: answer ``200`` with an HTML page under this content type
      (e.g. ``"text/html"``) instead of the real document or stream.

    Framing (any endpoint; for ``events`` it shapes the stream):

    * ``framing``: ``"chunked"`` (default) or ``"close"``: no ``Content-Length``,
      ``Connection: close``, the body ends when the server closes the connection.

    Event-stream faults (``events`` only). "Job events" counts the six job event names
    written after ``ack``; ``ack``, ``keep-alive`` and injected events do not count.

    * ``line_ending``: ``"\\r\\n"`` (default), ``"\\n"`` or ``"\\r"``.
    * ``bom``: start the body with a UTF-8 byte-order mark.
    * ``drop_after``: after this many job events, close the connection without ending
      the body (no ``close`` event, no terminating chunk).
    * ``stall_after``: after this many job events, write nothing at all (no keep-alives)
      until the client hangs up or the registry stops.
    * ``drip``: with ``stall_after``, instead of nothing, start an event and write one more
      byte of it every ``drip`` seconds, never completing it: a stream that keeps the
      connection busy (as a misbehaving proxy can) without delivering an event.
    * ``truncate_terminal``: write the event that would end the stream only halfway
      (cut in the middle of its ``data`` line), then end the body cleanly (EOF).
    * ``malformed_json``: the first job event carries broken JSON (a complete event).
    * ``unknown_event``: right after ``ack``, send an ``event: progress`` the spec does
      not define.
    * ``oversized``: pad the first job event with an extra ``padding`` key so that its
      ``data`` line is at least this many bytes (e.g. ``5_000_000``).
    """

    endpoint: str = "events"
    times: Optional[int] = None
    delay: float = 0.0
    status: Optional[int] = None
    retry_after: Optional[str] = "1"
    html: bool = False
    content_type: Optional[str] = None
    framing: str = "chunked"
    line_ending: str = "\r\n"
    bom: bool = False
    drop_after: Optional[int] = None
    stall_after: Optional[int] = None
    drip: float = 0.0
    truncate_terminal: bool = False
    malformed_json: bool = False
    unknown_event: bool = False
    oversized: int = 0

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}, got {self.endpoint!r}")
        if self.framing not in ("chunked", "close"):
            raise ValueError(f"framing must be 'chunked' or 'close', got {self.framing!r}")
        if self.line_ending not in ("\r\n", "\n", "\r"):
            raise ValueError(f"line_ending must be CRLF, LF or CR, got {self.line_ending!r}")
        if self.delay < 0:
            raise ValueError(f"delay must be seconds >= 0, got {self.delay!r}")
        if self.drip < 0 or (self.drip and self.stall_after is None):
            raise ValueError(f"drip must be seconds >= 0, with stall_after, got {self.drip!r}")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status!r}")
        for name in ("times", "drop_after", "stall_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {value!r}")

    def hits(self, endpoint: str) -> bool:
        """Whether this rule is about requests to ``endpoint`` (ignoring ``times``)."""
        if self.endpoint == "any":
            return True
        if self.endpoint == "jobs":
            return endpoint in _JOB_ENDPOINTS
        return self.endpoint == endpoint


NO_FAULTS = Faults()


def as_faults(faults: object) -> tuple[Faults, ...]:
    """Normalise ``None``, one :class:`Faults` or a sequence of them to a tuple."""
    if faults is None:
        return ()
    if isinstance(faults, Faults):
        return (faults,)
    if isinstance(faults, (list, tuple)):
        for item in faults:
            if not isinstance(item, Faults):
                raise TypeError(f"faults must be Faults instances, got {type(item).__name__}")
        return tuple(faults)
    raise TypeError(f"faults must be a Faults or a sequence of Faults, got {type(faults).__name__}")


def merge(active: Sequence[Faults]) -> Faults:
    """Combine the rules that hit one request: for each field, the first non-default wins."""
    if not active:
        return NO_FAULTS
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(Faults):
        if field.name in ("endpoint", "times", "retry_after"):
            continue
        for rule in active:
            value = getattr(rule, field.name)
            if value != field.default:
                changes[field.name] = value
                if field.name == "status":
                    changes["retry_after"] = rule.retry_after
                break
    return dataclasses.replace(NO_FAULTS, **changes)


class FaultBook:
    """Counts, per rule, how many requests it has hit, so ``times`` can run out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[tuple[Hashable, int], int] = {}

    def take(self, owner: Hashable, rules: Sequence[Faults], endpoint: str) -> list[Faults]:
        """Return the rules of ``owner`` that apply to this request, and count them used."""
        active: list[Faults] = []
        with self._lock:
            for index, rule in enumerate(rules):
                if not rule.hits(endpoint):
                    continue
                used = self._used.get((owner, index), 0)
                if rule.times is not None and used >= rule.times:
                    continue
                self._used[(owner, index)] = used + 1
                active.append(rule)
        return active

"""Text the ``waylay-jobs`` command prints: the job table, a job summary, one line per event.

Pure functions from models to strings; the command decides where they go. Text that came from
the server is passed through :func:`clean` first, so a job name cannot move the cursor or
rewrite the terminal title.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Optional

from ._codec import format_time
from ._models import Event, FunctionRef, JobEvent, JobResponse, JobSummary

TABLE_COLUMNS = ("TYPE", "ID", "STATE", "OPERATION", "FUNCTION", "CREATED")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FRACTION = re.compile(r"\.\d+(?=Z$|[+-]\d\d:?\d\d$|$)")


def clean(value: Any) -> str:
    """``value`` as one line of printable text (control characters become ``?``)."""
    return _CONTROL.sub("?", "" if value is None else str(value))


def short_time(value: Any) -> str:
    """An ISO timestamp without its fraction of a second (``2024-05-02T09:14:03Z``).

    Give it the wire text (``model.to_wire()["createdAt"]``): a decoded ``datetime`` is
    formatted again, which may spell the offset differently from the server.
    """
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        value = format_time(value)
    return clean(_FRACTION.sub("", str(value)))


def function_label(function: Optional[FunctionRef]) -> str:
    """``name@version``, the name alone, or ``-`` (batch jobs have no function)."""
    if function is None or not function.name:
        return "-"
    if function.version:
        return clean(f"{function.name}@{function.version}")
    return clean(function.name)


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """Columns aligned on their widest cell, two spaces apart; no trailing blanks."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row)]
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def jobs_table(jobs: Sequence[JobSummary]) -> str:
    """The ``list`` table: TYPE ID STATE OPERATION FUNCTION CREATED, one job a row."""
    rows = [
        (
            clean(job.type),
            clean(job.id or "-"),
            clean(job.state or "-"),
            clean(job.operation or "-"),
            function_label(job.function),
            short_time(job.to_wire().get("createdAt")),  # as the server wrote it
        )
        for job in jobs
    ]
    text = table(rows, TABLE_COLUMNS)
    return text if rows else text + "\n(no jobs)"


def job_label(job_type: Any, job_id: Any) -> str:
    """``build job 1a2b...``: how a job is named in messages."""
    return clean(f"{job_type} job {job_id}")


def job_summary(response: JobResponse) -> str:
    """The ``get`` summary: a heading line, then one indented ``name  value`` line each."""
    details = response.job
    status = details.job
    wire = response.to_wire().get("job", {})
    state = clean(details.state or "unknown")
    extras = []
    progress = status.numeric_progress
    if progress is not None:
        extras.append(f"progress {progress:g}%")
    attempts = details.attempts_made if details.attempts_made is not None else status.attempts_made
    if attempts is not None:
        extras.append(f"attempts {attempts:g}")
    fields: list[tuple[str, str]] = [
        ("state", state + (f" ({', '.join(extras)})" if extras else "")),
        ("operation", clean(details.operation or "-")),
        ("function", _function_details(details.function)),
        ("created", short_time(wire.get("createdAt")) + _by(details.created_by)),
    ]
    # The wire texts, not the datetimes: printed as the server wrote them.
    if wire.get("processedAt"):
        fields.append(("processed", short_time(wire["processedAt"])))
    if wire.get("finishedAt"):
        fields.append(("finished", short_time(wire["finishedAt"])))
    if status.failed_reason:
        fields.append(("failed", clean(status.failed_reason)))
    if status.parent is not None and status.parent.id:
        fields.append(("parent", clean(status.parent.id)))
    for name in ("request", "result"):
        if wire.get(name) is not None:
            fields.append((name, clean(compact_json(wire[name]))))
    width = max(len(name) for name, _ in fields)
    lines = [job_label(details.type, status.id)]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in fields]
    return "\n".join(lines)


def _function_details(function: Optional[FunctionRef]) -> str:
    if function is None:
        return "-"
    text = function_label(function)
    if function.function_type:
        text = f"{clean(function.function_type)} {text}"
    if function.runtime:
        runtime = " ".join(str(p) for p in (function.runtime, function.runtime_version) if p)
        text += f" (runtime {clean(runtime)})"
    return text


def _by(created_by: Optional[str]) -> str:
    return f" by {clean(created_by)}" if created_by else ""


def event_line(event: Event, *, now: Optional[float] = None) -> str:
    """One ``events`` line: the local time it arrived, the event name, what it is about."""
    stamp = time.strftime("%H:%M:%S", time.localtime(time.time() if now is None else now))
    name = clean(event.event).ljust(17)  # the longest: waiting-children
    if not isinstance(event, JobEvent):
        return f"{stamp}  {name} {clean(event.data)}".rstrip()
    envelope = event.data
    text = f"{stamp}  {name} {job_label(event.job_type, event.job_id)}"
    function = function_label(envelope.function)
    if function != "-":
        text += f"  {function}"
    detail = event_detail(event)
    return f"{text}  {detail}" if detail else text


def event_detail(event: JobEvent) -> str:
    """What a job event adds to its name: the failure reason or the retry delay."""
    payload = event.data.data
    reason = getattr(payload, "failed_reason", None)
    if reason:
        return f"reason: {clean(reason)}"
    delay = getattr(payload, "delay", None)
    if isinstance(delay, (int, float)) and not isinstance(delay, bool):
        return f"next attempt at {short_time(_epoch_ms(delay))}"
    return ""


def _epoch_ms(value: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value / 1000.0))


def event_json(event: Event) -> str:
    """One ``events --json`` line: ``{"event": ..., "data": ...}`` (plus ``"id"`` if sent)."""
    data = event.data.to_wire() if isinstance(event, JobEvent) else event.data
    document: dict[str, Any] = {"event": event.event, "data": data}
    if event.id is not None:
        document["id"] = event.id
    # ASCII: machine-readable output must survive any console encoding.
    return compact_json(document, ascii=True)


def compact_json(document: Any, *, ascii: bool = False) -> str:
    """One line of JSON with readable separators."""
    return json.dumps(document, ensure_ascii=ascii, separators=(", ", ": "))


def pretty_json(document: Any) -> str:
    """Indented JSON, the ``--json`` output of ``list``, ``get`` and ``wait``."""
    return json.dumps(document, indent=2)


def duration(seconds: float) -> str:
    """``4.2s``, ``1m05s``, ``2h03m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"

"""``waylay-jobs wait``: a live progress line on a terminal, plain log lines everywhere else.

With several jobs, ``wait_all``'s machine waits for them all over one event stream, and the
live line shows how many run, completed and failed, and the slowest job.

``wait_for`` logs every state change on the ``waylay_jobs`` logger; the command shows those
lines as they come. On a terminal it also keeps one status line at the bottom (state, progress,
elapsed time), redrawn in place with a carriage return by a small thread. The job's progress
is not in any event, so that thread reads it with ``get`` every couple of seconds, through a
client of its own (a ``requests.Session`` is not meant to be shared between threads).
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections.abc import Sequence
from typing import Any, Callable, Optional, TextIO

from ._cli_render import clean, duration, job_summary, pretty_json, table
from ._client import JobsClient
from ._exceptions import JobFailed, JobsError, JobsFailed
from ._models import Event, JobEvent, JobResponse, JobType
from ._policy import Deadline
from ._wait.blocking import many_wait, resolve_job, wait_for
from ._wait.machine import WaitOptions
from ._wait.targets import target_of

logger = logging.getLogger("waylay_jobs")

#: Seconds between redraws of the status line.
REDRAW_EVERY = 0.2
#: Seconds between the status line's ``get`` calls for the job's progress.
POLL_EVERY = 2.0
_SPINNER = "|/-\\"


class LiveLine:
    """One status line redrawn in place, with log lines printed above it.

    Args:
        stream: the terminal to draw on (stderr).
        job_type, job_id: the job followed.
        poll: returns the job's current ``JobResponse`` (or ``None`` when it could not be
            read); called from the redraw thread every ``poll_every`` seconds.
    """

    def __init__(
        self,
        stream: TextIO,
        job_type: str,
        job_id: str,
        *,
        poll: Optional[Callable[[], Optional[JobResponse]]] = None,
        redraw_every: float = REDRAW_EVERY,
        poll_every: float = POLL_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._type = job_type
        self._id = job_id
        self._poll = poll
        self._redraw_every = redraw_every
        self._poll_every = poll_every
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._frame = 0
        self._drawn = False
        self._poll_soon = False
        self.state = "subscribing"
        self.progress: Optional[float] = None
        self.note = ""

    def start(self) -> LiveLine:
        """Draw the line and start the thread that keeps it current."""
        self.draw()
        self._thread = threading.Thread(target=self._run, name="waylay-jobs-live-line")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (waiting for it) and erase the line. Idempotent."""
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            self._erase()
            self._stream.flush()

    def on_event(self, event: Event) -> None:
        """``wait_for``'s ``on_event``: a job event updates the state (or the child note)."""
        if not isinstance(event, JobEvent):
            return
        with self._lock:
            if event.job_id == self._id and str(event.job_type) == self._type:
                self.state = str(event.state)
                self.note = ""
                self._poll_soon = True  # a new state usually means new progress
            else:
                self.note = clean(f"child {event.job_type} {event.state}")
        self.draw()

    def update(self, response: JobResponse) -> None:
        """Take the state and progress of a freshly read job."""
        with self._lock:
            self.state = str(response.job.state or self.state)
            progress = response.job.job.numeric_progress
            if progress is not None:
                self.progress = progress
        self.draw()

    def print_above(self, text: str) -> None:
        """Print a whole line (a log message) and redraw the status line under it."""
        with self._lock:
            self._erase()
            self._stream.write(text + "\n")
            self._draw_locked()

    def draw(self) -> None:
        """Redraw the status line now."""
        with self._lock:
            self._draw_locked()

    def render(self) -> str:
        """The status line's text (without the carriage return)."""
        short_id = self._id if len(self._id) <= 12 else self._id[:8] + "..."
        spinner = _SPINNER[self._frame % len(_SPINNER)]
        parts = [f"{spinner} {clean(self._type)} job {clean(short_id)}", clean(self.state)]
        if self.progress is not None:
            parts.append(f"{self.progress:g}%")
        parts.append(duration(self._clock() - self._started))
        if self.note:
            parts.append(self.note)
        return "  ".join(parts)

    def _draw_locked(self) -> None:
        if self._stopped.is_set():
            return
        width = max(20, shutil.get_terminal_size().columns - 1)
        # Clear to the end of the line: a shorter line must not leave the old one's tail.
        self._stream.write("\r" + self.render()[:width] + "\x1b[K")
        self._stream.flush()
        self._drawn = True

    def _erase(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._drawn = False

    def _run(self) -> None:
        next_poll = self._clock()
        while not self._stopped.is_set():
            with self._lock:
                due, self._poll_soon = self._poll_soon or self._clock() >= next_poll, False
            if self._poll is not None and due:
                response = self._poll()
                next_poll = self._clock() + self._poll_every
                if response is not None:
                    self.update(response)
            with self._lock:
                self._frame += 1
                if not self._stopped.is_set():
                    self._draw_locked()
            self._stopped.wait(self._redraw_every)


class CliLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The command's log handler: plain lines on ``stream``, or above a :class:`LiveLine`."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.live: Optional[LiveLine] = None
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record as one line (above the live line while there is one)."""
        live = self.live
        if live is None:
            super().emit(record)
            return
        try:
            live.print_above(self.format(record))
        except RecursionError:  # as logging.StreamHandler does: never hide this one
            raise
        except Exception:  # noqa: BLE001 - logging's contract: a handler reports via handleError
            self.handleError(record)


def run_wait(
    client: JobsClient,
    job: Any,
    *,
    timeout: Optional[float],
    children: bool,
    as_json: bool,
    out: TextIO,
    err: TextIO,
    handler: Optional[CliLogHandler],
    live: bool,
    make_poll_client: Callable[[], JobsClient],
) -> int:
    """Wait for ``job``; print the final job on ``out``. Returns 0, or raises as ``wait_for``.

    On :class:`JobFailed` the failed job is printed too before the exception goes on.
    """
    # One deadline for the whole command: resolving a bare id counts against --timeout too.
    deadline = Deadline(timeout)
    target = resolve_job(client.transport, job, deadline=deadline)
    assert target.type is not None
    line: Optional[LiveLine] = None
    poll_client: Optional[JobsClient] = None
    if live:
        poll_client = make_poll_client()
        poll = _poller(poll_client, target.type, target.id)
        line = LiveLine(err, target.type, target.id, poll=poll)
    try:
        if line is not None:
            if handler is not None:
                handler.live = line
            line.start()
        try:
            options = WaitOptions(
                timeout=timeout,
                children=children,
                on_event=None if line is None else line.on_event,
            )
            final = wait_for(client.transport, target, options, deadline=deadline)
        except JobFailed as exc:
            _finish(line, exc.job)
            _stop(line, handler)
            _print_job(exc.job, as_json, out)
            raise
        _finish(line, final)
    finally:
        _stop(line, handler)
        if poll_client is not None:
            poll_client.close()
    _print_job(final, as_json, out)
    return 0


def _poller(client: JobsClient, job_type: str, job_id: str) -> Callable[[], Optional[JobResponse]]:
    def poll() -> Optional[JobResponse]:
        try:
            return client.get(job_type, job_id)
        except JobsError as exc:
            # Only the status line's progress is missing; wait_for reports real trouble.
            logger.debug("progress check failed: %s", exc)
            return None

    return poll


def _finish(line: Optional[LiveLine], final: JobResponse) -> None:
    # The last frame shows the final job: its progress was last read while it still ran.
    if line is not None:
        line.update(final)


def _stop(line: Optional[LiveLine], handler: Optional[CliLogHandler]) -> None:
    if handler is not None:
        handler.live = None
    if line is not None:
        line.stop()


def _print_job(response: JobResponse, as_json: bool, out: TextIO) -> None:
    text = pretty_json(response.to_wire()) if as_json else job_summary(response)
    out.write(text + "\n")
    out.flush()


# -- many jobs -------------------------------------------------------------------------------

#: Words that start a ``TYPE ID`` pair among the jobs of ``waylay-jobs wait``.
JOB_TYPE_WORDS = frozenset(t.value for t in JobType)
_TYPE_LIKE = re.compile(r"[a-z]+(-[a-z]+)*")


def wait_designations(words: Sequence[str]) -> list[Any]:
    """The jobs named on the command line: a job type followed by an id is one ``(type, id)``
    pair; any other word is one job (an id or a job href).

    Two words that read as ``TYPE ID`` (the first made of letters and dashes only, as job
    types are) stay one pair even for a type this version does not know, as ``wait TYPE ID``
    always was: the server then says whether the type exists.
    """
    if len(words) == 2 and _TYPE_LIKE.fullmatch(words[0]):
        return [(words[0], words[1])]
    jobs: list[Any] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in JOB_TYPE_WORDS and index + 1 < len(words):
            jobs.append((word, words[index + 1]))
            index += 2
        else:
            jobs.append(word)
            index += 1
    return jobs


class ManyLiveLine(LiveLine):
    """The status line of a wait for many jobs: how many run, completed and failed, and the
    job that has been running longest (the slowest so far)."""

    def __init__(
        self,
        stream: TextIO,
        jobs: Sequence[Any],
        *,
        redraw_every: float = REDRAW_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(stream, "", "", redraw_every=redraw_every, clock=clock)
        start = self._started
        # Keyed by id alone: a bare id's type is only known once resolved.
        self._pending: dict[str, tuple[str, str, float]] = {}
        for job in jobs:
            target = target_of(job)
            self._pending.setdefault(target.id, (target.type or "", "waiting", start))
        self.completed = 0
        self.failed = 0

    def on_event(self, event: Event) -> None:
        """A job event updates the state of a job still pending (not its children's)."""
        if not isinstance(event, JobEvent) or event.job_id not in self._pending:
            return
        with self._lock:
            _, state, since = self._pending[str(event.job_id)]
            if state != "active" and event.event == "active":
                since = self._clock()  # running from now: the slowest is the longest active
            self._pending[str(event.job_id)] = (str(event.job_type), str(event.state), since)
        self.draw()

    def ended(self, response: JobResponse) -> None:
        """A job ended: count it."""
        with self._lock:
            if self._pending.pop(str(response.job.job.id), None) is not None:
                if response.job.state == "failed":
                    self.failed += 1
                else:
                    self.completed += 1
        self.draw()

    def render(self) -> str:
        """``| 12 running  30 completed  2 failed  slowest: build job 1a2b3c4d... active 42s``."""
        spinner = _SPINNER[self._frame % len(_SPINNER)]
        parts = [
            f"{spinner} {len(self._pending)} running",
            f"{self.completed} completed",
            f"{self.failed} failed",
        ]
        if self._pending:
            job_id, (job_type, state, since) = min(
                self._pending.items(), key=lambda item: item[1][2]
            )
            short_id = job_id if len(job_id) <= 12 else job_id[:8] + "..."
            label = f"{job_type} job {short_id}" if job_type else f"job {short_id}"
            parts.append(
                f"slowest: {clean(label)} {clean(state)} {duration(self._clock() - since)}"
            )
        parts.append(duration(self._clock() - self._started))
        return "  ".join(parts)


def run_wait_many(
    client: JobsClient,
    jobs: Sequence[Any],
    *,
    timeout: Optional[float],
    as_json: bool,
    out: TextIO,
    err: TextIO,
    handler: Optional[CliLogHandler],
    live: bool,
) -> int:
    """Wait for every job over one event stream; print them all (in the order given) once all
    have ended. Returns 0, or raises as ``wait_all`` (:class:`JobsFailed` after printing)."""
    line = ManyLiveLine(err, jobs) if live else None
    options = WaitOptions(timeout=timeout, on_event=None if line is None else line.on_event)
    wait = many_wait(client.transport, jobs, options)
    try:
        if line is not None:
            if handler is not None:
                handler.live = line
            line.start()
        try:
            for final, _ in wait:
                if line is not None:
                    line.ended(final)
        except JobsFailed as exc:
            _stop(line, handler)
            _print_jobs(exc.results, as_json, out)
            raise
    finally:
        _stop(line, handler)
    _print_jobs(wait.results, as_json, out)
    return 0


def _print_jobs(results: Sequence[JobResponse], as_json: bool, out: TextIO) -> None:
    if as_json:
        text = pretty_json([response.to_wire() for response in results])
    else:
        rows = [
            (
                clean(r.job.type),
                clean(r.job.job.id or "-"),
                clean(r.job.state or "unknown"),
                clean(r.job.job.failed_reason or "") if r.job.state == "failed" else "",
            )
            for r in results
        ]
        text = table(rows, ("TYPE", "ID", "STATE", "REASON"))
    out.write(text + "\n")
    out.flush()

"""The job store: job records, state transitions, and the event bus of the streams.

One lock guards everything (jobs, subscriptions, counters); its condition wakes the
stream handlers, :meth:`JobStore.wait_for_subscriptions` and :meth:`JobStore.stop`.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import threading
from typing import Any, Callable, Optional

from . import _documents as docs
from ._queries import EventsFilter, ListFilter
from ._records import EVENT_STATES, QUEUE_EVENTS, STATES, JobKey, JobRecord, Progress


def utcnow() -> dt.datetime:
    """The current time, aware, UTC."""
    return dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class JobEvent:
    """One job event as the bus carries it; ``terminal`` marks the job's final event."""

    name: str
    job: JobKey
    payload: dict[str, Any]
    terminal: bool


@dataclasses.dataclass(frozen=True)
class Change:
    """One step of a lifecycle: a transition, a progress update, or the first announcement.

    ``state=None`` only updates ``progress``. ``announce`` emits the event of the job's
    current state without ``prev`` (the job was just added).
    """

    job: JobKey
    state: Optional[str] = None
    progress: Optional[Progress] = None
    failed_reason: Optional[str] = None
    result: Optional[dict[str, Any]] = None
    final: bool = True
    delay_ms: Optional[int] = None
    announce: bool = False


class Subscription:
    """One open event stream: its filter and the events queued for it."""

    def __init__(self, wanted: EventsFilter) -> None:
        self.filter = wanted
        self.queue: collections.deque[JobEvent] = collections.deque()

    def targets(self, key: JobKey) -> bool:
        """Whether ``key`` is the job this stream filters on (``id``, and ``type`` if given)."""
        wanted = self.filter
        return wanted.id == key[1] and (wanted.type is None or wanted.type == key[0])

    def carries(self, key: JobKey) -> bool:
        """Whether this stream carries the events of ``key``: it filters on that job, or on
        no job (the tenant's stream, of every type or of ``key``'s)."""
        wanted = self.filter
        if wanted.id is not None:
            return self.targets(key)
        return wanted.type is None or wanted.type == key[0]

    def closes_on(self, event: JobEvent) -> bool:
        """Whether this event ends the stream (the filtered job's final event)."""
        return event.terminal and self.targets(event.job)


class JobStore:
    """Jobs of one tenant, their transitions, and the subscriptions that see them."""

    def __init__(self, created_by: str) -> None:
        self.created_by = created_by
        self.base_url = ""
        self._cond = threading.Condition(threading.RLock())
        self._jobs: dict[JobKey, JobRecord] = {}
        self._subscriptions: list[Subscription] = []
        self._subscribed = 0
        self._seq = 0
        self._stopping = False
        self._on_subscribe: Optional[Callable[[Subscription], None]] = None

    # -- jobs ---------------------------------------------------------------------------------

    def add(self, make: Callable[[int], JobRecord]) -> JobRecord:
        """Store the record ``make(seq)`` builds; its key must be new."""
        with self._cond:
            self._seq += 1
            record = make(self._seq)
            if record.key in self._jobs:
                raise ValueError(f"a {record.type} job with id {record.id!r} already exists")
            self._jobs[record.key] = record
            return record

    def _job(self, key: JobKey) -> JobRecord:
        try:
            return self._jobs[key]
        except KeyError:
            raise KeyError(f"no {key[0]} job with id {key[1]!r} in the fake registry") from None

    def record(self, key: JobKey) -> JobRecord:
        """The live record of a job (``KeyError`` if unknown); callers must not mutate it."""
        with self._cond:
            return self._job(key)

    def finish(
        self, key: JobKey, *, failed: bool, reason: str, result: Optional[dict[str, Any]]
    ) -> None:
        """Put a job straight into its final state, without events (it ended before anyone
        listened)."""
        with self._cond:
            job = self._job(key)
            job.processed_at = job.created_at + dt.timedelta(seconds=1)
            job.finished_at = min(job.created_at + dt.timedelta(seconds=90), utcnow())
            job.attempts_made, job.final = 1, True
            if failed:
                job.state, job.progress, job.failed_reason = "failed", 40, reason
            else:
                job.state, job.progress = "completed", 100
                job.result = result if result is not None else docs.default_result(job)

    def state(self, key: JobKey) -> str:
        """The job's current state."""
        with self._cond:
            return self._job(key).state

    def children(self, key: JobKey) -> list[JobKey]:
        """Direct children of a job, oldest first."""
        with self._cond:
            found = [job for job in self._jobs.values() if job.parent == key]
            return [job.key for job in sorted(found, key=lambda job: job.seq)]

    def document(self, key: JobKey) -> Optional[dict[str, Any]]:
        """The ``JobResponse`` of a job, or ``None`` if unknown."""
        with self._cond:
            job = self._jobs.get(key)
            return None if job is None else docs.get_response(job, self.base_url)

    def faults_of(self, key: JobKey) -> tuple[Any, ...]:
        """The per-job fault rules (empty for an unknown job)."""
        with self._cond:
            job = self._jobs.get(key)
            return () if job is None else job.faults

    def find_by_id(self, job_id: str) -> Optional[JobKey]:
        """The key of the job with this id in any type (for events without ``type``)."""
        with self._cond:
            for key in self._jobs:
                if key[1] == job_id:
                    return key
            return None

    def listing(self, wanted: ListFilter) -> list[dict[str, Any]]:
        """The list items matching ``wanted``, newest first, at most ``wanted.limit``."""
        with self._cond:
            jobs = sorted(
                self._jobs.values(), key=lambda job: (job.created_at, job.seq), reverse=True
            )
            picked = [job for job in jobs if _matches(job, wanted)][: wanted.limit]
            return [docs.summary(job, self.base_url) for job in picked]

    # -- transitions ----------------------------------------------------------------------------

    def apply(self, changes: list[Change]) -> None:
        """Apply changes atomically, in order, and queue their events on every matching stream."""
        with self._cond:
            events = [event for change in changes for event in self._change(change)]
            for event in events:
                for sub in self._subscriptions:
                    if self._wants(sub, event):
                        sub.queue.append(event)
            if events:
                self._cond.notify_all()

    def _change(self, change: Change) -> list[JobEvent]:
        job = self._job(change.job)
        if change.progress is not None:
            job.progress = change.progress
        if change.announce:
            data: dict[str, Any] = (
                {} if job.state in ("waiting", "waiting-children") else {"prev": "added"}
            )
            return self._event(job, self._payload(job, data))
        if change.state is None:
            return []
        if change.state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, got {change.state!r}")
        now = utcnow()
        prev = job.state
        job.state = change.state
        job.final = False
        data = {"prev": prev} if prev in QUEUE_EVENTS else {}
        if change.state == "active":
            job.processed_at, job.delay_ms = now, None
        elif change.state == "completed":
            job.attempts_made += 1
            job.finished_at, job.final, job.failed_reason = now, True, None
            if change.progress is None:
                job.progress = 100
            job.result = change.result if change.result is not None else docs.default_result(job)
            data["returnvalue"] = job.result
        elif change.state == "failed":
            job.attempts_made += 1
            job.failed_reason = change.failed_reason or f"{job.type} job failed"
            job.final = change.final
            if change.final:
                job.finished_at = now
            data["failedReason"] = job.failed_reason
        elif change.state == "delayed":
            job.delay_ms = 1000 if change.delay_ms is None else change.delay_ms
            data = {"delay": docs.epoch_ms(now) + job.delay_ms}
        elif change.state == "waiting-children":
            data = {}
        if change.state not in EVENT_STATES:
            return []
        return self._event(job, self._payload(job, data, now))

    def _payload(
        self, job: JobRecord, data: dict[str, Any], when: Optional[dt.datetime] = None
    ) -> dict[str, Any]:
        return docs.event_envelope(job, self.base_url, data, when or utcnow())

    @staticmethod
    def _event(job: JobRecord, payload: dict[str, Any]) -> list[JobEvent]:
        if job.state not in EVENT_STATES:
            return []
        return [JobEvent(job.state, job.key, payload, job.final)]

    def _wants(self, sub: Subscription, event: JobEvent) -> bool:
        wanted = sub.filter
        if wanted.id is None:
            return wanted.type is None or wanted.type == event.job[0]
        if sub.targets(event.job):
            return True
        if not wanted.children:
            return False
        parent = self._jobs[event.job].parent
        seen = set()
        while parent is not None and parent not in seen and parent in self._jobs:
            if sub.targets(parent):
                return True
            seen.add(parent)
            parent = self._jobs[parent].parent
        return False

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(self, wanted: EventsFilter) -> tuple[Subscription, str, Optional[str]]:
        """Register a stream. Returns it, the ``ack`` text, and the ``close`` text when the
        filtered job has already finished (the stream then ends at once)."""
        sub = Subscription(wanted)
        with self._cond:
            if wanted.id is None:
                ack = f"Listening for events of {wanted.type or 'all'} jobs"
                self._subscriptions.append(sub)
                return sub, ack, None
            ack = f"Listening for events of {wanted.type or 'any'} job {wanted.id}"
            if wanted.children:
                ack += " and its children"
            key = (wanted.type, wanted.id) if wanted.type else self.find_by_id(wanted.id)
            job = self._jobs.get(key) if key else None
            if job is not None and job.final:
                return sub, ack, close_text(job.key, job.state)
            self._subscriptions.append(sub)
            return sub, ack, None

    def set_on_subscribe(self, callback: Callable[[Subscription], None]) -> None:
        """Call ``callback(sub)`` after each stream's ``ack`` went out."""
        self._on_subscribe = callback

    def subscribed(self, sub: Subscription) -> None:
        """Count a subscription whose ``ack`` was written; wakes :meth:`wait_for_subscriptions`."""
        with self._cond:
            self._subscribed += 1
            self._cond.notify_all()
        if self._on_subscribe is not None:
            self._on_subscribe(sub)

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a stream (idempotent)."""
        with self._cond:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)
                self._cond.notify_all()

    @property
    def subscription_count(self) -> int:
        """Streams that got their ``ack`` since the start."""
        with self._cond:
            return self._subscribed

    @property
    def active_subscriptions(self) -> int:
        """Streams open right now."""
        with self._cond:
            return len(self._subscriptions)

    def wait_for_subscriptions(self, count: int, timeout: float) -> None:
        """Block until ``count`` streams got their ``ack`` since the start."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._subscribed >= count or self._stopping, timeout
            ):
                raise TimeoutError(
                    f"expected {count} event stream subscriptions within {timeout} s, "
                    f"got {self._subscribed}"
                )

    def wait_for_open(self, count: int, timeout: float) -> None:
        """Block until exactly ``count`` streams are open."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._subscriptions) == count, timeout):
                raise TimeoutError(
                    f"expected {count} open event streams within {timeout} s, "
                    f"got {len(self._subscriptions)}"
                )

    def next_event(self, sub: Subscription, timeout: float) -> Optional[JobEvent]:
        """The next queued event of ``sub``, or ``None`` after ``timeout`` or on stop."""
        with self._cond:
            self._cond.wait_for(lambda: bool(sub.queue) or self._stopping, timeout)
            if self._stopping or not sub.queue:
                return None
            return sub.queue.popleft()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        with self._cond:
            return self._stopping

    def wait_stopped(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for :meth:`stop`; ``True`` once stopping."""
        with self._cond:
            return self._cond.wait_for(lambda: self._stopping, timeout)

    def stop(self) -> None:
        """Wake every waiting stream and waiter; they end."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()


def close_text(key: JobKey, state: str) -> str:
    """The ``close`` event text."""
    return f"Job {key[0]} {key[1]} {state}"


def _matches(job: JobRecord, wanted: ListFilter) -> bool:
    if wanted.types is not None and job.type not in wanted.types:
        return False
    if wanted.states is not None and job.state not in wanted.states:
        return False
    if wanted.function_types is not None:
        ftype = (job.function or {}).get("functionType", job.request.get("functionType"))
        if ftype not in wanted.function_types:
            return False
    if wanted.created_before is not None and not job.created_at < wanted.created_before:
        return False
    return wanted.created_after is None or job.created_at > wanted.created_after

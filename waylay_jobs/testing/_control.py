"""Adding and driving jobs: the job half of ``FakeRegistry`` (a mixin over its state)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

from . import _documents as docs
from ._faults import Faults, as_faults
from ._jobs import Change, JobStore, Subscription, utcnow
from ._records import FUNCTION_TYPES, JOB_TYPES, STATES, JobKey, JobRecord, Progress
from ._scripts import SCRIPTS, Scheduler, Step, plan_single, plan_tree

FaultsArg = Union[None, Faults, Sequence[Faults]]
StartArg = Union[bool, str]


@dataclasses.dataclass(frozen=True)
class _Spec:
    """What a new job record is made of (shared by a tree's jobs)."""

    function_type: str = "plugs"
    function: Optional[Mapping[str, Any]] = None
    operation: str = "create"
    request: Optional[Mapping[str, Any]] = None
    created_at: Optional[dt.datetime] = None


class JobControl:
    """Job methods of :class:`FakeRegistry`; the registry provides the attributes below."""

    _store: JobStore
    _scheduler: Scheduler
    _speed: float
    _lock: threading.Condition
    _pending: dict[JobKey, tuple[str, list[Step]]]
    _state: str

    def add_job(
        self,
        type: str = "build",
        script: str = "success",
        *,
        id: Optional[str] = None,
        function_type: str = "plugs",
        function: Optional[Mapping[str, Any]] = None,
        operation: str = "create",
        request: Optional[Mapping[str, Any]] = None,
        result: Optional[Mapping[str, Any]] = None,
        reason: Optional[str] = None,
        step: float = 1.0,
        retries: int = 1,
        start: StartArg = True,
        created_at: Optional[dt.datetime] = None,
        parent: Optional[JobKey] = None,
        faults: FaultsArg = None,
    ) -> str:
        """Add a job that plays ``script``; returns its id. See the package docstring."""
        if script not in SCRIPTS:
            raise ValueError(f"script must be one of {', '.join(SCRIPTS)}, got {script!r}")
        _check_start(start)
        finished = script in ("finished", "finished-failed")
        if finished and created_at is None:
            created_at = utcnow() - dt.timedelta(minutes=2)
        spec = _Spec(function_type, function, operation, request, created_at)
        record = self._new_record(type, id, spec, parent, as_faults(faults), "waiting")
        text = reason or _default_reason(record)
        final_result = None if result is None else dict(result)
        if finished:
            failed = script == "finished-failed"
            self._store.finish(record.key, failed=failed, reason=text, result=final_result)
        elif script != "manual":
            steps = plan_single(
                script, record.key, step=step, speed=self._speed, reason=text, retries=retries
            )
            if final_result is not None:
                last = Change(record.key, "completed", result=final_result)
                steps[-1] = Step(steps[-1].delay, (last,))
            self._begin(record.key, steps, start)
        return record.id

    def add_job_with_children(
        self,
        type: str = "verify",
        children: Sequence[str] = ("build", "deploy"),
        *,
        id: Optional[str] = None,
        function_type: str = "plugs",
        function: Optional[Mapping[str, Any]] = None,
        operation: str = "create",
        failing: Optional[str] = None,
        reason: Optional[str] = None,
        step: float = 1.0,
        start: StartArg = True,
        faults: FaultsArg = None,
    ) -> str:
        """Add a parent whose ``children`` run first (in the given order, each child the
        parent of the one before it); returns the parent id. ``failing`` names the job type
        that fails (its ancestors fail with it)."""
        _check_start(start)
        types = [*children, type]
        if failing is not None and failing not in types:
            raise ValueError(f"failing must be one of {types}, got {failing!r}")
        spec = _Spec(function_type, function, operation)
        root = self._new_record(type, id, spec, None, as_faults(faults), "waiting-children")
        chain: list[JobKey] = []
        parent = root.key
        for index, child_type in enumerate(reversed(children)):
            state = "waiting" if index == len(children) - 1 else "waiting-children"
            child = self._new_record(child_type, None, spec, parent, (), state)
            chain.insert(0, child.key)
            parent = child.key
        failing_key = next((key for key in [*chain, root.key] if key[0] == failing), None)
        text = reason or (
            "" if failing_key is None else _default_reason(self._store.record(failing_key))
        )
        plan = plan_tree(root.key, chain, step=step, failing=failing_key, reason=text)
        self._begin(root.key, plan, start)
        return root.id

    def start_job(self, type: str, id: str) -> None:
        """Start the script of a job added with ``start=False`` (or ``"subscribe"``)."""
        if not self._start_pending((type, id)):
            raise ValueError(f"the {type} job {id!r} has no script waiting to start")

    def transition(
        self,
        job_type: str,
        job_id: str,
        state: str,
        *,
        progress: Optional[Progress] = None,
        failed_reason: Optional[str] = None,
        result: Optional[Mapping[str, Any]] = None,
        final: bool = True,
        delay_ms: Optional[int] = None,
    ) -> None:
        """Move a job to ``state`` now and queue its event on every matching stream before
        returning. ``final=False`` marks a ``failed`` that will be retried (no ``close``)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
        key = (job_type, job_id)
        self._store.state(key)  # raises KeyError for an unknown job, before any change
        result_doc = None if result is None else dict(result)
        change = Change(key, state, progress, failed_reason, result_doc, final, delay_ms)
        self._store.apply([change])

    def set_progress(self, job_type: str, job_id: str, progress: Progress) -> None:
        """Update ``job.job.progress`` (no event: the spec has no progress event)."""
        self._store.state((job_type, job_id))
        self._store.apply([Change((job_type, job_id), progress=progress)])

    def get_job_state(self, job_type: str, job_id: str) -> str:
        """The job's current state (``KeyError`` for an unknown job)."""
        return self._store.state((job_type, job_id))

    def get_job(self, job_type: str, job_id: str) -> dict[str, Any]:
        """The job's ``JobResponse`` document, as ``GET`` would return it."""
        document = self._store.document((job_type, job_id))
        if document is None:
            raise KeyError(f"no {job_type} job with id {job_id!r} in the fake registry")
        return document

    def children(self, job_type: str, job_id: str) -> list[JobKey]:
        """The direct children ``(type, id)`` of a job."""
        return self._store.children((job_type, job_id))

    # -- internals ----------------------------------------------------------------------------

    def _new_record(
        self,
        job_type: str,
        job_id: Optional[str],
        spec: _Spec,
        parent: Optional[JobKey],
        faults: tuple[Faults, ...],
        state: str,
    ) -> JobRecord:
        if job_type not in JOB_TYPES:
            raise ValueError(f"type must be one of {', '.join(JOB_TYPES)}, got {job_type!r}")
        if spec.function_type not in FUNCTION_TYPES:
            allowed = ", ".join(FUNCTION_TYPES)
            raise ValueError(f"function_type must be one of {allowed}, got {spec.function_type!r}")
        if spec.created_at is not None and spec.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        fallback = docs.default_function(spec.function_type)
        ref = dict(spec.function) if spec.function is not None else None
        if ref is None and job_type != "batch":
            ref = fallback
        args = dict(spec.request) if spec.request is not None else None
        args = args if args is not None else docs.default_request(job_type, ref or fallback)
        created = spec.created_at or utcnow()
        store = self._store
        return store.add(
            lambda seq: JobRecord(
                type=job_type, id=job_id or docs.new_job_id(), seq=seq,
                operation=spec.operation, created_by=store.created_by, created_at=created,
                state=state, request=args, function=ref, parent=parent, faults=faults,
            )
        )  # fmt: skip

    def _begin(self, key: JobKey, steps: list[Step], start: StartArg) -> None:
        mode = "on-start" if start is True else ("subscribe" if start == "subscribe" else "manual")
        with self._lock:
            self._pending[key] = (mode, steps)
            running = self._state == "running"
        if mode == "on-start" and running:
            self._start_pending(key)

    def _start_pending(self, key: JobKey) -> bool:
        with self._lock:
            pending = self._pending.pop(key, None)
        if pending is None:
            return False
        self._scheduler.schedule(pending[1])
        return True

    def _start_all(self, mode: str) -> None:
        with self._lock:
            keys = [key for key, (how, _) in self._pending.items() if how == mode]
        for key in keys:
            self._start_pending(key)

    def _on_subscribe(self, sub: Subscription) -> None:
        with self._lock:
            keys = [
                key for key, (how, _) in self._pending.items()
                if how == "subscribe" and sub.carries(key)
            ]  # fmt: skip
        for key in keys:
            self._start_pending(key)


def _check_start(start: StartArg) -> None:
    if start not in (True, False, "subscribe"):
        raise ValueError(f"start must be True, False or 'subscribe', got {start!r}")


def _default_reason(record: JobRecord) -> str:
    endpoint = record.request.get("endpoint") or (record.function or {}).get("name", record.type)
    if record.type == "build":
        return f"Image build for {endpoint} failed: npm ERR! code ELIFECYCLE (exit code 1)"
    return f"Function {endpoint} did not become ready within 300s (ImagePullBackOff)"

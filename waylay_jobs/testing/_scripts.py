"""Scripted lifecycles (as lists of timed steps) and the scheduler thread that plays them.

A step's ``delay`` is in *nominal* seconds after the previous step; the scheduler multiplies
it by the registry's ``speed`` (``speed=0.01`` plays a 5-step, 1 s/step script in 50 ms).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import threading
import time
from collections.abc import Sequence
from typing import Callable, Optional

from ._jobs import Change
from ._records import JobKey

#: Script names accepted by ``FakeRegistry.add_job``.
SCRIPTS = ("success", "fail", "retry", "finished", "finished-failed", "manual")


@dataclasses.dataclass(frozen=True)
class Step:
    """Changes applied together, ``delay`` nominal seconds after the previous step."""

    delay: float
    changes: tuple[Change, ...]


def _run(key: JobKey, step: float, progress: Sequence[int]) -> list[Step]:
    """``active`` then one progress update per value, ``step`` apart."""
    steps = [Step(step, (Change(key, "active"),))]
    steps += [Step(step, (Change(key, progress=value),)) for value in progress]
    return steps


def plan_single(
    script: str, key: JobKey, *, step: float, speed: float, reason: str, retries: int
) -> list[Step]:
    """The steps of a one-job script (``success``, ``fail`` or ``retry``)."""
    steps = [Step(0.0, (Change(key, announce=True),))]
    if script == "success":
        steps += _run(key, step, (25, 50, 75))
        steps.append(Step(step, (Change(key, "completed"),)))
    elif script == "fail":
        steps += _run(key, step, (40,))
        steps.append(Step(step, (Change(key, "failed", failed_reason=reason),)))
    elif script == "retry":
        delay_ms = int(step * speed * 1000)
        for _ in range(retries):
            steps += _run(key, step, (40,))
            failed = Change(key, "failed", failed_reason=reason, final=False)
            steps.append(Step(step, (failed, Change(key, "delayed", delay_ms=delay_ms))))
            steps.append(Step(step, (Change(key, "waiting"),)))
        steps += _run(key, step, (60,))
        steps.append(Step(step, (Change(key, "completed"),)))
    else:
        raise ValueError(f"script {script!r} has no timed steps")
    return steps


def plan_tree(
    root: JobKey, chain: Sequence[JobKey], *, step: float, failing: Optional[JobKey], reason: str
) -> list[Step]:
    """A parent whose children run first, innermost first.

    ``chain`` lists the children in run order; each child's parent is the next one in
    the chain and the last child's parent is ``root``. A parent moves from
    ``waiting-children`` to ``waiting`` in the same step as its child completes. When
    ``failing`` fails, every job above it fails in that same step.
    """
    order = [*list(chain), root]
    steps = [Step(0.0, tuple(Change(key, announce=True) for key in reversed(order)))]
    for index, key in enumerate(order):
        steps += _run(key, step, (50,))
        above = order[index + 1 :]
        if key == failing:
            cascade = [Change(key, "failed", failed_reason=reason)]
            cascade += [
                Change(
                    parent, "failed", failed_reason=f"child {key[0]} job {key[1]} failed: {reason}"
                )
                for parent in above
            ]
            steps.append(Step(step, tuple(cascade)))
            return steps
        done = [Change(key, "completed")]
        if above:
            done.append(Change(above[0], "waiting"))
        steps.append(Step(step, tuple(done)))
    return steps


class Scheduler:
    """One daemon thread that applies scheduled steps at their (scaled) time."""

    def __init__(self, apply: Callable[[list[Change]], None], speed: float) -> None:
        self._apply = apply
        self._speed = speed
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, tuple[Change, ...]]] = []
        self._order = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._loop, name="fake-registry-scheduler", daemon=True
        )

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def schedule(self, steps: Sequence[Step]) -> None:
        """Queue a script; its first step is due now (plus its own delay)."""
        due = time.monotonic()
        with self._cond:
            for step in steps:
                due += step.delay * self._speed
                heapq.heappush(self._heap, (due, next(self._order), step.changes))
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, changes = heapq.heappop(self._heap)
            self._apply(list(changes))

    def stop(self) -> None:
        """Stop and join the thread; steps not yet due are dropped."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

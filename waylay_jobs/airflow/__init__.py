"""Apache Airflow integration: a deferrable job sensor and its trigger, a hook, a task helper.

Needs Apache Airflow 2.11 or 3.x (the ``airflow`` extra adds ``httpx`` for the trigger); the
rest of ``waylay_jobs`` never imports Airflow. The names that moved between Airflow 2 and 3 are
imported in :mod:`waylay_jobs.airflow._sdk`. Ways to wait for a Waylay job in a DAG:

* :class:`WaylayJobSensor` with ``deferrable=True``: checks the job once, then hands the wait
  to :class:`WaylayJobTrigger` in the triggerer, which follows the job's event stream: no
  worker slot held, the task resumes as soon as the job ends. The choice for long waits and
  for many waits at once.
* :class:`WaylayJobSensor` in ``mode="reschedule"``: one ``get`` per poke, nothing held
  between pokes, the end noticed up to ``poke_interval`` late.
* :func:`wait_for_job` in a ``@task``: follows the job's event stream (prompt, one request
  for the whole wait), logs its progress on the ``waylay_jobs`` logger, fails the task without
  retry when the job fails, and stops at once on ``execution_timeout`` or a task kill; it
  holds a worker slot for the whole wait.
* ``client.wait_for`` in a ``@task``, with a client from :class:`WaylayJobsHook` or
  :func:`client_from_connection`.

The sensor and the hook push :func:`job_summary` documents to XCom. The connection type is
``waylay`` (see :mod:`waylay_jobs.airflow.hooks` for its fields); the package registers
itself as an Airflow provider (:mod:`waylay_jobs.airflow.provider`).

The names below are loaded on first use, so that Airflow can read the provider information
without importing the task SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .hooks import WaylayJobsHook, client_from_connection, credentials_from_connection
    from .sensors import WaylayJobSensor
    from .tasks import job_summary, wait_for_job
    from .triggers import WaylayJobTrigger

__all__ = [
    "WaylayJobSensor",
    "WaylayJobTrigger",
    "WaylayJobsHook",
    "client_from_connection",
    "credentials_from_connection",
    "job_summary",
    "wait_for_job",
]

_MODULES = {
    "WaylayJobSensor": "sensors",
    "WaylayJobTrigger": "triggers",
    "WaylayJobsHook": "hooks",
    "client_from_connection": "hooks",
    "credentials_from_connection": "hooks",
    "job_summary": "tasks",
    "wait_for_job": "tasks",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Airflow tests: a throw-away ``AIRFLOW_HOME`` on SQLite, migrated once per session.

Airflow reads its configuration when it is first imported, so the environment is set here,
before any test module imports Airflow. ``dag.test()`` runs only DAGs that a DAG bundle
holds, so the test DAGs live in ``dag_files/`` (the dags folder); the tests import that
module too, and ``dag.test()`` runs the tasks of the imported copy, in this process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import pytest

from waylay_jobs.testing import FakeRegistry, Faults

HOME = Path(tempfile.mkdtemp(prefix="waylay-airflow-"))
DAG_FILES = Path(__file__).resolve().parent / "dag_files"
os.environ.update(
    {
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILES),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
    }
)
for _name in [name for name in os.environ if name.startswith("WAYLAY_")]:
    del os.environ[_name]
sys.path.insert(0, str(DAG_FILES))

#: The connection id the test DAGs use.
CONN_ID = "waylay_fake"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the throw-away home, however the session went (``--collect-only`` too)."""
    shutil.rmtree(HOME, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def airflow_db() -> None:
    """``airflow db migrate``, once per session (a few seconds)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True
    )


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRegistry]:
    """A fast fake registry, reachable through the connection ``waylay_fake`` (token
    ``from-connection`` in the extra) and through the ``WAYLAY_*`` variables (token
    ``from-environment``); it accepts any token."""
    with serving(monkeypatch) as reg:
        yield reg


@contextmanager
def serving(
    monkeypatch: pytest.MonkeyPatch, faults: Optional[Faults] = None
) -> Iterator[FakeRegistry]:
    """The ``registry`` fixture's registry, with ``faults`` for every request it serves."""
    with FakeRegistry(speed=0.01, keepalive_interval=1.0, faults=faults) as reg:
        conn = {"conn_type": "generic", "host": reg.url, "extra": {"token": "from-connection"}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        monkeypatch.setenv("WAYLAY_GATEWAY_URL", reg.url)
        monkeypatch.setenv("WAYLAY_TOKEN", "from-environment")
        yield reg
        assert reg.errors == []


def run_dag(dag: Any, **conf: Any) -> dict[str, Any]:
    """Run one DAG run with ``dag.test()``; the task instances by task id.

    On Airflow 2.11 ``AirflowTaskTimeout`` and ``AirflowTaskTerminated`` are
    ``BaseException``s: the task instance is marked failed, then the exception leaves
    ``dag.test()``. The run is then read back from the database, as Airflow 3 returns it.
    """
    from airflow_names import AIRFLOW_V_3_0_PLUS

    try:
        run = dag.test(run_conf=conf)
    except BaseException as exc:
        escapes = ("AirflowTaskTimeout", "AirflowTaskTerminated")
        if AIRFLOW_V_3_0_PLUS or type(exc).__name__ not in escapes:
            raise
        from airflow.models.dagrun import DagRun

        run = max(DagRun.find(dag_id=dag.dag_id), key=lambda r: r.id)
    return {ti.task_id: ti for ti in run.get_task_instances()}


def gateway_connections(port: int) -> list[Any]:
    """This process's TCP connections to ``port`` (client side: the server is in-process)."""
    import psutil

    return [c for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == port]


class Seen(logging.Handler):
    """Sets ``event`` once a ``waylay_jobs`` record containing ``text`` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@contextmanager
def after_first_check(job_id: str, action: Any) -> Iterator[None]:
    """Run ``action()`` in a thread once the waiter has logged what its first ``get`` found:
    from then on it reads the event stream, so whatever ``action`` does arrives as events."""
    seen = Seen(f"build job {job_id} is waiting")
    logger = logging.getLogger("waylay_jobs")
    logger.addHandler(seen)

    def run() -> None:
        if seen.event.wait(60):
            action()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        seen.event.set()  # a waiter that never got that far: do not hang here
        thread.join()
        logger.removeHandler(seen)

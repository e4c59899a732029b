"""A real Airflow deployment: deferred ``WaylayJobSensor``s outlive a ``kill -9`` of the triggerer.

``dag.test()`` runs a trigger in line, in the test's own process; only a real triggerer proves
that the trigger's kwargs round-trip through the metadata database and that another triggerer
takes the triggers over after a crash. This test starts the components as processes (each in its
own process group, by PID, with its log kept) in a throw-away ``AIRFLOW_HOME`` on SQLite:

* Airflow 3.x: ``api-server`` (the tasks reach the execution API through it), ``scheduler``
  with the LocalExecutor, ``dag-processor``, ``triggerer``;
* Airflow 2.11: ``scheduler`` with the SequentialExecutor (the only one SQLite allows; the
  scheduler parses the DAGs itself) and ``triggerer``. No webserver: nothing here needs it, and
  on 2 cores its workers would only slow the others down.

The fake registry runs in this process (a thread on 127.0.0.1). ``SENSORS`` deferrable sensors
wait for manual jobs; one job fails before the kill, the triggerer is killed with SIGKILL while
the others are deferred, one job fails and one completes while no triggerer runs, a new triggerer
takes over (Airflow's heartbeat threshold lowered to a few seconds), and the rest complete.
Every task must end in the right state, and the event-stream subscriptions the registry served
are counted: the triggers of one triggerer share one stream, so at most 2 while the first
triggerer runs and at most 4 in all, and none is left open once every task has ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from airflow_names import AIRFLOW_V_3_0_PLUS, AIRFLOW_VERSION

from waylay_jobs.testing import FakeRegistry

DAG_ID = "waylay_deployment"
#: Deferred sensors: 40 on 3.x. On 2.11 the SequentialExecutor (the one SQLite allows there)
#: runs the tasks one at a time, about 2.7 s each, twice per sensor: 10 keep the run under two
#: minutes (40 took 3 min 55 s, 2 streams in all as on 3.x), and CI under its 15 minutes.
SENSORS = 40 if AIRFLOW_V_3_0_PLUS else 10
#: Event-stream subscriptions each triggerer may open for all its triggers (one shared stream,
#: and one more should the triggers arrive after the first batch had all left).
MAX_STREAMS_PER_TRIGGERER = 2
#: Seconds for the deployment to come up, and for each step after it.
STARTUP_DEADLINE = 180.0
STEP_DEADLINE = 180.0
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DAG_FILE = """
from datetime import datetime

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow.models.dag import DAG

from waylay_jobs.airflow import WaylayJobSensor

with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    for i in range({sensors}):
        WaylayJobSensor(
            task_id=f"job_{{i}}",
            job_type="build",
            job_id="{{{{ dag_run.conf['jobs'][" + str(i) + "] }}}}",
            waylay_conn_id="waylay_fake",
            deferrable=True,
            timeout=900,
            retries=0,
        )
"""


class Deployment:
    """The Airflow processes of one test, their logs, and reads of the metadata database."""

    def __init__(self, home: Path, registry_url: str) -> None:
        self.home = home
        self.db = home / "airflow.db"
        self.logs = home / "process-logs"
        self.logs.mkdir(parents=True)
        (home / "dags").mkdir()
        (home / "dags" / "waylay_deployment.py").write_text(
            textwrap.dedent(DAG_FILE.format(dag_id=DAG_ID, sensors=SENSORS))
        )
        self.api_port = _free_port()
        conn = {"conn_type": "waylay", "host": registry_url, "extra": {"token": "deployment"}}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAYLAY_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db}",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
                # A new triggerer adopts the triggers of one whose heartbeat is older than the
                # threshold (30 s by default): a heartbeat a second, a threshold of 5 s.
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                f"AIRFLOW_CONN_{'waylay_fake'.upper()}": json.dumps(conn),
                "PYTHONUNBUFFERED": "1",
                # Airflow 2's executors run `airflow tasks run` from the PATH.
                "PATH": os.pathsep.join([str(Path(AIRFLOW).parent), os.environ.get("PATH", "")]),
            }
        )
        if AIRFLOW_V_3_0_PLUS:
            env.update(
                {
                    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
                        f"http://127.0.0.1:{self.api_port}/execution/"
                    ),
                    "AIRFLOW__API_AUTH__JWT_SECRET": "waylay-deployment-test-secret",
                    "AIRFLOW__API__SECRET_KEY": "waylay-deployment-test-secret",
                }
            )
        else:
            env["AIRFLOW__CORE__EXECUTOR"] = "SequentialExecutor"
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- processes -----------------------------------------------------------------------------

    def run(self, *args: str) -> str:
        """Run an ``airflow`` command to its end; its output."""
        proc = subprocess.run(  # noqa: S603 - this environment's airflow, fixed arguments
            [AIRFLOW, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=STEP_DEADLINE,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``airflow *args`` in a process group of its own, its output in a log file."""
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(  # noqa: S603 - this environment's airflow, fixed arguments
            [AIRFLOW, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its children (task runners, log servers) share its group
        )
        log.close()
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: signal.Signals) -> None:
        """Signal the process group of ``name`` (the process and the children it started)."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def stop_all(self) -> None:
        """SIGTERM to every group, then SIGKILL to what is left after a grace period."""
        for name in self.procs:
            self.kill(name, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for name, proc in self.procs.items():
            self.kill(name, signal.SIGKILL)  # the group: children that outlived their parent too
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def log_tails(self, lines: int = 60) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"----- {path.name} (last {len(tail)} lines) -----\n" + "\n".join(tail))
        return "\n".join(parts)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if name != "triggerer-1" and proc.poll() is not None:
                raise AssertionError(f"airflow {name} exited with {proc.returncode}")

    # -- the metadata database -----------------------------------------------------------------

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # a table not created yet, or the database busy
            return []
        finally:
            conn.close()

    def task_states(self) -> dict[str, Optional[str]]:
        rows = self.query("SELECT task_id, state FROM task_instance WHERE dag_id = ?", DAG_ID)
        return dict(rows)

    def poll(self, what: str, done: Callable[[], bool], deadline: float = STEP_DEADLINE) -> None:
        """Wait until ``done()`` (checked every 0.2 s, the processes watched), or fail."""
        end = time.monotonic() + deadline
        while not done():
            self.check_alive()
            if time.monotonic() > end:
                raise AssertionError(
                    f"not within {deadline:.0f} s: {what}; tasks: {self.task_states()}"
                )
            time.sleep(0.2)  # polling a condition with a deadline, not a guess at a duration


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="waylay-deployment-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(900)
def test_deferred_sensors_outlive_a_killed_triggerer(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    with FakeRegistry(speed=0.01, keepalive_interval=1.0) as registry:
        jobs = [registry.add_job("build", "manual") for _ in range(SENSORS)]
        tasks = [f"job_{i}" for i in range(SENSORS)]
        deployment = Deployment(home, registry.url)
        counts: dict[str, int] = {}
        try:
            deployment.run("db", "migrate")
            if AIRFLOW_V_3_0_PLUS:
                deployment.start(
                    "api-server",
                    "api-server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(deployment.api_port),
                )
                deployment.start("dag-processor", "dag-processor")
            deployment.start("scheduler", "scheduler")
            deployment.start("triggerer-1", "triggerer")
            deployment.poll(
                "the DAG parsed",
                lambda: bool(
                    deployment.query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG_ID)
                ),
                STARTUP_DEADLINE,
            )
            if AIRFLOW_V_3_0_PLUS:
                deployment.poll("the api-server up", lambda: _api_up(deployment.api_port))
            deployment.run("dags", "trigger", DAG_ID, "--conf", json.dumps({"jobs": jobs}))
            up = time.monotonic()

            # Every sensor checked its job once and deferred; the triggers share one stream.
            deployment.poll(
                "every sensor deferred",
                lambda: list(deployment.task_states().values()).count("deferred") == SENSORS,
            )
            registry.wait_for_subscribers(1, timeout=STEP_DEADLINE)
            deferred = time.monotonic()

            # job 0 fails while the first triggerer runs: its task resumes and fails.
            registry.transition("build", jobs[0], "failed", failed_reason="compile error")
            deployment.poll(
                "job_0 resumed", lambda: deployment.task_states()["job_0"] != "deferred"
            )
            counts["subscriptions before the kill"] = registry.subscriptions
            counts["open streams before the kill"] = registry.open_streams

            deployment.kill("triggerer-1", signal.SIGKILL)
            deployment.procs["triggerer-1"].wait(timeout=30)
            killed = time.monotonic()
            # While no triggerer runs, job 1 fails and job 2 completes: the new triggerer's
            # triggers must find that with their first check.
            registry.transition("build", jobs[1], "failed", failed_reason="out of memory")
            registry.transition("build", jobs[2], "completed")

            deployment.start("triggerer-2", "triggerer")
            taken_over = counts["subscriptions before the kill"] + 1
            registry.wait_for_subscribers(taken_over, timeout=STEP_DEADLINE)
            adopted = time.monotonic()
            for job_id in jobs[3:]:
                registry.transition("build", job_id, "completed")

            final = {"success", "failed", "upstream_failed", "skipped"}
            deployment.poll(
                "every task ended",
                lambda: (
                    set(deployment.task_states().values()) <= final
                    and len(deployment.task_states()) == SENSORS
                ),
            )
            states = deployment.task_states()
            counts["subscriptions in all"] = registry.subscriptions
            # The last trigger to leave closes the shared stream.
            registry.wait_for_open_streams(0, timeout=30)

            expected = {t: "failed" if t in ("job_0", "job_1") else "success" for t in tasks}
            assert states == expected
            assert registry.errors == []
            per_triggerer = MAX_STREAMS_PER_TRIGGERER
            assert counts["subscriptions before the kill"] <= per_triggerer, counts
            assert counts["subscriptions in all"] <= 2 * per_triggerer, counts
            with capsys.disabled():
                print(
                    f"\nAirflow {AIRFLOW_VERSION} deployment, {SENSORS} deferred sensors: "
                    f"event-stream subscriptions {counts} (bounds {MAX_STREAMS_PER_TRIGGERER} per "
                    f"triggerer, {2 * MAX_STREAMS_PER_TRIGGERER} in all); up and "
                    f"triggered {up - started:.1f} s, all deferred +{deferred - up:.1f} s, new "
                    f"triggerer subscribed {adopted - killed:.1f} s after the kill, all ended "
                    f"{time.monotonic() - adopted:.1f} s later; {time.monotonic() - started:.1f} s"
                )
        except BaseException:
            with capsys.disabled():
                print(
                    f"\nevent-stream counts so far: {counts}, subscriptions "
                    f"{registry.subscriptions}, open {registry.open_streams}"
                )
                print(deployment.log_tails())
            raise
        finally:
            deployment.stop_all()


def _api_up(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5
        ) as response:
            return bool(response.status == 200)
    except OSError:
        return False

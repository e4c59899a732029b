"""Wait for a Waylay job in Airflow: a deferrable sensor hands the wait to the triggerer, whose
trigger follows the job's events; the next task gets the job's summary from XCom.

python examples/airflow_dag.py [TYPE JOB_ID]: without WAYLAY_GATEWAY_URL (and WAYLAY_TOKEN or
WAYLAY_API_KEY/_SECRET) set, a local fake registry plays a build job.
"""

import os
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

if __name__ == "__main__":  # dag.test() needs a migrated database, and this file in the dags folder
    home = tempfile.TemporaryDirectory()  # removed at exit
    os.environ.update(AIRFLOW_HOME=home.name, AIRFLOW__CORE__LOAD_EXAMPLES="False")
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent)

try:
    from airflow.sdk import dag, task  # Airflow 3
except ModuleNotFoundError as missing:
    if missing.name not in ("airflow", "airflow.sdk"):
        raise  # a broken installation: its own traceback says more
    try:
        from airflow.decorators import dag, task  # Airflow 2.11
    except ModuleNotFoundError:
        sys.exit("examples/airflow_dag.py needs Apache Airflow 2.11 or 3.x")

from waylay_jobs.airflow import WaylayJobSensor


@dag(schedule=None, start_date=datetime(2024, 1, 1), params={"job_type": "build", "job_id": ""})
def waylay_job() -> None:
    done = WaylayJobSensor(
        task_id="done",
        job_type="{{ params.job_type }}",
        job_id="{{ params.job_id }}",
        waylay_conn_id=None,  # None: the WAYLAY_* environment variables
        deferrable=True,  # no worker slot while the job runs; resumes the moment it ends
        timeout=timedelta(minutes=30).total_seconds(),
    )

    @task
    def report(summary: dict) -> None:
        print(f"{summary['type']} job {summary['id']} is {summary['state']}: {summary['result']}")

    report(done.output)


example = waylay_job()

if __name__ == "__main__":
    from waylay_jobs.testing import FakeRegistry

    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL
    )
    if os.environ.get("WAYLAY_GATEWAY_URL"):
        run = example.test(run_conf=dict(zip(("job_type", "job_id"), sys.argv[1:3])))
    else:
        with FakeRegistry(speed=0.3) as registry:
            os.environ.update(WAYLAY_GATEWAY_URL=registry.url, WAYLAY_TOKEN="demo-token")
            job_id = registry.add_job("build", "success", start="subscribe")
            run = example.test(run_conf={"job_type": "build", "job_id": job_id})
    sys.exit(0 if run.state == "success" else f"the DAG run ended {run.state}")

"""Every script in examples/ runs as a user would run it, against its embedded fake registry."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Scripts with their own test environment (the Airflow DAG needs Airflow).
NOT_HERE = {"airflow_dag.py"}
JOB_ID = r"[0-9a-f-]{36}\$\w{20}"

EXPECTED = {
    "list_and_get.py": [
        rf"^deploy +failed +{JOB_ID}$",
        rf"^build +completed +{JOB_ID}$",
        r"^failed because: .*ImagePullBackOff",
    ],
    "follow_events.py": [
        r"^ack +Listening for events of verify job",
        rf"^completed +build job {JOB_ID}$",
        rf"^completed +verify job {JOB_ID}$",
        r"\Aack(.|\n)*^close +Job verify \S+ completed\n\Z",
    ],
    "wait_for_job.py": [rf"^build job {JOB_ID} completed: BuildResult\(digest='sha256:"],
    "wait_for_many.py": [
        rf"^(build|deploy|verify) job {JOB_ID} completed$",
        rf"^(build|deploy|verify) job {JOB_ID} failed \(.+\)$",
        r"^3 of 20 jobs failed; the first: ",
        r"\A((build|deploy|verify) job \S+ (completed|failed.*)\n){20}3 of 20",
    ],
}


def scripts() -> list[str]:
    return sorted(path.name for path in EXAMPLES.glob("*.py") if path.name not in NOT_HERE)


def test_every_example_has_expectations() -> None:
    assert scripts() == sorted(EXPECTED)


@pytest.mark.parametrize("name", scripts())
def test_example_runs(name: str, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WAYLAY_")}
    env["HOME"] = str(tmp_path)  # no profile: nothing outside this test is used
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for pattern in EXPECTED[name]:
        assert re.search(pattern, result.stdout, re.MULTILINE), (pattern, result.stdout)

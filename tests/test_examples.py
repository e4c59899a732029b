"""Every script in examples/ runs as a user would run it, against its embedded fake registry."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Scripts with their own test environment: the Airflow DAG runs in .ci/airflow.sh (Airflow's).
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


@pytest.mark.skipif(os.name != "posix", reason="Ctrl-C as SIGINT")
def test_examples_and_command_use_a_fake_registry_from_another_shell(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WAYLAY_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    command = [sys.executable, "-m", "waylay_jobs.testing", "--speed", "0.01", "--every", "600"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as server:
        assert server.stdout is not None
        exports: dict[str, str] = {}
        new_jobs: list[str] = []
        while not new_jobs:  # the export lines come first, then the jobs it added
            line = server.stdout.readline()
            assert line, f"expected the export lines and a new job, got the end after {exports}"
            if line.startswith("export "):
                name, value = line[len("export ") :].rstrip("\n").split("=", 1)
                exports[name] = value
            elif line.startswith("  new: "):
                new_jobs = line.split()
        shell = {**env, **exports}  # what the user has after pasting the lines
        try:
            listed = run_example("list_and_get.py", shell, tmp_path)
            followed = run_example("follow_events.py", shell, tmp_path, "verify", new_jobs[2])
            waited = run_example("wait_for_job.py", shell, tmp_path, new_jobs[6])
            command_line = subprocess.run(
                [sys.executable, "-m", "waylay_jobs", "list", "--type", "verify"],
                capture_output=True,
                text=True,
                env=shell,
                timeout=60,
            )
        finally:
            server.send_signal(signal.SIGINT)
            rest = server.communicate(timeout=30)[0]
    assert set(exports) == {"WAYLAY_GATEWAY_URL", "WAYLAY_TOKEN"}
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", exports["WAYLAY_GATEWAY_URL"])
    # The verify job exists only on that registry: the scripts did not start one of their own.
    assert re.search(rf"^verify +\w+ +{re.escape(new_jobs[2])}$", listed.stdout, re.M)
    assert re.search(
        rf"^close +Job verify {re.escape(new_jobs[2])} completed$", followed.stdout, re.M
    )
    assert waited.stdout.startswith(f"build job {new_jobs[6]} completed")
    assert command_line.returncode == 0, command_line.stderr
    assert new_jobs[2] in command_line.stdout
    assert (server.returncode, rest.splitlines()[-1]) == (0, "stopping")


def run_example(
    name: str, env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )
    assert result.returncode == 0, (name, result.stderr)
    return result


def test_the_airflow_example_without_airflow_names_the_versions_it_needs(tmp_path: Path) -> None:
    # Whether or not Airflow is installed here, the script sees it missing.
    without_airflow = (
        "import runpy, sys; sys.modules['airflow'] = None; del sys.argv[0]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", without_airflow, str(EXAMPLES / "airflow_dag.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "examples/airflow_dag.py needs Apache Airflow 2.11 or 3.x\n"
    )

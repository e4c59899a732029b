"""``waylay-jobs wait`` with several jobs, as a user runs it: a subprocess, one event stream."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from waylay_jobs import AckEvent, JobEvent, JobEventData, JobResponse, JobsClient, JobsFailed
from waylay_jobs._cli_wait import CliLogHandler, ManyLiveLine, run_wait_many, wait_designations
from waylay_jobs.testing import FakeRegistry

POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX terminals")
COMMAND = [sys.executable, "-m", "waylay_jobs"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("WAYLAY_")}
    clean.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"), TERM="dumb")
    return clean


@pytest.fixture
def registry(fake_registry: FakeRegistry) -> Iterator[FakeRegistry]:
    yield fake_registry
    assert fake_registry.errors == []


def run(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, env=dict(env), timeout=30
    )


def on(registry: FakeRegistry, *args: str) -> list[str]:
    return ["--gateway", registry.url, "--no-auth", *args]


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("waylay-jobs: error:")]


def events_requests(registry: FakeRegistry) -> int:
    return sum(1 for r in registry.requests if r.path.endswith("/jobs/events"))


def test_type_id_pairs_ids_and_hrefs_mix_on_the_command_line() -> None:
    href = "http://x/registry/v2/jobs/scale/s1"
    assert wait_designations(["build", "b1", "abc", href, "deploy", "d1", "verify"]) == [
        ("build", "b1"),
        "abc",
        href,
        ("deploy", "d1"),
        "verify",  # a type word with no id after it is taken as an id
    ]
    # Two words that read as TYPE ID are one job, as they always were, known type or not.
    assert wait_designations(["newtype", "x1"]) == [("newtype", "x1")]
    assert wait_designations(["abc-1", "x1"]) == ["abc-1", "x1"]


def test_waits_for_every_job_over_one_stream_and_prints_them_in_order(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    a = registry.add_job("build", "success")
    b = registry.add_job("deploy", "success")
    c = registry.add_job("scale", "finished")
    href = f"{registry.url}/registry/v2/jobs/scale/{c}"
    result = run(*on(registry, "wait", "build", a, b, href), env=env)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows == [
        ["TYPE", "ID", "STATE", "REASON"],
        ["build", a, "completed"],
        ["deploy", b, "completed"],
        ["scale", c, "completed"],
    ]
    assert f"build job {a} is completed" in result.stderr  # one log line per state change
    assert events_requests(registry) == 1


def test_any_failure_exits_1_after_printing_every_job(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    ok = registry.add_job("build", "success")
    bad = registry.add_job("deploy", "fail", reason="image pull failed")
    result = run(*on(registry, "wait", "build", ok, "deploy", bad), env=env)
    assert result.returncode == 1
    assert errors(result) == [
        f"waylay-jobs: error: 1 of the 2 jobs failed; the first, deploy job {bad}: "
        "image pull failed"
    ]
    assert f"deploy  {bad}  failed     image pull failed" in result.stdout


def test_the_deadline_exits_2_naming_the_jobs_pending(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    done = registry.add_job("build", "finished")
    stuck = registry.add_job("deploy", "manual")
    result = run(*on(registry, "wait", "build", done, "deploy", stuck, "--timeout", "1"), env=env)
    assert result.returncode == 2
    (line,) = errors(result)
    assert f"1 of the 2 jobs did not end within 1s: deploy job {stuck} (waiting)" in line
    assert result.stdout == ""


def test_json_prints_every_final_job(registry: FakeRegistry, env: dict[str, str]) -> None:
    a = registry.add_job("build", "finished")
    b = registry.add_job("build", "finished-failed")
    result = run(*on(registry, "wait", a, b, "--json"), env=env)
    assert result.returncode == 1
    documents = json.loads(result.stdout)
    assert [d["job"]["job"]["id"] for d in documents] == [a, b]
    assert [d["job"]["state"] for d in documents] == ["completed", "failed"]


def test_a_job_that_does_not_exist_exits_4_naming_it(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    a = registry.add_job("build", "finished")
    result = run(*on(registry, "wait", "build", a, "build", "nope"), env=env)
    assert result.returncode == 4
    (line,) = errors(result)
    assert "1 of the 2 jobs do not exist: build job nope" in line


def test_children_with_several_jobs_is_a_usage_error(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    result = run(*on(registry, "wait", "a1", "b2", "--children"), env=env)
    assert result.returncode == 3
    (line,) = errors(result)
    assert "expected --children with one job" in line
    assert registry.requests == []


@POSIX
def test_the_live_line_counts_the_jobs_and_names_the_slowest(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    import pty

    quick = registry.add_job("build", "success")
    slow = registry.add_job("deploy", "success", step=20)  # about a second at this speed
    controller, terminal = pty.openpty()
    try:
        with subprocess.Popen(
            [*COMMAND, *on(registry, "wait", "build", quick, "deploy", slow)],
            stdout=subprocess.PIPE,
            stderr=terminal,
            env={**env, "TERM": "xterm"},
        ) as process:
            os.close(terminal)
            terminal = -1
            drawn = _read_until_closed(controller)
            stdout = process.communicate(timeout=20)[0]
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert process.returncode == 0
    assert b"1 running  1 completed  0 failed  slowest: deploy job " in drawn
    assert drawn.endswith(b"\r\x1b[K")  # erased before the results are printed
    assert stdout.count(b"completed") == 2


def _read_until_closed(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side of the terminal is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# -- in process: the live line and the printing, with a fake terminal -----------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_many_jobs_live_line_counts_and_names_the_slowest() -> None:
    clock = [100.0]
    terminal = Terminal()
    line = ManyLiveLine(terminal, [("build", "b1"), "x2", ("deploy", "d3")], clock=lambda: clock[0])
    assert line.render()[2:] == (
        "3 running  0 completed  0 failed  slowest: build job b1 waiting 0.0s  0.0s"
    )
    clock[0] = 101.0
    line.on_event(JobEvent("active", JobEventData.from_wire(_ref("deploy", "d3"), event="active")))
    line.on_event(JobEvent("active", JobEventData.from_wire(_ref("verify", "zz"), event="active")))
    line.on_event(AckEvent("ack", "hi"))  # not a job event of ours: nothing changes
    clock[0] = 104.0
    line.ended(_final("build", "b1", "completed"))
    line.ended(_final("build", "x2", "failed"))
    line.ended(_final("build", "x2", "failed"))  # a job given twice is counted once
    assert line.render()[2:] == (
        "1 running  1 completed  1 failed  slowest: deploy job d3 active 3.0s  4.0s"
    )
    line.ended(_final("deploy", "d3", "completed"))
    assert "slowest" not in line.render()


def test_run_wait_many_draws_the_line_and_prints_every_job(registry: FakeRegistry) -> None:
    a = registry.add_job("build", "success")
    b = registry.add_job("deploy", "fail", reason="boom")
    out, terminal = io.StringIO(), Terminal()
    handler = CliLogHandler(terminal)
    with JobsClient(registry.url) as client, pytest.raises(JobsFailed):
        run_wait_many(client, [("build", a), ("deploy", b)], timeout=30, as_json=False,
                      out=out, err=terminal, handler=handler, live=True)  # fmt: skip
    rows = [line.split() for line in out.getvalue().splitlines()]
    assert rows == [
        ["TYPE", "ID", "STATE", "REASON"],
        ["build", a, "completed"],
        ["deploy", b, "failed", "boom"],
    ]
    drawn = terminal.getvalue()
    assert " running  " in drawn
    assert drawn.endswith("\r\x1b[K")
    assert handler.live is None


def _ref(job_type: str, job_id: str) -> dict[str, object]:
    return {"job": {"type": job_type, "id": job_id}, "data": {}}


def _final(job_type: str, job_id: str, state: str) -> JobResponse:
    return JobResponse.from_wire(
        {"job": {"type": job_type, "state": state, "job": {"id": job_id}}, "_links": {}}
    )

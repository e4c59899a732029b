"""``waylay-jobs`` as a user runs it: a subprocess against a fake registry started here.

Exit codes, one-line errors, Ctrl-C, a closed output pipe, the live line on a terminal and the
demo. The output formats are checked in-process in ``test_cli_output.py`` (faster).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import pytest

from waylay_jobs import __version__
from waylay_jobs.testing import FakeRegistry, Faults

POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and terminals")
COMMAND = [sys.executable, "-m", "waylay_jobs"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment without any Waylay settings, and a home without profiles."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("WAYLAY_")}
    clean.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"), TERM="dumb")
    return clean


@pytest.fixture
def registry(fake_registry: FakeRegistry) -> Iterator[FakeRegistry]:
    yield fake_registry
    assert fake_registry.errors == []


def run(
    *args: str, env: Mapping[str, str], timeout: float = 30, input: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
        input=input,
    )


def on(registry: FakeRegistry, *args: str) -> list[str]:
    """``args`` after the options that point the command at ``registry``."""
    return ["--gateway", registry.url, "--no-auth", *args]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("waylay-jobs: error:")]


def assert_one_error_line(result: subprocess.CompletedProcess[str], *texts: str) -> None:
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    for text in texts:
        assert text in lines[0]


# -- exit codes ----------------------------------------------------------------------------------


def test_version(env: dict[str, str]) -> None:
    result = run("--version", env=env)
    assert (result.returncode, result.stdout.strip()) == (0, f"waylay-jobs {__version__}")


def test_help_documents_the_exit_codes(env: dict[str, str]) -> None:
    result = run("--help", env=env)
    assert result.returncode == 0
    for line in ("0    success", "1    the job failed", "2    the wait timed out", "130"):
        assert line in result.stdout


def test_list_and_get_succeed_with_0(registry: FakeRegistry, env: dict[str, str]) -> None:
    job_id = registry.add_job("build", "finished")
    listed = run(*on(registry, "list", "--json"), env=env)
    got = run(*on(registry, "get", "build", job_id), env=env)
    assert (listed.returncode, got.returncode) == (0, 0)
    assert [job["id"] for job in json.loads(listed.stdout)["jobs"]] == [job_id]
    assert got.stdout.startswith(f"build job {job_id}\n")


def test_wait_exit_codes_follow_the_outcome(registry: FakeRegistry, env: dict[str, str]) -> None:
    done = registry.add_job("build", "success")
    failed = registry.add_job("deploy", "fail", reason="image pull failed")
    stuck = registry.add_job("build", "manual")

    completed = run(*on(registry, "wait", "build", done), env=env)
    failing = run(*on(registry, "wait", "deploy", failed), env=env)
    timed_out = run(*on(registry, "wait", "build", stuck, "--timeout", "0.2"), env=env)

    assert completed.returncode == 0
    assert "state      completed" in completed.stdout
    assert failing.returncode == 1
    assert_one_error_line(failing, f"deploy job {failed} failed: image pull failed")
    assert "state      failed" in failing.stdout  # the failed job is printed too
    assert timed_out.returncode == 2
    assert_one_error_line(timed_out, "did not end within 0.2s", "last known state: waiting")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frob"], "invalid choice: 'frob'"),
        (["list", "--limit", "-1"], "argument --limit: expected a whole number >= 0, got '-1'"),
        (["list", "--created-before", "yesterday"], "got 'yesterday'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_3(
    args: list[str], text: str, env: dict[str, str]
) -> None:
    result = run(*args, env=env)
    assert result.returncode == 3
    assert result.stdout == ""
    assert_one_error_line(result, text)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["get", "frob", "x"], "params/type must be one of build, deploy"),
        (["list", "--type", "cleanup"], "querystring/type must be one of build, deploy"),
        (["events", "--type", "frob"], "querystring/type must be one of build, deploy"),
    ],
)
def test_a_value_the_server_refuses_is_a_usage_error_with_its_text(
    args: list[str], text: str, registry: FakeRegistry, env: dict[str, str]
) -> None:
    result = run(*on(registry, *args), env=env)
    assert result.returncode == 3
    assert_one_error_line(result, "got 400", text)


def test_list_help_offers_only_the_types_the_list_filter_accepts(env: dict[str, str]) -> None:
    result = run("list", "--help", env={**env, "COLUMNS": "200"})
    assert result.returncode == 0
    offered = re.search(r"job type, repeatable or comma-separated: ([a-z, \n]+)", result.stdout)
    assert offered is not None, result.stdout
    names = offered.group(1).replace("\n", " ").replace(",", " ").split()
    assert names == ["build", "deploy", "verify", "undeploy", "scale", "batch", "notify"]


def test_missing_credentials_exit_3(registry: FakeRegistry, env: dict[str, str]) -> None:
    result = run("--gateway", registry.url, "list", env=env)
    assert result.returncode == 3
    assert_one_error_line(
        result, "no credentials", "WAYLAY_TOKEN", "--no-auth", "waylay-jobs configure"
    )
    assert registry.requests == []  # nothing was sent


def test_unknown_job_gets_the_servers_404_and_exit_4(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    got = run(*on(registry, "get", "build", "no-such-job"), env=env)
    waited = run(*on(registry, "wait", "no-such-job"), env=env)
    assert (got.returncode, waited.returncode) == (4, 4)
    assert_one_error_line(got, "404", "Job build/no-such-job not found")
    assert_one_error_line(waited, "no job with id 'no-such-job'")


def test_events_for_an_unknown_job_get_the_404_instead_of_keep_alives(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    result = run(*on(registry, "events", "--type", "build", "--id", "nope"), env=env)
    assert result.returncode == 4
    assert result.stdout == ""  # not even the ack: nothing was subscribed
    assert_one_error_line(result, "404", "Job build/nope not found")
    assert not [r for r in registry.requests if r.path.endswith("/events")]


def test_events_for_a_known_job_check_it_then_follow_it_to_the_end(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    job_id = registry.add_job("deploy", "success", start="subscribe")
    result = run(*on(registry, "events", "--type", "deploy", "--id", job_id), env=env)
    assert result.returncode == 0, result.stderr
    names = [line.split()[1] for line in result.stdout.splitlines()]
    assert names == ["ack", "waiting", "active", "completed", "close"]
    assert [r.path for r in registry.requests] == [
        f"/registry/v2/jobs/deploy/{quote(job_id, safe='')}",  # the check...
        "/registry/v2/jobs/events",  # ...then the subscription
    ]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--children"], "expected --children together with --id"),
        (["--type", "build", "--children"], "expected --children together with --id"),
        (["--id", "x"], "expected --type with --id"),
    ],
)
def test_events_filters_that_cannot_end_well_are_usage_errors(
    args: list[str], text: str, registry: FakeRegistry, env: dict[str, str]
) -> None:
    result = run(*on(registry, "events", *args), env=env)
    assert result.returncode == 3
    assert_one_error_line(result, text)
    assert registry.requests == []


def test_https_to_a_plain_http_gateway_says_to_use_http(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    host = registry.url.split("://", 1)[1]  # the documented bare host gets https://
    result = run("--gateway", host, "--no-auth", "list", env=env)
    assert result.returncode == 4
    assert_one_error_line(result, "SSLError", f"is the gateway plain HTTP? use http://{host}")


def test_refused_credentials_exit_4(
    make_fake_registry: Callable[..., FakeRegistry], env: dict[str, str]
) -> None:
    registry = make_fake_registry(tokens=["good-token"])
    refused = run("--gateway", registry.url, "--token", "bad-token", "list", env=env)
    accepted = run("list", env={**env, "WAYLAY_GATEWAY_URL": registry.url,
                                "WAYLAY_TOKEN": "good-token"})  # fmt: skip
    assert refused.returncode == 4
    assert_one_error_line(refused, "401")
    assert "bad-token" not in refused.stderr
    assert accepted.returncode == 0
    assert [r.header("Authorization") for r in registry.requests] == [
        "Bearer bad-token",
        "Bearer good-token",
    ]


def test_verbose_adds_the_traceback(registry: FakeRegistry, env: dict[str, str]) -> None:
    result = run(*on(registry, "--verbose", "get", "build", "no-such-job"), env=env)
    assert result.returncode == 4
    assert "Traceback" in result.stderr
    assert "NotFoundError" in result.stderr
    assert len(error_lines(result.stderr)) == 1


def test_the_command_still_prints_the_librarys_warnings(
    make_fake_registry: Callable[..., FakeRegistry], env: dict[str, str]
) -> None:
    # The package's NullHandler keeps scripts quiet; the command has a handler of its own.
    registry = make_fake_registry(
        faults=Faults(endpoint="list", status=503, retry_after="0", times=1)
    )
    result = run(*on(registry, "list"), env=env)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\d\d:\d\d:\d\d retrying a GET .* after status 503$", result.stderr, re.M)


# -- configure ------------------------------------------------------------------------------------

KEY, SECRET = "0123456789abcdef01234567", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


def profile_file(env: Mapping[str, str], name: str) -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "Waylay" / "python_sdk" / f".profile.{name}.json"


def test_configure_checks_the_key_then_saves_an_owner_only_sdk_profile(
    make_fake_registry: Callable[..., FakeRegistry], env: dict[str, str]
) -> None:
    registry = make_fake_registry(api_key=KEY, api_secret=SECRET)
    answers = f"{registry.url}\n{KEY}\n{SECRET}\n"
    result = run("configure", "--profile", "work", env=env, input=answers)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert [(r.method, r.path) for r in registry.requests] == [("POST", "/accounts/v1/tokens")]
    path = profile_file(env, "work")
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text(encoding="utf-8")) == {  # the official SDK's keys only
        "credentials": {
            "type": "client_credentials",
            "api_key": KEY,
            "api_secret": SECRET,
            "gateway_url": registry.url,
            "accounts_url": None,
        },
        "profile": "work",
        "settings": {},
    }
    assert f"Saved {path}" in result.stdout
    listed = run("--profile", "work", "list", env=env)  # the saved profile is what is read
    assert listed.returncode == 0, listed.stderr
    assert (registry.requests[-1].header("Authorization") or "").startswith("Bearer ")


def test_configure_saves_nothing_when_the_key_is_refused(
    make_fake_registry: Callable[..., FakeRegistry], env: dict[str, str]
) -> None:
    registry = make_fake_registry(api_key=KEY, api_secret=SECRET)
    answers = f"{registry.url}\n{KEY}\nnot-the-secret\n"
    result = run("configure", env=env, input=answers)
    assert result.returncode == 4
    assert_one_error_line(result, "/accounts/v1/tokens", "got 401")
    assert "not-the-secret" not in result.stdout + result.stderr
    assert not profile_file(env, "_default_").exists()


def test_configure_with_the_end_of_the_input_is_a_usage_error(env: dict[str, str]) -> None:
    result = run("configure", "--gateway", "http://127.0.0.1:9", env=env, input="only-a-key\n")
    assert result.returncode == 3
    assert_one_error_line(result, "expected an answer to 'API secret:', got the end of the input")
    assert not profile_file(env, "_default_").exists()


@POSIX
def test_configure_reads_the_secret_without_echo_on_a_terminal(
    make_fake_registry: Callable[..., FakeRegistry], env: dict[str, str]
) -> None:
    import fcntl
    import pty
    import termios

    registry = make_fake_registry(api_key=KEY, api_secret=SECRET)
    controller, terminal = pty.openpty()
    try:
        with subprocess.Popen(
            [*COMMAND, "configure", "--gateway", registry.url],
            stdin=terminal,
            stdout=terminal,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # then the terminal below becomes its /dev/tty
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        ) as process:
            os.close(terminal)
            terminal = -1
            shown = _read_until(controller, b"API key: ")
            os.write(controller, f"{KEY}\n".encode())
            shown += _read_until(controller, b"API secret: ")  # getpass has turned echo off
            os.write(controller, f"{SECRET}\n".encode())
            shown += _read_until_closed(controller)
            stderr = process.communicate(timeout=20)[1]
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert process.returncode == 0, stderr
    assert KEY.encode() in shown  # typed answers are echoed as usual...
    assert SECRET.encode() not in shown  # ...but not the secret
    assert b"The key works." in shown
    assert json.loads(profile_file(env, "_default_").read_text())["credentials"]["api_secret"] == (
        SECRET
    )


def _read_until(fd: int, marker: bytes) -> bytes:
    seen = b""
    while marker not in seen:
        chunk = os.read(fd, 4096)
        assert chunk, f"expected {marker!r}, got the end of the output after {seen!r}"
        seen += chunk
    return seen


# -- signals, pipes, terminals --------------------------------------------------------------------


@POSIX
def test_ctrl_c_during_wait_exits_130_and_closes_the_stream(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    job_id = registry.add_job("build", "manual")  # never ends on its own
    with subprocess.Popen(
        [*COMMAND, *on(registry, "wait", "build", job_id)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        registry.wait_for_subscribers(1, timeout=20)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 130
    assert stdout == ""
    assert "Traceback" not in stderr
    assert error_lines(stderr) == ["waylay-jobs: error: interrupted"]
    registry.wait_for_open_streams(0, timeout=10)


@POSIX
def test_an_interrupt_inside_generated_code_still_exits_130(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # A Ctrl-C that lands in code run by exec() from source text (a dataclass's generated
    # methods while a module is imported on first use, a model decoder being compiled) makes
    # CPython end a `python -m` process by SIGINT at exit, even after the command handled it.
    (tmp_path / "interrupted_cli.py").write_text(
        "import sys\n"
        "from waylay_jobs import cli\n"
        "def interrupted(options, streams):\n"
        "    exec('raise KeyboardInterrupt')\n"
        "cli._cmd_list = interrupted\n"
        "sys.exit(cli.main(['--gateway', 'http://127.0.0.1:9', '--no-auth', 'list']))\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "interrupted_cli"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 130, done.stderr
    assert error_lines(done.stderr) == ["waylay-jobs: error: interrupted"]


@POSIX
def test_a_closed_output_pipe_ends_quietly(registry: FakeRegistry, env: dict[str, str]) -> None:
    with subprocess.Popen(
        [*COMMAND, *on(registry, "events", "--type", "build")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # the reader goes away, like `| head -1`
        registry.add_job("build", "success")  # more events to write into the closed pipe
        stderr = process.stderr.read()
        process.wait(timeout=20)
    assert first.split()[1] == "ack"
    assert process.returncode == 141
    assert stderr == ""


@POSIX
def test_wait_draws_a_live_line_on_a_terminal(registry: FakeRegistry, env: dict[str, str]) -> None:
    import pty

    job_id = registry.add_job("build", "success")
    controller, terminal = pty.openpty()
    try:
        with subprocess.Popen(
            [*COMMAND, *on(registry, "wait", "build", job_id)],
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
    assert b"\r| build job " in drawn  # the status line, redrawn in place
    assert b"\x1b[K" in drawn  # cleared to the end of the line on each redraw
    assert f"build job {job_id} is completed".encode() in drawn  # log lines above it
    assert drawn.endswith(b"\r\x1b[K")  # erased before the result is printed
    assert stdout.startswith(f"build job {job_id}\n".encode())


@POSIX
def test_the_live_line_ends_with_the_final_progress(
    registry: FakeRegistry, env: dict[str, str]
) -> None:
    import pty

    job_id = registry.add_job("build", "manual")
    controller, terminal = pty.openpty()
    try:
        with subprocess.Popen(
            [*COMMAND, *on(registry, "wait", "build", job_id)],
            stdout=subprocess.PIPE,
            stderr=terminal,
            env={**env, "TERM": "xterm"},
        ) as process:
            os.close(terminal)
            terminal = -1
            # The line has read the progress of the waiting job (0) before the job ends.
            drawn = _read_until(controller, b"waiting  0%")
            registry.transition("build", job_id, "active", final=False)
            registry.transition("build", job_id, "completed")
            drawn += _read_until_closed(controller)
            process.communicate(timeout=20)
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert process.returncode == 0
    last_frame = drawn.split(b"\r")[-2]  # the status line as it was before its final erase
    assert re.search(rb"build job \S+  completed  100%  ", last_frame), last_frame


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


def test_speed_means_seconds_per_job_step_in_the_demo_and_the_fake_registry(
    env: dict[str, str],
) -> None:
    wide = {**env, "COLUMNS": "200"}
    demo = run("demo", "--help", env=wide)
    fake = subprocess.run(
        [sys.executable, "-m", "waylay_jobs.testing", "--help"],
        capture_output=True,
        text=True,
        env=wide,
        timeout=30,
    )
    refused = subprocess.run(
        [sys.executable, "-m", "waylay_jobs.testing", "--speed", "0"],
        capture_output=True,
        text=True,
        env=wide,
        timeout=30,
    )
    assert (demo.returncode, fake.returncode) == (0, 0)
    assert re.search(r"--speed SECONDS +real seconds per job step \(default 1\.25;", demo.stdout)
    assert re.search(r"--speed SECONDS +real seconds per job step \(default 1;", fake.stdout)
    assert "``" not in fake.stdout  # plain text, not reStructuredText
    assert "Run a local fake Waylay registry on 127.0.0.1" in fake.stdout
    assert refused.returncode == 2
    assert "argument --speed: expected a number of seconds > 0, got '0'" in refused.stderr


def test_demo_runs_its_sections(env: dict[str, str]) -> None:
    result = run("demo", "--speed", "0.01", env=env)
    assert result.returncode == 0, result.stderr
    headings = [line for line in result.stdout.splitlines() if line.startswith("== ")]
    assert [h.split()[2].rstrip(":") for h in headings] == ["list", "get", "events", "wait"]
    assert re.search(r"  completed +build job", result.stdout)  # events stopped after the child
    assert "`waylay-jobs configure` saves one" in result.stdout  # the way to a real gateway
    assert "state      completed" in result.stdout  # wait printed the finished parent
    assert "child deploy job" in result.stderr  # wait --children logged the other child


def test_wait_timeout_bounds_a_retry_after_and_a_bare_id_probe(
    make_fake_registry: Callable[..., FakeRegistry], env: dict[str, str]
) -> None:
    registry = make_fake_registry(
        faults=Faults(endpoint="get", status=503, retry_after="5", times=None)
    )
    job_id = registry.add_job("build", "manual")
    result = run(*on(registry, "wait", job_id, "--timeout", "2"), env=env)
    assert result.returncode == 2
    assert_one_error_line(result, "did not end within 2s", "retry after 5s")


def test_wait_on_a_gateway_that_refuses_connections_exits_4(env: dict[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gateway = f"http://127.0.0.1:{port}"
    result = run("--gateway", gateway, "--no-auth", "wait", "build", "some-id", env=env)
    assert result.returncode == 4
    assert_one_error_line(result, "Connection refused")

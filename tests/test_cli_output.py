"""``waylay-jobs`` in-process: what each command prints, credentials, the live line.

``test_cli.py`` runs the real process (exit codes, signals, pipes, terminals); here ``main``
is called directly against a fake registry, which is fast and shows every line it printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, quote

import pytest

from waylay_jobs import (
    AckEvent,
    ApiError,
    AuthError,
    ConfigError,
    InvalidArgument,
    JobEvent,
    JobEventData,
    JobFailed,
    JobResponse,
    JobsClient,
    TransportError,
    WaitTimeout,
    cli,
)
from waylay_jobs import _cli_render as render
from waylay_jobs._cli_wait import CliLogHandler, LiveLine, run_wait
from waylay_jobs._config import save_profile
from waylay_jobs.testing import FakeRegistry


@dataclasses.dataclass
class Result:
    code: Any
    out: str
    err: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("waylay-jobs: error:")]


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("WAYLAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


@pytest.fixture
def run(home: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    def run(*args: str) -> Result:
        try:
            code: Any = cli.main(list(args))
        except SystemExit as exc:  # argparse: usage errors, --help
            code = exc.code
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def registry(fake_registry: FakeRegistry) -> Iterator[FakeRegistry]:
    yield fake_registry
    assert fake_registry.errors == []


def on(registry: FakeRegistry, *args: str) -> list[str]:
    return ["--gateway", registry.url, "--no-auth", *args]


def raw(registry: FakeRegistry, path: str) -> Any:
    with JobsClient(registry.url) as client:
        return client.transport.session.get(registry.url + path, timeout=10).json()


# -- list ----------------------------------------------------------------------------------------


def test_list_prints_an_aligned_table(registry: FakeRegistry, run: Callable[..., Result]) -> None:
    built = registry.add_job("build", "finished")
    failed = registry.add_job("deploy", "finished-failed", function_type="webscripts")
    result = run(*on(registry, "list"))
    assert result.code == 0
    header, *rows = result.out.splitlines()
    assert header.split() == ["TYPE", "ID", "STATE", "OPERATION", "FUNCTION", "CREATED"]
    assert [row.split()[:4] for row in rows] == [
        ["deploy", failed, "failed", "create"],
        ["build", built, "completed", "create"],
    ]
    for column in ("ID", "STATE", "FUNCTION", "CREATED"):
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[0].split()[-1])
    assert rows[0].split()[4] == "orderHook@0.3.0"


def test_connection_options_may_follow_the_command(
    registry: FakeRegistry, run: Callable[..., Result]
) -> None:
    after = run("list", "--gateway", registry.url, "--no-auth")
    split = run("--gateway", registry.url, "list", "--no-auth")  # the command's do not undo it
    assert (after.code, split.code) == (0, 0)
    assert len(registry.requests) == 2


def test_list_without_jobs_says_so(registry: FakeRegistry, run: Callable[..., Result]) -> None:
    assert run(*on(registry, "list")).out.splitlines()[1:] == ["(no jobs)"]


def test_list_json_is_the_servers_document(
    registry: FakeRegistry, run: Callable[..., Result]
) -> None:
    registry.add_job("build", "finished")
    registry.add_job_with_children("verify", start=False)
    result = run(*on(registry, "list", "--json"))
    assert json.loads(result.out) == raw(registry, "/registry/v2/jobs/")


def test_list_sends_every_filter(registry: FakeRegistry, run: Callable[..., Result]) -> None:
    result = run(*on(registry, "list", "--type", "build", "--type", "deploy,verify",
                     "--state", "failed", "--function-type", "plugs", "--created-after", "1d",
                     "--created-before", "2030-01-01", "--limit", "3"))  # fmt: skip
    assert result.code == 0, result.err
    (request,) = registry.requests
    assert sorted(parse_qsl(request.query)) == sorted(
        [("type", "build"), ("type", "deploy"), ("type", "verify"), ("state", "failed"),
         ("functionType", "plugs"), ("createdAfter", "1d"), ("createdBefore", "2030-01-01"),
         ("limit", "3")]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["list", "--limit", "ten"], "argument --limit: expected a whole number >= 0, got 'ten'"),
        (["list", "--created-after=-1d"], "got '-1d'"),
        (["get", "build"], "required: ID"),
        (["wait", "build", "x", "--timeout", "0"], "expected a number of seconds > 0, got '0'"),
        (["wait", "build", "x", "--timeout", "nan"], "got 'nan'"),
        (["demo", "--speed", "-1"], "argument --speed"),
        (["events", "--bogus"], "unrecognized arguments: --bogus"),
        (["--token", "t", "--no-auth", "list"], "expected one of --token, --profile and --no-auth"),
        (["list", "--token", " "], "expected --token to be a token"),
        (["events", "--no-auth", "--type", "build", "--id", " "], "expected id to be a non-empty"),
    ],
)
def test_usage_errors_exit_3(args: list[str], text: str, run: Callable[..., Result]) -> None:
    result = run(*args)
    assert result.code == 3
    assert result.out == ""
    assert len(result.errors) == 1, result.err
    assert text in result.errors[0]


# -- get -----------------------------------------------------------------------------------------


def test_get_summarises_a_failed_job(registry: FakeRegistry, run: Callable[..., Result]) -> None:
    job_id = registry.add_job("deploy", "finished-failed", reason="ImagePullBackOff\nagain")
    result = run(*on(registry, "get", "deploy", job_id))
    lines = result.out.splitlines()
    assert lines[0] == f"deploy job {job_id}"
    fields = {line.split()[0]: line.split(None, 1)[1] for line in lines[1:]}
    assert fields["state"] == "failed (progress 40%, attempts 1)"
    assert fields["failed"] == "ImagePullBackOff?again"  # one line, control characters shown
    assert fields["function"].startswith("plugs temperatureCheck@1.0.2 (runtime node-20")
    assert json.loads(fields["request"])["endpoint"] == "plugs-temperaturecheck-1-0-2"
    assert {"operation", "created", "processed", "finished"} <= set(fields)


def test_get_json_is_the_servers_document(
    registry: FakeRegistry, run: Callable[..., Result]
) -> None:
    job_id = registry.add_job("build", "finished")
    result = run(*on(registry, "get", "build", job_id, "--json"))
    assert json.loads(result.out) == raw(registry, f"/registry/v2/jobs/build/{job_id}")


# -- events --------------------------------------------------------------------------------------


def test_events_prints_one_line_each_until_close(
    registry: FakeRegistry, run: Callable[..., Result]
) -> None:
    parent = registry.add_job_with_children("verify", start="subscribe")
    result = run(*on(registry, "events", "--type", "verify", "--id", parent, "--children"))
    assert result.code == 0
    names = [line.split()[1] for line in result.out.splitlines()]
    assert names[0] == "ack"
    assert names[-1] == "close"
    assert names.count("completed") == 3  # build, deploy, then the parent
    last_job_line = result.out.splitlines()[-2].split()
    assert last_job_line[1:5] == ["completed", "verify", "job", parent]


def test_events_json_is_one_wire_object_per_line(
    registry: FakeRegistry, run: Callable[..., Result]
) -> None:
    job_id = registry.add_job("build", "fail", start="subscribe", reason="npm ERR!")
    result = run(*on(registry, "events", "--type", "build", "--id", job_id, "--json"))
    documents = [json.loads(line) for line in result.out.splitlines()]
    assert [d["event"] for d in documents] == ["ack", "waiting", "active", "failed", "close"]
    assert isinstance(documents[0]["data"], str)
    failed = documents[3]["data"]
    assert failed["job"] == {"type": "build", "id": job_id}
    assert failed["data"]["failedReason"] == "npm ERR!"


def test_events_check_the_job_before_subscribing(
    registry: FakeRegistry, run: Callable[..., Result]
) -> None:
    job_id = registry.add_job("scale", "finished")
    found = run(*on(registry, "events", "--type", "scale", "--id", job_id))
    unknown = run(*on(registry, "events", "--type", "build", "--id", "nope"))
    children = run(*on(registry, "events", "--children"))
    untyped = run(*on(registry, "events", "--id", job_id))
    assert found.code == 0
    assert [line.split()[1] for line in found.out.splitlines()] == ["ack", "close"]
    assert (unknown.code, unknown.out) == (4, "")
    assert "Job build/nope not found" in unknown.errors[0]
    assert (children.code, untyped.code) == (3, 3)
    assert "got --children without --id" in children.errors[0]
    assert "got --id without --type" in untyped.errors[0]
    subscriptions = [r.query for r in registry.requests if r.path.endswith("/events")]
    assert subscriptions == [f"type=scale&id={quote(job_id, safe='')}"]


def test_event_lines_show_the_reason_and_the_retry_time() -> None:
    def event(name: str, payload: dict[str, Any]) -> JobEvent:
        envelope = {"job": {"type": "build", "id": "b1"}, "data": payload}
        return JobEvent(name, JobEventData.from_wire(envelope, event=name))

    failed = render.event_line(event("failed", {"failedReason": "boom"}), now=0)
    delayed = render.event_line(event("delayed", {"delay": 86_400_000}), now=0)
    ack = render.event_line(AckEvent("ack", "hello\x1b[2J"), now=0)
    assert failed.split(None, 1)[1] == "failed".ljust(18) + "build job b1  reason: boom"
    assert delayed.endswith("build job b1  next attempt at 1970-01-02T00:00:00Z")
    assert ack.endswith("ack".ljust(18) + "hello?[2J")  # no terminal escapes from the server


# -- wait ----------------------------------------------------------------------------------------


def test_wait_accepts_an_id_an_href_or_type_and_id(
    registry: FakeRegistry, run: Callable[..., Result]
) -> None:
    first = registry.add_job("deploy", "success")
    second = registry.add_job("scale", "success")
    href = f"{registry.url}/registry/v2/jobs/scale/{second}"
    by_id = run(*on(registry, "wait", first, "--json"))
    by_href = run(*on(registry, "wait", href))
    assert (by_id.code, by_href.code) == (0, 0)
    assert json.loads(by_id.out)["job"]["state"] == "completed"
    assert by_href.out.startswith(f"scale job {second}\n")
    assert f"deploy job {first} is completed" in by_id.err  # plain log lines, not a terminal


def test_wait_with_children_logs_them(registry: FakeRegistry, run: Callable[..., Result]) -> None:
    parent = registry.add_job_with_children("verify", start="subscribe")
    result = run(*on(registry, "wait", "verify", parent, "--children"))
    assert result.code == 0
    assert re.search(r"child build job \S+ is completed", result.err)
    assert re.search(r"child deploy job \S+ is completed", result.err)


def test_wait_failure_prints_the_job_then_one_error(
    registry: FakeRegistry, run: Callable[..., Result]
) -> None:
    job_id = registry.add_job("build", "fail", reason="exit code 1")
    result = run(*on(registry, "wait", "build", job_id, "--json"))
    assert result.code == 1
    assert json.loads(result.out)["job"]["job"]["failedReason"] == "exit code 1"
    assert result.errors == [f"waylay-jobs: error: build job {job_id} failed: exit code 1"]


def test_the_demo_in_process(run: Callable[..., Result]) -> None:
    result = run("demo", "--speed", "0.005")
    assert result.code == 0
    assert "== 4/4 wait" in result.out
    assert result.out.count("$ waylay-jobs --gateway http://127.0.0.1:") == 4


# -- errors and exits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (JobFailed("x", job=None, reason=None), 1),  # type: ignore[arg-type]
        (WaitTimeout("x", job_type="b", job_id="i", last_job=None, last_state=None, timeout=1), 2),
        (InvalidArgument("x"), 3),
        (ConfigError("x"), 3),
        (ApiError("x", status_code=500), 4),
        (ApiError("x", status_code=400), 3),  # the server refused a value
        (AuthError("x", status_code=400), 4),  # the token request: not a typed value
        (TransportError("x"), 4),
    ],
)
def test_exit_codes(error: Exception, code: int) -> None:
    assert cli.exit_code(error) == code  # type: ignore[arg-type]


def test_ctrl_c_in_process(
    registry: FakeRegistry, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(JobsClient, "list", interrupted)
    result = run(*on(registry, "list"))
    assert (result.code, result.errors) == (130, ["waylay-jobs: error: interrupted"])


def test_broken_pipe_in_process(
    registry: FakeRegistry, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    err = io.StringIO()
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    monkeypatch.setattr("sys.stderr", err)
    assert cli.main(on(registry, "list")) == 141
    assert err.getvalue() == ""


def test_the_logger_is_restored(registry: FakeRegistry, run: Callable[..., Result]) -> None:
    import logging

    logger = logging.getLogger("waylay_jobs")
    before = (logger.level, logger.propagate, list(logger.handlers))
    run(*on(registry, "--verbose", "list"))
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


# -- credentials ---------------------------------------------------------------------------------


def options(**given: Any) -> argparse.Namespace:
    base: dict[str, Any] = {"gateway": None, "token": None, "profile": None, "no_auth": False}
    return argparse.Namespace(**{**base, **given})


def test_credentials_precedence(home: Path) -> None:
    save_profile("work", token="profile-token", gateway_url="https://profile.example")
    where = {"HOME": os.environ["HOME"], "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"]}
    env = {**where, "WAYLAY_GATEWAY_URL": "https://env.example", "WAYLAY_TOKEN": "env-token"}
    resolve = cli.resolve_credentials
    assert resolve(options(token="flag"), env).token == "flag"
    assert resolve(options(token="flag"), env).gateway_url == "https://env.example"
    assert resolve(options(), env).token == "env-token"
    by_profile = resolve(options(profile="work"), env)
    assert (by_profile.token, by_profile.gateway_url) == ("profile-token", "https://env.example")
    assert resolve(options(profile="work"), where).gateway_url == "https://profile.example"
    assert resolve(options(profile="work", gateway="https://flag.example"), env).gateway_url == (
        "https://flag.example"
    )
    assert resolve(options(), {**where, "WAYLAY_PROFILE": "work"}).token == "profile-token"
    none = resolve(options(no_auth=True), where)
    assert (none.token, none.api_key, none.gateway_url) == (None, None, "https://api.waylay.io")
    with pytest.raises(ConfigError, match="no credentials"):
        resolve(options(), where)


def test_api_key_from_the_environment(
    make_fake_registry: Callable[..., FakeRegistry],
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = make_fake_registry(api_key="key", api_secret="secret-value")
    monkeypatch.setenv("WAYLAY_GATEWAY_URL", registry.url)
    monkeypatch.setenv("WAYLAY_API_KEY", "key")
    monkeypatch.setenv("WAYLAY_API_SECRET", "secret-value")
    result = run("list", "--verbose")
    assert result.code == 0, result.err
    assert "secret-value" not in result.out + result.err
    assert [r.path for r in registry.requests] == ["/accounts/v1/tokens", "/registry/v2/jobs/"]


# -- configure -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "gateway"),
    [
        ("", "https://api.waylay.io"),
        (" API ", "https://api.waylay.io"),
        ("enterprise", "https://api.waylay.io"),
        ("io", "https://api-io.waylay.io"),
        ("accounts-api-aws.waylay.io", "https://api-aws.waylay.io"),
        ("api.example.com/", "https://api.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_configure_reads_the_gateway_answer_as_the_sdk_does(answer: str, gateway: str) -> None:
    from waylay_jobs._cli_configure import gateway_url_for

    assert gateway_url_for(answer) == gateway


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stdin_kind", ["pipe", "terminal"])
def test_configure_in_process(
    stdin_kind: str,
    make_fake_registry: Callable[..., FakeRegistry],
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
) -> None:
    import getpass

    registry = make_fake_registry(api_key="key", api_secret="secret-value")
    asked: list[str] = []

    def fake_getpass(prompt: str = "Password: ", stream: Any = None) -> str:
        asked.append(prompt)
        return "secret-value"

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    if stdin_kind == "pipe":
        monkeypatch.setattr("sys.stdin", io.StringIO(f"{registry.url}\nkey\nsecret-value\n"))
    else:
        monkeypatch.setattr("sys.stdin", _Terminal(f"{registry.url}\nkey\n"))
    save_profile("ci", token="old", gateway_url=None)
    result = run("configure", "--profile", "ci")
    assert result.code == 0, result.err
    assert asked == ([] if stdin_kind == "pipe" else ["API secret: "])
    assert "That profile exists: it is replaced" in result.out
    assert "Try: waylay-jobs --profile ci list --limit 5" in result.out
    assert "secret-value" not in result.out + result.err
    saved = json.loads(
        (home / "config" / "Waylay" / "python_sdk" / ".profile.ci.json").read_text()
    )["credentials"]
    assert (saved["api_key"], saved["api_secret"], saved["gateway_url"]) == (
        "key",
        "secret-value",
        registry.url,
    )


@pytest.mark.parametrize(
    ("args", "answers", "message"),
    [
        (["--token", "t"], "", "expected configure with --profile and --gateway only"),
        (["--no-auth"], "", "expected configure with --profile and --gateway only"),
        (["--gateway", "http://127.0.0.1:9"], "\nsecret\n", "expected an API key, got an empty"),
        (["--gateway", "http://127.0.0.1:9"], "key\n\n", "expected an API secret, got an empty"),
        ([], "", "expected an answer to 'Gateway [https://api.waylay.io]:', got the end"),
    ],
)
def test_configure_refuses_before_sending_anything(
    args: list[str],
    answers: str,
    message: str,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(answers))
    result = run("configure", *args)
    assert result.code == 3
    assert len(result.errors) == 1
    assert message in result.errors[0]


# -- the live line -------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_line_shows_state_progress_and_children() -> None:
    document = {"job": {"type": "build", "job": {"id": "b1", "progress": 50}, "state": "active"}}
    polled = threading.Event()

    def poll() -> Optional[JobResponse]:
        polled.set()
        return JobResponse.from_wire(document)

    terminal = Terminal()
    clock = iter(float(n) for n in range(1000))
    line = LiveLine(terminal, "build", "b1", poll=poll, clock=lambda: next(clock))
    line.start()
    assert polled.wait(10)
    line.on_event(AckEvent("ack", "hi"))  # not a job event: nothing changes
    child = {"job": {"type": "deploy", "id": "d1"}, "data": {}}
    line.on_event(JobEvent("active", JobEventData.from_wire(child, event="active")))
    line.print_above("a log line")
    line.stop()
    text = terminal.getvalue()
    assert "\r\x1b[Ka log line\n" in text  # the status line is erased, the log line printed
    assert re.search(r"\r. build job b1  active  50%  \d+\.\ds  child deploy active\x1b\[K", text)
    assert text.endswith("\r\x1b[K")
    assert line.render().startswith(("| ", "/ ", "- ", "\\ "))


def test_run_wait_on_a_terminal_follows_the_job(registry: FakeRegistry) -> None:
    job_id = registry.add_job("build", "success")
    out, terminal = io.StringIO(), Terminal()
    handler = CliLogHandler(terminal)
    import logging

    logger = logging.getLogger("waylay_jobs")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with JobsClient(registry.url) as client:
            code = run_wait(client, ("build", job_id), timeout=30, children=False,
                            as_json=False, out=out, err=terminal, handler=handler, live=True,
                            make_poll_client=lambda: JobsClient(registry.url))  # fmt: skip
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert code == 0
    assert out.getvalue().startswith(f"build job {job_id}\n")
    drawn = terminal.getvalue()
    assert f"build job {job_id[:8]}..." in drawn
    assert f"build job {job_id} is completed" in drawn
    assert drawn.endswith("\r\x1b[K")


def test_render_helpers() -> None:
    assert render.duration(4.25) == "4.2s"
    assert render.duration(65) == "1m05s"
    assert render.duration(7380) == "2h03m"
    assert render.short_time("2024-05-02T09:14:03.512Z") == "2024-05-02T09:14:03Z"
    assert render.short_time("2024-05-02T09:14:03.5+02:00") == "2024-05-02T09:14:03+02:00"
    assert render.short_time(None) == "-"
    when = datetime(2024, 5, 2, 9, 14, 3, 512000, tzinfo=timezone.utc)
    assert render.short_time(when) == "2024-05-02T09:14:03Z"
    assert render.function_label(None) == "-"
    assert render.clean("a\tb\x9bc") == "a?b?c"


def test_python_dash_m_runs_main(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import runpy

    from waylay_jobs import __version__

    monkeypatch.setattr("sys.argv", ["waylay-jobs", "--version"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("waylay_jobs", run_name="__main__")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"waylay-jobs {__version__}\n"

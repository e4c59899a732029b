"""The package surface: every public name from one place; dataclasses-json loaded only when used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import waylay_jobs
from waylay_jobs import _config, _events, _exceptions, _models

HEAVY = ["waylay_jobs._models", "waylay_jobs._events", "dataclasses_json", "marshmallow"]


def loaded_after(code: str) -> dict[str, bool]:
    """Which of the heavy modules a fresh interpreter has loaded after running ``code``."""
    report = f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    probe = f"{code}\nimport json, sys\n{report}"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def test_a_client_and_a_decoded_job_load_neither_dataclasses_json_nor_marshmallow() -> None:
    code = (
        "import waylay_jobs\n"
        "waylay_jobs.JobsClient('http://127.0.0.1:9').close()\n"
        "waylay_jobs.JobResponse.from_wire({'job': {'type': 'build', 'job': {}}}).to_wire()"
    )
    loaded = loaded_after(code)
    assert loaded["waylay_jobs._models"]
    assert loaded["waylay_jobs._events"]
    assert not loaded["dataclasses_json"]
    assert not loaded["marshmallow"]


def test_to_json_and_schema_load_them_when_called() -> None:
    job = "waylay_jobs.JobReference(type='build', id='b1')"
    assert loaded_after(f"import waylay_jobs\n{job}.to_json()")["dataclasses_json"]
    assert loaded_after("import waylay_jobs\nwaylay_jobs.JobReference.schema()")["marshmallow"]


def test_dir_lists_every_public_name() -> None:
    assert set(waylay_jobs.__all__) <= set(dir(waylay_jobs))


def test_every_public_name_resolves_to_the_object_of_its_module() -> None:
    for name in waylay_jobs.__all__:
        value = getattr(waylay_jobs, name)
        homes = [
            m for m in (_models, _events, _exceptions, _config) if getattr(m, name, None) is value
        ]
        assert homes or name in ("JobsClient", "__version__"), name
    star: dict[str, object] = {}
    exec("from waylay_jobs import *", star)  # noqa: S102 - the names a star import gives
    assert set(star) - {"__builtins__"} == set(waylay_jobs.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'JobResponses'"):
        waylay_jobs.JobResponses  # type: ignore[attr-defined]  # noqa: B018


def test_the_profile_writer_the_errors_point_to_is_public(tmp_path: Path) -> None:
    from waylay_jobs import Credentials, JobsClient, save_profile

    assert {"save_profile", "Credentials"} <= set(waylay_jobs.__all__)
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    with pytest.raises(waylay_jobs.ConfigError, match=r"waylay_jobs\.save_profile\(\)"):
        _config.load_profile("work", environ=env)
    path = save_profile("work", token="t-1", gateway_url="http://127.0.0.1:9", environ=env)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = _config.load_profile("work", environ=env)
    assert isinstance(loaded, Credentials)
    assert (loaded.gateway_url, loaded.token) == ("http://127.0.0.1:9", "t-1")
    JobsClient.from_credentials(loaded).close()  # the type from_credentials takes


# A script that retries a GET once (a 503), which the library logs at WARNING.
_RETRY_ONCE = """
import logging, sys
from waylay_jobs import JobsClient
from waylay_jobs.testing import FakeRegistry, Faults
if sys.argv[1] == "configured":
    logging.basicConfig(format="%(levelname)s %(name)s %(message)s")
with FakeRegistry(faults=Faults(endpoint="list", status=503, retry_after="0", times=1)) as reg:
    with JobsClient(reg.url, token="t") as client:
        client.list()
print("listed")
"""


@pytest.mark.parametrize("logging_setup", ["none", "configured"])
def test_the_library_logs_only_where_the_application_configured_logging(
    logging_setup: str,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _RETRY_ONCE, logging_setup],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "listed\n"), done.stderr
    if logging_setup == "none":
        assert done.stderr == ""  # no "retrying a GET" from Python's last-resort handler
    else:
        assert "WARNING waylay_jobs retrying a GET" in done.stderr

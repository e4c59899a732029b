"""What Airflow reads before it imports anything of ours: the provider entry point and its
information; and the error a DAG gets without Airflow 2.11 or 3.x. No Airflow needed
(``tests_airflow/`` checks the same against real Airflow)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from waylay_jobs import __version__
from waylay_jobs.airflow.provider import CONN_TYPE, UI_FIELD_BEHAVIOUR, get_provider_info


def _provider_entry_points() -> list[EntryPoint]:
    everything: Any = entry_points()
    if hasattr(everything, "select"):  # Python >= 3.10
        return list(everything.select(group="apache_airflow_provider"))
    # Python 3.9: a dict, and a distribution seen twice (the editable install's metadata and
    # the egg-info in the working directory) lists its entry points twice.
    return list(dict.fromkeys(everything.get("apache_airflow_provider", ())))


def test_the_entry_point_names_get_provider_info() -> None:
    found = [ep for ep in _provider_entry_points() if ep.value.startswith("waylay_jobs.")]

    assert [ep.value for ep in found] == ["waylay_jobs.airflow.provider:get_provider_info"]
    assert found[0].load() is get_provider_info


def test_the_provider_info_describes_the_package_and_its_connection_type() -> None:
    info = get_provider_info()

    assert info["package-name"] == "waylay-jobs"  # Airflow refuses a name that differs
    assert info["versions"] == [__version__]
    [conn] = info["connection-types"]
    assert conn["connection-type"] == CONN_TYPE == "waylay"
    assert conn["hook-class-name"] == "waylay_jobs.airflow.hooks.WaylayJobsHook"
    assert conn["ui-field-behaviour"] == {
        "hidden-fields": UI_FIELD_BEHAVIOUR["hidden_fields"],
        "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }
    modules = {
        m for key in ("hooks", "sensors", "triggers") for m in info[key][0]["python-modules"]
    }
    assert modules == {
        "waylay_jobs.airflow.hooks",
        "waylay_jobs.airflow.sensors",
        "waylay_jobs.airflow.triggers",
    }


def _import_error(fake_airflow: str) -> str:
    """What ``WaylayJobSensor`` raises when ``fake_airflow`` (code) has set up ``airflow``."""
    code = (
        "import sys, types\n"
        f"{fake_airflow}\n"
        "import waylay_jobs.airflow as af, waylay_jobs.airflow.provider\n"
        "try:\n    af.WaylayJobSensor\nexcept ImportError as exc:\n    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return proc.stdout.rstrip()


def test_without_airflow_the_names_fail_naming_the_versions() -> None:
    # sys.modules["airflow"] = None makes every airflow import fail, installed or not.
    message = _import_error("sys.modules['airflow'] = None")

    assert message.startswith("waylay_jobs.airflow needs Apache Airflow 2.11 or 3.x, found none (")
    assert message.endswith("install Apache Airflow first, with its constraints file")


def test_an_older_airflow_is_refused_without_advice_that_would_upgrade_it() -> None:
    message = _import_error(
        "sys.modules['airflow'] = types.ModuleType('airflow')\n"
        "sys.modules['airflow'].__version__ = '2.10.5'"
    )

    assert message.startswith(
        "waylay_jobs.airflow needs Apache Airflow 2.11 or 3.x, found 2.10.5: upgrade Airflow "
        "itself first"
    )
    assert "constraints file" in message
    assert "pip install 'waylay-jobs[airflow]'" not in message

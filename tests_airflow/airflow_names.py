"""The Airflow names the tests use, from where the running Airflow (2.11 or 3.x) keeps them.

The package's own names come from ``waylay_jobs.airflow._sdk`` (the one version switch of the
library); the names only the tests need are chosen here the same way. Imported by the test
modules, after ``conftest`` has set up the throw-away ``AIRFLOW_HOME``.
"""

from __future__ import annotations

from waylay_jobs.airflow._sdk import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_VERSION,
    AirflowFailException,
    BaseHook,
)

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import Connection
    from airflow.sdk.module_loading import import_string
else:
    from airflow.models.connection import Connection
    from airflow.utils.module_loading import import_string

#: Where Airflow's task exceptions live, as a task's log names them.
EXCEPTIONS = "airflow.sdk.exceptions" if AIRFLOW_V_3_0_PLUS else "airflow.exceptions"

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_0_PLUS",
    "EXCEPTIONS",
    "AirflowFailException",
    "BaseHook",
    "Connection",
    "import_string",
]

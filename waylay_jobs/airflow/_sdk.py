"""The Airflow names this package uses, imported once, with a clear error without Airflow 3."""

from __future__ import annotations

try:
    from airflow.sdk import BaseHook, BaseSensorOperator, Context, PokeReturnValue
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
        AirflowTaskTerminated,
    )
    from airflow.triggers.base import BaseTrigger, TriggerEvent
except ImportError as exc:  # no Airflow, or Airflow 2 (no task SDK)
    raise ImportError(
        f"waylay_jobs.airflow needs Apache Airflow 3 (airflow.sdk): {exc}; "
        "install it with: pip install 'waylay-jobs[airflow]'"
    ) from exc

try:
    from airflow.sdk import conf
except ImportError:  # Airflow 3.0: the task SDK has no configuration of its own yet
    from airflow.configuration import conf

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AirflowTaskTerminated",
    "BaseHook",
    "BaseSensorOperator",
    "BaseTrigger",
    "Context",
    "PokeReturnValue",
    "TriggerEvent",
    "conf",
]

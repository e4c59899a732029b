"""The Airflow names this package uses, from where the running Airflow keeps them.

Airflow 3 moved what a provider imports into its task SDK (``airflow.sdk``); Airflow 2.11 has
the same names in ``airflow.hooks.base``, ``airflow.sensors.base``, ``airflow.exceptions`` and
``airflow.utils.context``. As the official providers do (their ``version_compat`` modules and
``apache-airflow-providers-common-compat``), the choice is made once, here, by Airflow's
version; ``BaseTrigger`` and ``TriggerEvent`` live in ``airflow.triggers.base`` in both.

Supported: Apache Airflow 2.11 and 3.x. An older Airflow (or none) is refused with an
``ImportError`` that names the versions, and that does not advise an install which would
upgrade the user's Airflow without its constraints.
"""

from __future__ import annotations

import re
from typing import Any, Callable

#: The oldest Airflow this package supports.
MIN_AIRFLOW = (2, 11, 0)
_SUPPORTED = "Apache Airflow 2.11 or 3.x"
_HINT = (
    "upgrade Airflow itself first, following its upgrade guide and with its constraints file "
    "(installing 'waylay-jobs[airflow]' alone would not pin Airflow's dependencies); "
    "JobsClient.wait_for in a task works on any Airflow version meanwhile"
)


def version_tuple(version: str) -> tuple[int, int, int]:
    """``(major, minor, micro)`` of a version string (``"3.0.0rc1"`` -> ``(3, 0, 0)``)."""
    parts = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if parts is None:
        raise ValueError(f"expected a version such as 2.11.0, got {version!r}")
    major, minor, micro = (int(part or 0) for part in parts.groups())
    return major, minor, micro


try:
    from airflow import __version__ as AIRFLOW_VERSION  # noqa: N812 - a constant
except ImportError as exc:
    raise ImportError(
        f"waylay_jobs.airflow needs {_SUPPORTED}, found none ({exc}); install Apache Airflow "
        "first, with its constraints file"
    ) from exc

if version_tuple(AIRFLOW_VERSION) < MIN_AIRFLOW:
    raise ImportError(f"waylay_jobs.airflow needs {_SUPPORTED}, found {AIRFLOW_VERSION}: {_HINT}")

#: Airflow 3 or later: the task SDK (``airflow.sdk``) holds the provider-facing names.
AIRFLOW_V_3_0_PLUS = version_tuple(AIRFLOW_VERSION) >= (3, 0, 0)

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import BaseHook, BaseSensorOperator, Context, PokeReturnValue
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
        AirflowTaskTerminated,
    )

    try:
        from airflow.sdk import conf
    except ImportError:  # Airflow 3.0: the task SDK has no configuration of its own yet
        from airflow.configuration import conf
else:
    from airflow.configuration import conf  # type: ignore[no-redef,unused-ignore]
    from airflow.exceptions import (  # type: ignore[no-redef,unused-ignore]
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
        AirflowTaskTerminated,
    )
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,unused-ignore]
    from airflow.sensors.base import (  # type: ignore[no-redef,unused-ignore]
        BaseSensorOperator,
        PokeReturnValue,
    )
    from airflow.utils.context import Context  # type: ignore[no-redef,unused-ignore]

from airflow.triggers.base import BaseTrigger, TriggerEvent  # noqa: E402 - after the version check


async def aget_connection(hook: Any, conn_id: str) -> Any:
    """``hook.aget_connection(conn_id)`` where the task SDK has it (Airflow 3.1+), else
    ``hook.get_connection`` in a thread (``asgiref.sync_to_async``, as the official providers'
    triggers do on Airflow 2 and 3.0), so that the event loop is not blocked."""
    native: Callable[[str], Any] | None = getattr(hook, "aget_connection", None)
    if native is not None:
        return await native(conn_id)
    from asgiref.sync import sync_to_async

    return await sync_to_async(hook.get_connection)(conn_id)


__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_0_PLUS",
    "MIN_AIRFLOW",
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
    "aget_connection",
    "conf",
    "version_tuple",
]

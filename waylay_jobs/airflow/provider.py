"""The provider information Airflow reads through the ``apache_airflow_provider`` entry point.

With it, ``airflow providers list`` names this package and the connection type ``waylay``
appears in the UI with its own labels. This module imports nothing from Airflow (Airflow
imports it while it discovers providers).
"""

from __future__ import annotations

from typing import Any

from .._version import __version__

#: The connection type of :class:`~waylay_jobs.airflow.hooks.WaylayJobsHook`.
CONN_TYPE = "waylay"
#: The display name of the connection type.
HOOK_NAME = "Waylay"

#: How the connection form shows the fields (the hook's ``get_ui_field_behaviour``; Airflow
#: 3.2+ reads the same from the provider information, in kebab-case keys).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": [],
    "relabeling": {
        "host": "Gateway URL",
        "schema": "Scheme",
        "login": "API key",
        "password": "API secret",
    },
    "placeholders": {
        "host": "https://api.waylay.io",
        "schema": "https (the default); http for a plain-HTTP gateway",
        "port": "only when the gateway URL has none",
        "login": "API key (or leave empty and put a token in Extra)",
        "password": "API secret",
        "extra": '{"token": "<bearer token, instead of the key pair>", '
        '"tenant_id": "<tenant of an application key pair>"}',
    },
}

_INTEGRATION = "Waylay"


def get_provider_info() -> dict[str, Any]:
    """The provider information (the runtime schema of ``airflow/provider_info.schema.json``)."""
    behaviour = {key.replace("_", "-"): value for key, value in UI_FIELD_BEHAVIOUR.items()}
    return {
        "package-name": "waylay-jobs",
        "name": "Waylay Jobs",
        "description": "Wait for Waylay Function Registry jobs: a deferrable sensor whose "
        "trigger follows the job's event stream, and a hook for the `waylay` connection type.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://docs.waylay.io/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": _INTEGRATION, "python-modules": ["waylay_jobs.airflow.hooks"]}
        ],
        "sensors": [
            {"integration-name": _INTEGRATION, "python-modules": ["waylay_jobs.airflow.sensors"]}
        ],
        "triggers": [
            {"integration-name": _INTEGRATION, "python-modules": ["waylay_jobs.airflow.triggers"]}
        ],
        "connection-types": [
            {
                "hook-class-name": "waylay_jobs.airflow.hooks.WaylayJobsHook",
                "hook-name": HOOK_NAME,
                "connection-type": CONN_TYPE,
                "ui-field-behaviour": behaviour,
            }
        ],
    }

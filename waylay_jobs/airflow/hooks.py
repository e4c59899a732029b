"""``WaylayJobsHook``: the ``waylay`` connection type, and clients from Airflow connections.

The connection (type *Waylay*; any other type with the same fields works too):

=============  ======================================================================
``host``       the gateway: ``https://api.waylay.io`` (``https://`` is the default scheme;
               write ``http://...`` in ``host``, or set ``schema`` to ``http``, for plain HTTP)
``port``       optional, when the gateway URL in ``host`` carries none
``login``      an API key, with ``password`` the API secret
``password``   the API secret
``extra``      ``{"token": "..."}``: a bearer token, used instead of the key pair;
               ``{"tenant_id": "..."}``: the tenant of an application key pair
=============  ======================================================================

Without a connection id, the client comes from the ``WAYLAY_*`` environment variables
(:meth:`JobsClient.from_env`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import urlsplit

from .._client import JobsClient
from .._config import Credentials, credentials_from_env
from .._exceptions import ConfigError, JobsError
from .._http.blocking import DEFAULT_GATEWAY_URL
from ._sdk import BaseHook, aget_connection
from .provider import CONN_TYPE, HOOK_NAME, UI_FIELD_BEHAVIOUR

__all__ = [
    "WaylayJobsHook",
    "client_from_connection",
    "credentials_from_connection",
]


def credentials_from_connection(conn: Any) -> Credentials:
    """The gateway and credentials an Airflow ``Connection`` describes (see the module doc).

    A ``token`` in the extra wins over ``login``/``password``, as ``WAYLAY_TOKEN`` wins over
    the key pair in the environment.

    Raises:
        ConfigError: only one of the API key and secret is set, or the extra is not usable.
    """
    name = f"Airflow connection {getattr(conn, 'conn_id', None)!r}"
    extra = conn.extra_dejson or {}
    if not isinstance(extra, Mapping):
        raise ConfigError(
            f"{name}: expected the extra to be a JSON object, got {type(extra).__name__}"
        )
    token = _extra_string(name, extra, "token")
    tenant_id = _extra_string(name, extra, "tenant_id")
    source = name
    gateway = _gateway_url(conn.host, conn.schema, conn.port)
    if token:
        return Credentials(gateway_url=gateway, token=token, source=source)
    key, secret = conn.login or None, conn.password or None
    if (key is None) != (secret is None):
        present, missing = ("login", "password") if key else ("password", "login")
        raise ConfigError(
            f"{name}: {present} is set but {missing} is not; expected the API key in login "
            "and its secret in password, or a token in the extra"
        )
    return Credentials(
        gateway_url=gateway, api_key=key, api_secret=secret, tenant_id=tenant_id, source=source
    )


def _extra_string(name: str, extra: Mapping[str, Any], key: str) -> Optional[str]:
    value = extra.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(
            f"{name}: expected extra {key!r} to be a string, got {type(value).__name__}"
        )
    return value


def _gateway_url(host: Optional[str], schema: Optional[str], port: Optional[int]) -> str:
    if not host:
        return DEFAULT_GATEWAY_URL
    url = host.strip()
    if "://" not in url:
        # Secure by default: only an explicit schema of "http" gives plain HTTP.
        scheme = "http" if (schema or "").lower() == "http" else "https"
        url = f"{scheme}://{url}"
    parts = urlsplit(url)
    if port and parts.port is None:
        url = parts._replace(netloc=f"{parts.netloc}:{port}").geturl()
    return url


class WaylayJobsHook(BaseHook):  # type: ignore[misc,unused-ignore]
    """A Waylay connection: its credentials, a :class:`JobsClient`, and a connection test.

    Args:
        waylay_conn_id: the Airflow connection (see the module doc), ``waylay_default`` by
            default; ``None`` reads the ``WAYLAY_*`` environment variables instead (what the
            sensor and the trigger do without a connection id).

    Example::

        with WaylayJobsHook(waylay_conn_id="waylay_default").get_conn() as client:
            job = client.get("build", job_id)
    """

    conn_name_attr = "waylay_conn_id"
    default_conn_name = "waylay_default"
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(self, waylay_conn_id: Optional[str] = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.waylay_conn_id = waylay_conn_id

    def get_credentials(self) -> Credentials:
        """The connection's gateway and credentials (or the environment's, without an id).

        Raises:
            ConfigError: the connection or the environment is not usable.
        """
        if self.waylay_conn_id is None:
            return credentials_from_env()
        return credentials_from_connection(self.get_connection(self.waylay_conn_id))

    async def aget_credentials(self) -> Credentials:
        """:meth:`get_credentials` for async code (a trigger): the connection is read
        without blocking the event loop."""
        if self.waylay_conn_id is None:
            return credentials_from_env()
        return credentials_from_connection(await aget_connection(self, self.waylay_conn_id))

    def get_conn(self, **options: Any) -> JobsClient:
        """A new client for the connection; close it (``with``) when done.

        ``options`` go to the ``JobsClient`` constructor (``timeout``, ``retries``, ``session``).
        """
        return JobsClient.from_credentials(self.get_credentials(), **options)

    def test_connection(self) -> tuple[bool, str]:
        """One authenticated request (list one job, no retries): Airflow's *Test* button.

        Returns ``(True, message)`` when the gateway accepted the credentials, else
        ``(False, what went wrong)``; the message never contains a secret.
        """
        try:
            with self.get_conn(retries=0, timeout=(10.0, 20.0)) as client:
                client.list(limit=1)
                gateway = client.gateway_url
        except JobsError as exc:
            return False, str(exc)
        return True, f"Connected to {gateway}: the Jobs API accepted the credentials"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form's labels and placeholders (Airflow 2.11 to 3.1 ask the hook)."""
        return copy.deepcopy(UI_FIELD_BEHAVIOUR)


def client_from_connection(conn_id: Optional[str] = None, **options: Any) -> JobsClient:
    """A client for the Airflow connection ``conn_id``, or from the environment without one
    (``WaylayJobsHook(conn_id).get_conn(**options)``).

    ``options`` go to the ``JobsClient`` constructor (``timeout``, ``retries``, ``session``).
    Use it as a context manager so its connections are closed::

        with client_from_connection("waylay_default") as client:
            job = client.get("build", job_id)
    """
    return WaylayJobsHook(waylay_conn_id=conn_id).get_conn(**options)

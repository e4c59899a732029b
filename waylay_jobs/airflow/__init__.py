"""Apache Airflow integration: a job sensor, a wait helper for tasks, and Airflow connections.

Needs Airflow 3 (``pip install 'waylay-jobs[airflow]'``); the rest of ``waylay_jobs`` never
imports Airflow. Three ways to wait for a Waylay job in a DAG:

* :func:`wait_for_job` in a ``@task``: follows the job's event stream (prompt, one request
  for the whole wait), logs its progress on the ``waylay_jobs`` logger, fails the task without
  retry when the job fails, and stops at once on ``execution_timeout`` or a task kill.
* :class:`WaylayJobSensor`: one ``get`` per poke; in ``mode="reschedule"`` it holds no worker
  slot and no connection between pokes. Pushes :func:`job_summary` to XCom.
* ``client.wait_for`` in a ``@task``, with a client from :func:`client_from_connection`.

The Airflow connection (any connection type; *Generic* or *HTTP* will do):

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

import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType
from typing import Any, Callable, Optional, Union
from urllib.parse import urlsplit

try:
    from airflow.sdk import BaseHook, BaseSensorOperator, Context, PokeReturnValue
    from airflow.sdk.exceptions import AirflowFailException, AirflowTaskTerminated
except ImportError as exc:  # no Airflow, or Airflow 2 (no task SDK)
    raise ImportError(
        f"waylay_jobs.airflow needs Apache Airflow 3 (airflow.sdk): {exc}; "
        "install it with: pip install 'waylay-jobs[airflow]'"
    ) from exc

from .._client import JobsClient
from .._config import Credentials
from .._exceptions import ConfigError, JobFailed, NotFoundError
from .._http import DEFAULT_GATEWAY_URL
from .._models import Event, JobResponse

__all__ = [
    "WaylayJobSensor",
    "client_from_connection",
    "credentials_from_connection",
    "job_summary",
    "wait_for_job",
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


def client_from_connection(conn_id: Optional[str] = None, **options: Any) -> JobsClient:
    """A client for the Airflow connection ``conn_id``, or from the environment without one.

    ``options`` go to the ``JobsClient`` constructor (``timeout``, ``retries``, ``session``).
    Use it as a context manager so its connections are closed::

        with client_from_connection("waylay_default") as client:
            job = client.get("build", job_id)
    """
    if conn_id is None:
        return JobsClient.from_env(**options)
    credentials = credentials_from_connection(BaseHook.get_connection(conn_id))
    return JobsClient.from_credentials(credentials, **options)


def job_summary(job: JobResponse) -> dict[str, Any]:
    """A small JSON document about a job, for XCom: type, id, state, result and the like."""
    wire = job.job.to_wire()
    status = wire.get("job") or {}
    return {
        "type": wire.get("type"),
        "id": status.get("id"),
        "state": wire.get("state"),
        "operation": wire.get("operation"),
        "function": wire.get("function"),
        "created_at": wire.get("createdAt"),
        "finished_at": wire.get("finishedAt"),
        "attempts_made": wire.get("attemptsMade"),
        "failed_reason": status.get("failedReason"),
        "result": wire.get("result"),
    }


def wait_for_job(
    job: Any,
    conn_id: Optional[str] = None,
    timeout: Union[float, timedelta, None] = None,
    *,
    children: bool = False,
    on_event: Optional[Callable[[Event], Any]] = None,
) -> JobResponse:
    """``client.wait_for`` for a ``@task``: returns the final job, or fails the task.

    Args:
        job: anything ``JobsClient.wait_for`` accepts, or a mapping with ``type`` and ``id``
            (such as :func:`job_summary`'s, pulled from XCom).
        conn_id: the Airflow connection to use; ``None`` reads the ``WAYLAY_*`` variables.
        timeout: overall deadline (seconds or a ``timedelta``); ``None`` waits as long as the
            job runs. Airflow's ``execution_timeout`` stops the wait too.
        children, on_event: as for ``JobsClient.wait_for``.

    Raises:
        AirflowFailException: the job failed (the message carries its ``failedReason``);
            the task is not retried, as a retry would only find the same failed job.
        AirflowTaskTerminated: the task was killed (SIGTERM) during the wait.
        WaitTimeout, JobsError: as ``JobsClient.wait_for``; the task may be retried.

    While it waits in the main thread, a SIGTERM (Airflow's task kill) runs Airflow's own
    handler and then ends the wait at once; the connection is closed either way.

    Example::

        @task(execution_timeout=timedelta(hours=1))
        def deploy_done(job_id: str) -> dict:
            return job_summary(wait_for_job(("deploy", job_id), conn_id="waylay_default"))
    """
    if isinstance(job, Mapping):
        job = (job.get("type"), job.get("id"))
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    with client_from_connection(conn_id) as client, _stop_on_sigterm():
        try:
            return client.wait_for(job, timeout=seconds, children=children, on_event=on_event)
        except JobFailed as exc:
            raise AirflowFailException(str(exc)) from exc


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Make SIGTERM raise ``AirflowTaskTerminated`` after Airflow's own handler has run.

    Airflow 3's task runner only calls ``on_kill`` on SIGTERM and sends SIGKILL seconds later;
    raising instead ends the wait now, and the stream is closed on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield
        return

    def on_term(signum: int, frame: Optional[FrameType]) -> None:
        if callable(previous):
            previous(signum, frame)
        raise AirflowTaskTerminated("received SIGTERM while waiting for a Waylay job")

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


class WaylayJobSensor(BaseSensorOperator):  # type: ignore[misc,unused-ignore]
    """Wait for a Waylay job: succeed when it completes, fail (no retry) when it fails.

    Each poke creates a client, sends one ``get`` and closes the client, so in
    ``mode="reschedule"`` nothing is held between pokes. On ``completed`` the sensor pushes
    :func:`job_summary` of the final job as its XCom return value; on ``failed`` it raises
    ``AirflowFailException`` with the job's ``failedReason`` (a skip with ``soft_fail=True``).
    An unknown job fails the same way. Every other error fails the poke as usual (retried
    per ``retries``, or ignored with ``silent_fail``).

    Args:
        job_type: the job type (``build``, ``deploy``, ...); templated.
        job_id: the job id; templated (say ``"{{ ti.xcom_pull('start')['id'] }}"``).
        waylay_conn_id: the Airflow connection (see the module doc); ``None`` reads the
            ``WAYLAY_*`` environment variables.
        **kwargs: the usual sensor options: ``poke_interval``, ``timeout``, ``mode``,
            ``soft_fail``, ``exponential_backoff``, ...
    """

    template_fields: Sequence[str] = ("job_type", "job_id", "waylay_conn_id")
    ui_color = "#d9ecff"

    def __init__(
        self,
        *,
        job_type: str,
        job_id: str,
        waylay_conn_id: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_type = job_type
        self.job_id = job_id
        self.waylay_conn_id = waylay_conn_id

    def poke(self, context: Context) -> PokeReturnValue:
        """Check the job once."""
        with client_from_connection(self.waylay_conn_id) as client:
            try:
                job = client.get(self.job_type, self.job_id)
            except NotFoundError as exc:
                raise AirflowFailException(str(exc)) from exc
        details = job.job
        label = f"{self.job_type} job {self.job_id}"
        if details.state == "completed":
            self.log.info("%s completed", label)
            return PokeReturnValue(is_done=True, xcom_value=job_summary(job))
        if details.state == "failed":
            reason = details.job.failed_reason or "the server gave no reason"
            raise AirflowFailException(f"{label} failed: {reason}")
        progress = details.job.numeric_progress
        self.log.info(
            "%s is %s%s",
            label,
            details.state or "in an unknown state",
            "" if progress is None else f", progress {progress:g}",
        )
        return PokeReturnValue(is_done=False)

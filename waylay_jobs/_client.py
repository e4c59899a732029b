"""``JobsClient``: the one entry point; one short method per endpoint."""

from __future__ import annotations

import builtins
import re
import threading
from collections.abc import Generator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Literal, overload

import requests

from ._checks import check_seconds
from ._config import Credentials, credentials_from_env, load_profile
from ._defaults import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_EVENT_SIZE, DEFAULT_POLL_INTERVAL
from ._endpoints import JOBS_PATH, job_path, open_events
from ._events import EventStream
from ._exceptions import InvalidArgument
from ._http.auth import ApiKeyAuth, TokenAuth
from ._http.blocking import (
    DEFAULT_GATEWAY_URL,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    Timeout,
    Transport,
    json_body,
)
from ._models import Event, JobResponse, JobsResponse, decode_job_response, decode_jobs_response
from ._query import encode_events_query, encode_list_query

if TYPE_CHECKING:
    from ._wait.machine import WaitOptions

_INDEX = re.compile(r"\[(-?\d+)\]")
_NUMBER = re.compile(r"-?\d+")


class JobsClient:
    """A blocking client for the Waylay Function Registry Jobs API.

    Args:
        gateway_url: the Waylay gateway (``https://`` is added when there is no scheme).
        token: a bearer token, used as is.
        api_key, api_secret: an API key pair, exchanged for a token that is renewed before it
            expires and once after a 401.
        tenant_id: with an application key pair: the tenant (``application_credentials``).
        accounts_url: legacy profiles only: the token endpoint prefix instead of the gateway's.
        session: a ``requests.Session`` to use (proxies, TLS, adapters); the client then does
            not close it. By default the client creates one and closes it in :meth:`close`.
        timeout: (connect, read) seconds for ordinary requests, or one number for both.
        retries: how many times a failed GET is retried (connection errors, 408, 429, 500,
            502, 503, 504).

    With neither a token nor a key pair, requests are sent without credentials (a local
    fake registry needs none). Use it as a context manager, or call :meth:`close`.

    Example::

        with JobsClient.from_profile() as client:
            for job in client.list(state=["failed"], limit=10).jobs:
                print(job.type, job.id, job.state)
    """

    def __init__(
        self,
        gateway_url: str = DEFAULT_GATEWAY_URL,
        *,
        token: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        tenant_id: str | None = None,
        accounts_url: str | None = None,
        session: requests.Session | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        if token is not None and (api_key is not None or api_secret is not None):
            raise InvalidArgument("expected either token= or api_key=/api_secret=, got both")
        if (api_key is None) != (api_secret is None):
            raise InvalidArgument("expected api_key= and api_secret= together, got only one")
        self._transport = Transport(gateway_url, session=session, timeout=timeout, retries=retries)
        built = False
        try:
            if token is not None:
                self._transport.auth = TokenAuth(token)
            elif api_key is not None and api_secret is not None:
                self._transport.auth = ApiKeyAuth(
                    self._transport.gateway_url,
                    api_key,
                    api_secret,
                    session=self._transport.session,
                    accounts_url=accounts_url,
                    tenant_id=tenant_id,
                    timeout=self._transport.timeout,
                )
            built = True
        finally:
            if not built:  # bad credentials: do not leave the session behind
                self._transport.close()

    @classmethod
    def from_credentials(cls, credentials: Credentials, **options: Any) -> JobsClient:
        """A client for resolved :class:`Credentials`; ``options`` as for the constructor."""
        return cls(
            credentials.gateway_url,
            token=credentials.token,
            api_key=credentials.api_key,
            api_secret=credentials.api_secret,
            tenant_id=credentials.tenant_id,
            accounts_url=credentials.accounts_url,
            **options,
        )

    @classmethod
    def from_profile(
        cls,
        name: str | None = None,
        *,
        session: requests.Session | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> JobsClient:
        """A client from an official Waylay SDK profile file (default profile ``_default_``).

        Raises:
            ConfigError: the profile is missing or broken (the message names the file).
        """
        return cls.from_credentials(
            load_profile(name), session=session, timeout=timeout, retries=retries
        )

    @classmethod
    def from_env(
        cls,
        *,
        session: requests.Session | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> JobsClient:
        """A client from ``WAYLAY_GATEWAY_URL``, ``WAYLAY_TOKEN``, ``WAYLAY_API_KEY``,
        ``WAYLAY_API_SECRET`` and ``WAYLAY_PROFILE`` (see ``waylay_jobs._config``).

        Raises:
            ConfigError: nothing usable was found (the message lists the variables).
        """
        return cls.from_credentials(
            credentials_from_env(), session=session, timeout=timeout, retries=retries
        )

    @property
    def gateway_url(self) -> str:
        """The normalised gateway URL."""
        return self._transport.gateway_url

    @property
    def transport(self) -> Transport:
        """The HTTP transport (session, retries, error mapping) this client sends through."""
        return self._transport

    def __repr__(self) -> str:
        return f"JobsClient(gateway_url={self.gateway_url!r}, auth={self._transport.auth!r})"

    def close(self) -> None:
        """Release the connections (and the session, if the client created it)."""
        self._transport.close()

    def __enter__(self) -> JobsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @overload
    def list(
        self,
        query: Mapping[str, Any] | None = ...,
        *,
        type: Any = ...,
        state: Any = ...,
        function_type: Any = ...,
        created_before: Any = ...,
        created_after: Any = ...,
        limit: Any = ...,
        raw_response: Literal[False] = ...,
        select_path: None = ...,
    ) -> JobsResponse: ...

    @overload
    def list(
        self,
        query: Mapping[str, Any] | None = ...,
        *,
        type: Any = ...,
        state: Any = ...,
        function_type: Any = ...,
        created_before: Any = ...,
        created_after: Any = ...,
        limit: Any = ...,
        raw_response: bool = ...,
        select_path: str | None = ...,
    ) -> Any: ...

    def list(
        self,
        query: Mapping[str, Any] | None = None,
        *,
        type: Any = None,
        state: Any = None,
        function_type: Any = None,
        created_before: Any = None,
        created_after: Any = None,
        limit: Any = None,
        raw_response: bool = False,
        select_path: str | None = None,
    ) -> Any:
        """List jobs: ``GET /registry/v2/jobs/``.

        Give the filters either as ``query`` (the wire names: ``type``, ``state``,
        ``functionType``, ``createdBefore``, ``createdAfter``, ``limit``) or as keywords;
        both send the same request. ``type``, ``state`` and ``function_type`` take a string or
        a list; ``created_before``/``created_after`` a ``datetime``, ``date``, ``timedelta``
        (an age) or a string such as ``"1d"``, ``"P1D"`` or ``"2024-05-01"``.

        Args:
            raw_response: return the ``requests.Response`` as it is, without checking it.
            select_path: return only this part of the JSON document (``"jobs.0.id"``).

        Returns:
            A ``JobsResponse`` (``.jobs``, ``.limit``), unless one of the options says otherwise.

        Raises:
            InvalidArgument: a bad filter, before anything is sent.
            AuthError, ApiError, TransportError: see ``waylay_jobs._exceptions``.
        """
        _check_options(raw_response, select_path)
        params = encode_list_query(
            query,
            type=type,
            state=state,
            function_type=function_type,
            created_before=created_before,
            created_after=created_after,
            limit=limit,
        )
        response = self._transport.get_json(JOBS_PATH, params, raw_response=raw_response)
        if raw_response:
            return response
        document = json_body(response)
        if select_path is not None:
            return select(document, select_path)

        return decode_jobs_response(document)

    @overload
    def get(
        self,
        type: Any,
        id: str,
        *,
        raw_response: Literal[False] = ...,
        select_path: None = ...,
    ) -> JobResponse: ...

    @overload
    def get(
        self,
        type: Any,
        id: str,
        *,
        raw_response: bool = ...,
        select_path: str | None = ...,
    ) -> Any: ...

    def get(
        self,
        type: Any,
        id: str,
        *,
        raw_response: bool = False,
        select_path: str | None = None,
    ) -> Any:
        """Get one job: ``GET /registry/v2/jobs/{type}/{id}``.

        Args:
            type: the job type (``"build"``, a ``JobType``, or a newer type's name).
            id: the job id; any characters, sent as one percent-encoded path segment.
            raw_response, select_path: as for :meth:`list`.

        Returns:
            A ``JobResponse`` (``.job.state``, ``.job.job.id``, ``.links`` ...).

        Raises:
            InvalidArgument: an empty id or a type that is not a string.
            NotFoundError: no such job. AuthError, ApiError, TransportError: as for :meth:`list`.
        """
        _check_options(raw_response, select_path)
        response = self._transport.get_json(job_path(type, id), (), raw_response=raw_response)
        if raw_response:
            return response
        document = json_body(response)
        if select_path is not None:
            return select(document, select_path)

        return decode_job_response(document)

    def events(
        self,
        query: Mapping[str, Any] | None = None,
        *,
        type: Any = None,
        id: Any = None,
        children: Any = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> EventStream:
        """Subscribe to job events: ``GET /registry/v2/jobs/events`` (Server-Sent Events).

        The request is sent at once; events are read as you iterate, each one handed over as
        soon as its bytes arrive, whatever the response framing.

        Args:
            query: ``{"type": ..., "id": ..., "children": ...}``, or use the keywords.
            type: one job type. id: one job id (then the server ends with ``close``).
            children: also the events of the job's dependants.
            idle_timeout: seconds without a byte (not even a keep-alive) after which the
                connection is presumed dead and :class:`IdleTimeout` is raised.
            max_event_size: the largest event accepted, in bytes; a larger one raises
                :class:`EventTooLarge` and closes the connection.

        Returns:
            An :class:`EventStream`: iterate it for ``AckEvent``, ``KeepAliveEvent``,
            ``JobEvent``, ``CloseEvent`` and ``UnknownEvent`` objects (``.event`` is the wire
            name, ``.data`` the text or the decoded job event). It ends after ``close``.
            Use it in a ``with`` block, or ``close()`` it; ``cancel()`` from another thread
            unblocks a waiting read.

        Raises:
            InvalidArgument: a bad filter, before anything is sent.
            AuthError, NotFoundError, ApiError: an error status, or a response that is not
                ``text/event-stream`` (the same exceptions as :meth:`get`).
            TransportError: the request failed.
            While iterating: ``EventDecodeError`` (a job event that is not valid JSON),
            ``EventTooLarge``, ``StreamInterrupted`` (the stream ended before ``close``) and
            ``IdleTimeout``.

        Example::

            with client.events(type="build", id=job_id) as stream:
                for event in stream:
                    print(event.event, getattr(event.data, "job", event.data))
        """
        check_seconds("idle_timeout", idle_timeout)
        if (
            isinstance(max_event_size, bool)
            or not isinstance(max_event_size, int)
            or (max_event_size <= 0)
        ):
            raise InvalidArgument(
                f"expected max_event_size to be a number of bytes > 0, got {max_event_size!r}"
            )
        params = encode_events_query(query, type=type, id=id, children=children)
        return open_events(
            self._transport, params, read_timeout=idle_timeout, max_event_size=max_event_size
        )

    def wait_for(
        self,
        job: Any,
        *,
        timeout: float | None = None,
        raise_on_failure: bool = True,
        on_event: Callable[[Event], Any] | None = None,
        children: bool = False,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        cancel: threading.Event | None = None,
    ) -> JobResponse:
        """Block until the job ends, and return its final ``JobResponse``.

        The waiter subscribes to the job's events first and then checks its state with
        :meth:`get`, so a job that already ended returns at once and nothing sent in between
        is missed. After ``close`` it confirms the final state with :meth:`get` (a ``failed``
        that is followed by a retry is not the end). A dropped or silent connection, a server
        error or a malformed event makes it check the state again and reconnect, with
        exponential backoff and full jitter; when the stream keeps failing it polls
        :meth:`get` instead (and logs that it does). State changes are logged on the
        ``waylay_jobs`` logger at INFO.

        Args:
            job: a job id (the job type is then found by trying ``get`` for each job type
                in turn), a ``(type, id)`` pair, a ``JobReference``, a list item, a
                ``JobResponse``, or a job href (``.../registry/v2/jobs/<type>/<id>`` or its
                event link).
            timeout: one overall deadline in seconds for the whole wait: resolving a bare id,
                the token exchange, every ``get`` and subscription (their connect and read
                timeouts are cut to the time left), every retry and reconnect pause. A
                ``Retry-After`` longer than the time left ends the wait at once. ``None``
                waits as long as the job runs (a dead connection is still noticed through
                ``idle_timeout``).
            raise_on_failure: raise :class:`JobFailed` when the job ends ``failed``
                (default); with ``False`` the failed job is returned.
            on_event: called with every event received (``ack`` and keep-alives included).
            children: also follow (and pass to ``on_event``) the events of child jobs.
            idle_timeout: seconds without a byte before the connection is presumed dead.
            poll_interval: seconds between polls once the stream has been given up.
            cancel: a ``threading.Event``; setting it (from any thread) ends the wait with
                :class:`WaitCancelled`, unblocking a stream read in progress at once (a
                ``get`` in flight is let finish, within its timeout).

        Returns:
            The final ``JobResponse`` (state ``completed``, or ``failed`` when
            ``raise_on_failure=False``).

        Raises:
            JobFailed: the job ended failed (``.job``, ``.reason``).
            WaitTimeout: ``timeout`` passed (a ``TimeoutError``; ``.last_job``,
                ``.last_state``).
            WaitCancelled: the ``cancel`` event was set.
            NotFoundError, AuthError: the job does not exist, or access was refused.
            TransportError: the gateway never answered during the wait (connections refused,
                DNS or TLS failures, after the transport's retries); once it has answered,
                outages are ridden out until the deadline.
            InvalidArgument: ``job`` or an option is not usable.

        Example::

            final = client.wait_for(("build", job_id), timeout=600)
            print(final.job.state, final.job.result)
        """
        from ._wait.blocking import wait_for
        from ._wait.machine import WaitOptions

        options = WaitOptions(
            timeout=timeout,
            raise_on_failure=raise_on_failure,
            on_event=on_event,
            children=children,
            idle_timeout=idle_timeout,
            poll_interval=poll_interval,
            cancel=cancel,
        )
        return wait_for(self._transport, job, options)

    def wait_all(
        self,
        jobs: Iterable[Any],
        *,
        timeout: float | None = None,
        raise_on_failure: bool = True,
        on_event: Callable[[Event], Any] | None = None,
        children: bool = False,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        cancel: threading.Event | None = None,
    ) -> builtins.list[JobResponse]:
        """Block until every job has ended, over one event stream; return the final jobs.

        Many jobs, one subscription: the tenant's event stream (restricted to the job type
        when all the jobs share one), demultiplexed by ``(type, id)``, instead of one
        connection per job. As :meth:`wait_for`, it subscribes first and then checks the
        state of every job (one :meth:`list` per job type where two or more share it, else
        :meth:`get`), so jobs that already ended count at once; it confirms every end seen
        on the stream with :meth:`get`; after a dropped, silent or refused stream it checks
        the jobs still pending and reconnects with backoff, and when the stream keeps failing
        it polls with :meth:`list` (filtered on the final states and the jobs' creation time).
        Every state change of any job is logged on the ``waylay_jobs`` logger at INFO.

        Args:
            jobs: any mix of what :meth:`wait_for` accepts (ids, ``(type, id)`` pairs,
                references, list items, responses, hrefs). A job given twice comes back at
                both positions; an empty list returns ``[]`` at once.
            timeout: one deadline in seconds for the whole call (resolving bare ids, every
                request, every pause).
            raise_on_failure: raise :class:`JobsFailed` when any job ended failed (default),
                once all have ended; with ``False`` the failed jobs are returned.
            on_event: called with the stream's ``ack`` and keep-alives and with every event
                of the jobs waited for.
            children: pass every job event of the tenant stream to ``on_event`` (events do
                not name their parent job, so the children cannot be told apart from other
                jobs; they never end a job waited for either way).
            idle_timeout, poll_interval, cancel: as for :meth:`wait_for`.

        Returns:
            The final ``JobResponse`` of every job, in the order given.

        Raises:
            JobsFailed: one or more jobs ended failed (``.failed``, ``.results``; ``.job`` and
                ``.reason`` are those of the first failed one).
            WaitTimeout: ``timeout`` passed; ``.pending`` holds the jobs that had not ended,
                as they were given.
            NotFoundError: some of the jobs do not exist (the message names them all); raised
                before any job is reported.
            WaitCancelled, AuthError, TransportError, InvalidArgument: as for :meth:`wait_for`.

        Example::

            finals = client.wait_all([("build", a), ("deploy", b), c_id], timeout=600)
        """
        from ._wait.blocking import wait_all

        options = self._wait_options(
            timeout, raise_on_failure, on_event, children, idle_timeout, poll_interval, cancel
        )
        return wait_all(self._transport, jobs, options)

    def as_completed(
        self,
        jobs: Iterable[Any],
        *,
        timeout: float | None = None,
        on_event: Callable[[Event], Any] | None = None,
        children: bool = False,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        cancel: threading.Event | None = None,
    ) -> Generator[JobResponse, None, None]:
        """Yield each final ``JobResponse`` as its job ends, over one event stream.

        The same wait as :meth:`wait_all`, handing over each job as soon as its end is
        confirmed (failed ones included; nothing is raised for them). A job given twice is
        yielded twice. The arguments are checked at once; the requests start with the first
        ``next()``. Leaving the loop early (``break``) closes the stream.

        Raises:
            WaitTimeout: ``timeout`` passed; ``.pending`` holds the jobs that had not ended.
            NotFoundError, WaitCancelled, AuthError, TransportError, InvalidArgument: as for
                :meth:`wait_all`.

        Example::

            for final in client.as_completed(jobs, timeout=600):
                print(final.job.type, final.job.job.id, final.job.state)
        """
        from ._wait.blocking import as_completed

        options = self._wait_options(
            timeout, False, on_event, children, idle_timeout, poll_interval, cancel
        )
        return as_completed(self._transport, jobs, options)

    @staticmethod
    def _wait_options(
        timeout: float | None,
        raise_on_failure: bool,
        on_event: Callable[[Event], Any] | None,
        children: bool,
        idle_timeout: float,
        poll_interval: float,
        cancel: threading.Event | None,
    ) -> WaitOptions:
        from ._wait.machine import WaitOptions

        return WaitOptions(
            timeout=timeout,
            raise_on_failure=raise_on_failure,
            on_event=on_event,
            children=children,
            idle_timeout=idle_timeout,
            poll_interval=poll_interval,
            cancel=cancel,
        )


def select(document: Any, path: str) -> Any:
    """The part of a JSON document at a dot path: ``"job.state"``, ``"jobs.0.id"``, ``"jobs[0]"``.

    List indexes may be negative (``"jobs[-1]"``); ``""`` selects the whole document.

    Raises:
        InvalidArgument: the path does not exist (the message lists what does).
    """
    if path == "":
        return document
    current = document
    walked: list[str] = []
    for step in _INDEX.sub(r".\1", path).split("."):
        where = ".".join(walked) or "the document"
        if isinstance(current, dict):
            if step not in current:
                keys = ", ".join(sorted(map(str, current))) or "none"
                raise InvalidArgument(
                    f"select_path {path!r}: {where} has no key {step!r}; its keys: {keys}"
                )
            current = current[step]
        elif isinstance(current, list):
            if not _NUMBER.fullmatch(step) or not -len(current) <= int(step) < len(current):
                raise InvalidArgument(
                    f"select_path {path!r}: {where} is a list of {len(current)}; "
                    f"expected an index from {-len(current)} to {len(current) - 1}, got {step!r}"
                )
            current = current[int(step)]
        else:
            raise InvalidArgument(
                f"select_path {path!r}: {where} is a {type(current).__name__}, "
                f"not an object or list, so it has no {step!r}"
            )
        walked.append(step)
    return current


def _check_options(raw_response: Any, select_path: Any) -> None:
    if not isinstance(raw_response, bool):
        raise InvalidArgument(f"expected raw_response to be True or False, got {raw_response!r}")
    if select_path is not None and not isinstance(select_path, str):
        raise InvalidArgument(f"expected select_path to be a string, got {select_path!r}")
    if raw_response and select_path is not None:
        raise InvalidArgument("expected one of raw_response=True and select_path, got both")

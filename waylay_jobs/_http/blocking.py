"""The HTTP transport: one ``requests.Session``, the gateway URL, retries and error mapping.

All HTTP knowledge is here: status codes, content types, error bodies and ``Retry-After``
(read by the one retry policy in ``_policy``). GETs are idempotent, so they are retried on
connection errors and transient statuses; streams are never retried here (the waiter decides).
A :class:`~waylay_jobs._policy.Deadline` passed to a request bounds its connect and read
timeouts, its retries and pauses, and the token exchange its auth may need on the way.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.auth import AuthBase
from requests.utils import requote_uri

from .._checks import is_seconds
from .._exceptions import ApiError, AuthError, InvalidArgument, TransportError
from .._policy import Deadline, RetryPolicy, deadline_scope, is_transient, parse_retry_after
from .core import (
    DEFAULT_GATEWAY_URL,
    DEFAULT_TIMEOUT,
    JSON_EXPECTED,
    JSON_HEADERS,
    STREAM_EXPECTED,
    STREAM_HEADERS,
    USER_AGENT,
    VALID_JSON_EXPECTED,
    Answer,
    Params,
    Timeout,
    api_error,
    check_timeout,
    json_accepted,
    normalize_gateway_url,
    plain_http_hint,
    quote_segment,
    request_headers,
    stream_refused,
    transport_error,
)
from .interrupt import InterruptibleAdapter

logger = logging.getLogger("waylay_jobs")

#: Retries (after the first attempt) of a GET that failed in a retryable way.
DEFAULT_RETRIES = RetryPolicy.retries
#: Connections kept per host by the session a client creates (requests' default is 10).
POOL_MAXSIZE = 256

__all__ = [  # what other modules import from here
    "DEFAULT_GATEWAY_URL",
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "Params",
    "Timeout",
    "Transport",
    "json_body",
    "normalize_gateway_url",
    "quote_segment",
]


def json_body(response: requests.Response) -> Any:
    """The parsed JSON body of a response that :meth:`Transport.get_json` accepted."""
    try:
        return json.loads(response.content)
    except ValueError as exc:
        error = error_from_response(response, expected=VALID_JSON_EXPECTED)
        raise error from exc


class Transport:
    """Sends the library's requests over one ``requests.Session``.

    Args:
        gateway_url: the Waylay gateway; ``https://`` is added when there is no scheme.
        auth: a ``requests`` auth (``TokenAuth``, ``ApiKeyAuth``) or ``None``. An auth that
            can renew its token does so itself after a 401 (a response hook).
        session: a session to use; it is then never closed here. By default one is created
            and closed by :meth:`close`.
        timeout: (connect, read) seconds, or one number for both.
        retries: how many times a GET is retried (0 disables retries).
        backoff, max_backoff: the first and largest backoff ceiling in seconds.
        max_retry_after: a longer ``Retry-After`` raises at once instead of waiting.
    """

    def __init__(
        self,
        gateway_url: str = DEFAULT_GATEWAY_URL,
        *,
        auth: AuthBase | None = None,
        session: requests.Session | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = RetryPolicy.backoff,
        max_backoff: float = RetryPolicy.max_backoff,
        max_retry_after: float = RetryPolicy.max_retry_after,
        _sleep: Callable[[float], None] = time.sleep,
        _rng: random.Random | None = None,
        _wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway_url = normalize_gateway_url(gateway_url)
        self.timeout = check_timeout("timeout", timeout)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidArgument(f"expected retries to be an int >= 0, got {retries!r}")
        for name, value in (
            ("backoff", backoff),
            ("max_backoff", max_backoff),
            ("max_retry_after", max_retry_after),
        ):
            if not is_seconds(value, zero_ok=True):
                raise InvalidArgument(f"expected {name} to be finite seconds >= 0, got {value!r}")
        if session is not None and not isinstance(session, requests.Session):
            raise InvalidArgument(f"expected session to be a requests.Session, got {session!r}")
        self.auth = auth
        self.policy = RetryPolicy(
            retries=retries,
            backoff=float(backoff),
            max_backoff=float(max_backoff),
            max_retry_after=float(max_retry_after),
        )
        self._owns_session = session is None
        self.session = session if session is not None else _new_session()
        self._base_path = urlsplit(requote_uri(self.gateway_url)).path
        self._sleep = _sleep
        self._rng = _rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._wall_clock = _wall_clock
        self._closed = False

    @property
    def retries(self) -> int:
        """How many times a failed GET is retried."""
        return self.policy.retries

    def __repr__(self) -> str:
        return f"Transport(gateway_url={self.gateway_url!r}, auth={self.auth!r})"

    def url(self, path: str) -> str:
        """The absolute URL of a path on the gateway (``/registry/v2/jobs/``)."""
        return self.gateway_url + path

    def close(self) -> None:
        """Close the session if this transport created it; safe to call twice."""
        self._closed = True
        if self._owns_session:
            _close_idle_connections(self.session)
            self.session.close()

    def get_json(
        self,
        path: str,
        params: Params = (),
        *,
        raw_response: bool = False,
        deadline: Optional[Deadline] = None,
        retry: bool = True,
    ) -> requests.Response:
        """GET a JSON document, with retries; raise unless it is a 2xx ``application/json``.

        With ``raw_response=True`` the (last) response is returned as it is, unchecked.
        With a ``deadline``, no timeout, retry or pause outlives it: the last error is raised
        instead of a pause that would reach it. With ``retry=False`` it is one attempt (a wait
        repeats its requests itself, by the same policy).

        Raises:
            AuthError, NotFoundError, ApiError: the server answered with an error or not JSON.
            TransportError: the request failed (after the retries); the cause is chained.
        """
        attempt = 0
        while True:
            try:
                response = self._send(path, params, headers=JSON_HEADERS, deadline=deadline)
            except TransportError as exc:
                retryable = _retryable(exc.__cause__)
                if not retry or not retryable or not self._pause(attempt, None, str(exc), deadline):
                    raise
                attempt += 1
                continue
            except AuthError as exc:
                # Only the token request raises here; a busy token endpoint is worth a retry.
                if not retry or not is_transient(exc.status_code) or not self._pause(
                    attempt, exc.retry_after, f"the token request got {exc.status_code}", deadline
                ):
                    raise
                attempt += 1
                continue
            if retry and is_transient(response.status_code):
                retry_after = self._retry_after(response)
                if self._pause(attempt, retry_after, f"status {response.status_code}", deadline):
                    response.close()
                    attempt += 1
                    continue
            break
        if raw_response:
            return response
        if not json_accepted(response.status_code, response.headers.get("Content-Type")):
            raise self.error_from_response(response, expected=JSON_EXPECTED)
        return response

    def open_stream(
        self,
        path: str,
        params: Params = (),
        *,
        timeout: Timeout,
        deadline: Optional[Deadline] = None,
    ) -> requests.Response:
        """Open a ``text/event-stream`` response (not read yet; the caller closes it).

        No retries here (an auth that renews its token resends once after a 401).

        Raises:
            AuthError, NotFoundError, ApiError: as :meth:`get_json` would for the same status,
                or a 2xx that is not ``text/event-stream``.
            TransportError: the request failed; the cause is chained.
        """
        pair = check_timeout("timeout", timeout)
        response = self._send(
            path, params, headers=STREAM_HEADERS, stream=True, timeout=pair, deadline=deadline
        )
        accepted = False
        try:
            limit = stream_refused(response.status_code, response.headers.get("Content-Type"))
            if limit is not None:
                body = _read_some(response, limit)
                raise self.error_from_response(response, expected=STREAM_EXPECTED, body=body)
            accepted = True
        finally:
            if not accepted:
                # Whatever went wrong (even a KeyboardInterrupt mid-read), release the socket.
                response.close()
        return response

    def error_from_response(
        self, response: requests.Response, *, expected: str, body: bytes | None = None
    ) -> ApiError:
        """The exception for a response that is not what was expected (see
        :func:`error_from_response`), with the ``Retry-After`` it carried."""
        return error_from_response(response, expected=expected, body=body, now=self._wall_clock())

    # -- internals ------------------------------------------------------------------------

    def _send(
        self,
        path: str,
        params: Params,
        *,
        headers: dict[str, str],
        stream: bool = False,
        timeout: tuple[float, float] | None = None,
        deadline: Optional[Deadline] = None,
    ) -> requests.Response:
        if self._closed:
            raise InvalidArgument("this client is closed; create a new one")
        request = requests.Request(
            "GET",
            self.url(path),
            params=list(params),
            headers=request_headers(headers),
            auth=self.auth,
        )
        pair = timeout or self.timeout
        try:
            # The auth may exchange or renew a token on the way: the same deadline holds there.
            with deadline_scope(deadline):
                prepared = self.session.prepare_request(request)
                # requests re-quotes the URL, turning '%2E%2E' back into '..', which would then
                # be resolved away; put the segments back exactly as quote_segment encoded them.
                parts = urlsplit(prepared.url or "")
                prepared.url = urlunsplit(parts._replace(path=self._base_path + path))
                settings = self.session.merge_environment_settings(
                    prepared.url, {}, stream, None, None
                )
                if deadline is not None:
                    pair = deadline.cap_timeout(pair)
                return self.session.send(prepared, timeout=pair, allow_redirects=True, **settings)
        except requests.RequestException as exc:
            raise failed(f"GET {path}", exc) from exc

    def _retry_after(self, response: requests.Response) -> float | None:
        return parse_retry_after(response.headers.get("Retry-After"), self._wall_clock())

    def _pause(
        self, attempt: int, retry_after: float | None, why: str, deadline: Optional[Deadline]
    ) -> bool:
        """Sleep before retry ``attempt + 1`` if the policy allows it; whether it does."""
        delay = self.policy.retry_pause(attempt, retry_after, self._rng, deadline)
        if delay is None:
            return False
        logger.warning(
            "retrying a GET in %.2fs (retry %d of %d) after %s",
            delay,
            attempt + 1,
            self.policy.retries,
            why,
        )
        self._sleep(delay)
        return True


def _new_session() -> requests.Session:
    session = requests.Session()
    # One client is often shared by threads, each wait holding one connection: with requests'
    # default of 10 pooled connections per host, urllib3 closes the rest after use and logs
    # a warning for each.
    adapter = InterruptibleAdapter(pool_maxsize=POOL_MAXSIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def failed(
    what: str, exc: requests.RequestException, expected: str = "a response"
) -> TransportError:
    """The :class:`TransportError` for a request that ``requests`` could not complete. It is
    ``connect_failed`` when no connection was made: refused, DNS, TLS, or closed before any
    answer (a read that timed out on an open connection is not one)."""
    hint = ""
    if isinstance(exc, requests.exceptions.SSLError):
        hint = plain_http_hint(str(exc), getattr(exc.request, "url", None) or "")
    connect_failed = isinstance(exc, requests.ConnectionError) and not isinstance(
        exc, requests.ReadTimeout
    )
    return transport_error(what, exc, connect_failed=connect_failed, hint=hint, expected=expected)


def _retryable(cause: BaseException | None) -> bool:
    if isinstance(cause, requests.exceptions.SSLError):
        return False  # a certificate problem does not go away by asking again
    return isinstance(
        cause,
        (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ),
    )


def _read_some(response: requests.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=4096):
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    except requests.RequestException as exc:
        # The status line already said what matters; a body cut short is reported as such.
        logger.debug("could not read the error body: %s", exc)
        chunks.append(f" [body unreadable: {type(exc).__name__}]".encode())
    return b"".join(chunks)[:limit]


def _close_idle_connections(session: requests.Session) -> None:
    # Session.close() only forgets its connection pools (urllib3 gives them no dispose
    # function), so idle keep-alive sockets stay open for as long as anything still refers to
    # a pool, say a logged exception's traceback. Close them now.
    for adapter in session.adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        if manager is None:
            continue
        for key in list(manager.pools.keys()):
            pool = manager.pools.get(key)
            if pool is not None:
                pool.close()


# -- responses that are not what was expected -------------------------------------------------


def error_from_response(
    response: requests.Response,
    *,
    expected: str,
    body: bytes | None = None,
    now: float | None = None,
) -> ApiError:
    """The exception for a response that is not what the caller expected (see
    :func:`~waylay_jobs._http.core.api_error`); its body is read unless ``body`` (the read,
    possibly truncated, start of a streamed one) is given; ``now`` is the wall clock."""
    request = response.request
    parts = urlsplit((request.url if request is not None else None) or response.url or "")
    answer = Answer(
        response.status_code,
        response.headers.get("Content-Type"),
        response.content if body is None else body,
        response.headers.get("Retry-After"),
    )
    return api_error(
        method=(request.method if request is not None else None) or "GET",
        target=parts.path + (f"?{parts.query}" if parts.query else ""),
        answer=answer,
        expected=expected,
        now=time.time() if now is None else now,
        response=response,
    )

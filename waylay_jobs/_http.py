"""The HTTP transport: one ``requests.Session``, the gateway URL, retries and error mapping.

Only this module (and the token request in ``_auth``) looks at status codes. GETs are
idempotent, so they are retried on connection errors and on 429/502/503/504, with exponential
backoff, full jitter and ``Retry-After``, a bounded number of times. Streams are never retried
here: the caller (``wait_for``) decides.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Union
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase
from requests.utils import requote_uri

from ._checks import is_seconds
from ._exceptions import (
    AuthError,
    InvalidArgument,
    TransportError,
    error_from_response,
    media_type,
)
from ._version import __version__

logger = logging.getLogger("waylay_jobs")

USER_AGENT = f"waylay-jobs/{__version__}"
#: The gateway used when none is given.
DEFAULT_GATEWAY_URL = "https://api.waylay.io"
#: (connect, read) timeouts in seconds for ordinary requests.
DEFAULT_TIMEOUT = (10.0, 30.0)
#: Retries (after the first attempt) of a GET that failed in a retryable way.
DEFAULT_RETRIES = 4
#: First backoff ceiling in seconds; it doubles per retry (full jitter below it).
DEFAULT_BACKOFF = 0.5
#: Largest backoff ceiling in seconds.
DEFAULT_MAX_BACKOFF = 30.0
#: A ``Retry-After`` longer than this (seconds) is not waited for: the error is raised instead.
DEFAULT_MAX_RETRY_AFTER = 60.0
#: Connections kept per host by the session a client creates (requests' default is 10).
POOL_MAXSIZE = 256
#: Statuses worth retrying: rate limited or the gateway could not reach a healthy backend.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Bytes of an error body read from a streamed response before raising.
MAX_ERROR_BODY = 64 * 1024
#: Bytes of a wrong-content-type body read from a streamed 2xx before raising.
MAX_WRONG_BODY = 4 * 1024

Timeout = Union[float, tuple[float, float]]
Params = Sequence[tuple[str, str]]

_JSON_EXPECTED = "200 application/json"
_STREAM_EXPECTED = "200 text/event-stream"
_STREAM_HEADERS = {
    "Accept": "text/event-stream",
    # A compressed stream is buffered by the decoder: events would arrive late.
    "Accept-Encoding": "identity",
    "Cache-Control": "no-cache",
}


def normalize_gateway_url(url: Any) -> str:
    """``api.waylay.io/`` -> ``https://api.waylay.io``; anything not http(s) is refused."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidArgument(f"expected gateway_url to be a non-empty URL string, got {url!r}")
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if "@" in parts.netloc:
        # Never echo the URL: the part before '@' is a user name and maybe a password.
        raise InvalidArgument(
            "expected gateway_url without user info (user:password@); "
            "pass token= or api_key=/api_secret= instead"
        )
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidArgument(f"expected an http(s) gateway_url, got {url!r}")
    try:
        port_ok = parts.hostname is not None and (parts.port is None or parts.port > 0)
    except ValueError:
        port_ok = False
    if not port_ok:
        raise InvalidArgument(f"expected gateway_url with a host (and a valid port), got {url!r}")
    if parts.query or parts.fragment:
        raise InvalidArgument(f"expected gateway_url without a query or fragment, got {url!r}")
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path.rstrip("/"), "", ""))


def quote_segment(name: str, value: Any) -> str:
    """One path segment, percent-encoded with nothing left safe (``a/b`` -> ``a%2Fb``)."""
    if isinstance(value, bool) or not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"expected {name} to be a non-empty string, got {value!r}")
    if value in (".", ".."):
        # Dot segments would be resolved away by urllib3/the server: keep them one segment.
        return str(value).replace(".", "%2E")
    return quote(value, safe="")


def check_timeout(name: str, value: Any) -> tuple[float, float]:
    """A timeout as a (connect, read) pair of positive seconds."""
    pair = value if isinstance(value, tuple) else (value, value)
    if len(pair) != 2 or not all(is_seconds(part) for part in pair):
        raise InvalidArgument(
            f"expected {name} to be finite seconds > 0 or a (connect, read) pair of them, "
            f"got {value!r}"
        )
    return (float(pair[0]), float(pair[1]))


def json_body(response: requests.Response) -> Any:
    """The parsed JSON body of a response that :meth:`Transport.get_json` accepted."""
    try:
        return json.loads(response.content)
    except ValueError as exc:
        error = error_from_response(response, expected=f"{_JSON_EXPECTED} (valid JSON)")
        raise error from exc


class Transport:
    """Sends the library's requests over one ``requests.Session``.

    Args:
        gateway_url: the Waylay gateway; ``https://`` is added when there is no scheme.
        auth: a ``requests`` auth (``TokenAuth``, ``ApiKeyAuth``) or ``None``.
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
        backoff: float = DEFAULT_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        _sleep: Callable[[float], None] = time.sleep,
        _rng: random.Random | None = None,
        _wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway_url = normalize_gateway_url(gateway_url)
        self.timeout = check_timeout("timeout", timeout)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidArgument(f"expected retries to be an int >= 0, got {retries!r}")
        for name, value in (("backoff", backoff), ("max_backoff", max_backoff)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidArgument(f"expected {name} to be seconds >= 0, got {value!r}")
        if session is not None and not isinstance(session, requests.Session):
            raise InvalidArgument(f"expected session to be a requests.Session, got {session!r}")
        self.auth = auth
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_retry_after = float(max_retry_after)
        self._owns_session = session is None
        self.session = session if session is not None else _new_session()
        self._base_path = urlsplit(requote_uri(self.gateway_url)).path
        self._sleep = _sleep
        self._rng = _rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._wall_clock = _wall_clock
        self._closed = False

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
        self, path: str, params: Params = (), *, raw_response: bool = False
    ) -> requests.Response:
        """GET a JSON document, with retries; raise unless it is a 2xx ``application/json``.

        With ``raw_response=True`` the (last) response is returned as it is, unchecked.

        Raises:
            AuthError, NotFoundError, ApiError: the server answered with an error or not JSON.
            TransportError: the request failed (after the retries); the cause is chained.
        """
        attempt = 0
        renewed = False
        while True:
            try:
                response = self._send(path, params, headers={"Accept": "application/json"})
            except TransportError as exc:
                if attempt >= self.retries or not _retryable(exc.__cause__):
                    raise
                self._pause(attempt, None, str(exc))
                attempt += 1
                continue
            except AuthError as exc:
                # Only the token request raises here; a busy token endpoint is worth a retry.
                if attempt >= self.retries or exc.status_code not in RETRY_STATUSES:
                    raise
                wait = self._retry_after(exc.response) if exc.response is not None else None
                if wait is not None and wait > self.max_retry_after:
                    raise
                self._pause(attempt, wait, f"the token request got {exc.status_code}")
                attempt += 1
                continue
            if response.status_code == 401 and not renewed and self._renew(response):
                renewed = True
                response.close()
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                retry_after = self._retry_after(response)
                if retry_after is None or retry_after <= self.max_retry_after:
                    response.close()
                    self._pause(attempt, retry_after, f"status {response.status_code}")
                    attempt += 1
                    continue
            break
        if raw_response:
            return response
        if not 200 <= response.status_code < 300 or not _is_json(response):
            raise error_from_response(response, expected=_JSON_EXPECTED)
        return response

    def open_stream(self, path: str, params: Params = (), *, timeout: Timeout) -> requests.Response:
        """Open a ``text/event-stream`` response (not read yet; the caller closes it).

        No retries here. A 401 with renewable credentials is retried once with a new token.

        Raises:
            AuthError, NotFoundError, ApiError: as :meth:`get_json` would for the same status,
                or a 2xx that is not ``text/event-stream``.
            TransportError: the request failed; the cause is chained.
        """
        pair = check_timeout("timeout", timeout)
        response = self._send(path, params, headers=_STREAM_HEADERS, stream=True, timeout=pair)
        if response.status_code == 401 and self._renew(response):
            response.close()
            response = self._send(path, params, headers=_STREAM_HEADERS, stream=True, timeout=pair)
        accepted = False
        try:
            if not 200 <= response.status_code < 300:
                body = _read_some(response, MAX_ERROR_BODY)
                raise error_from_response(response, expected=_STREAM_EXPECTED, body=body)
            if media_type(response) != "text/event-stream":
                body = _read_some(response, MAX_WRONG_BODY)
                raise error_from_response(response, expected=_STREAM_EXPECTED, body=body)
            accepted = True
        finally:
            if not accepted:
                # Whatever went wrong (even a KeyboardInterrupt mid-read), release the socket.
                response.close()
        return response

    # -- internals ------------------------------------------------------------------------

    def _send(
        self,
        path: str,
        params: Params,
        *,
        headers: dict[str, str],
        stream: bool = False,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        if self._closed:
            raise InvalidArgument("this client is closed; create a new one")
        request = requests.Request(
            "GET",
            self.url(path),
            params=list(params),
            headers={"User-Agent": USER_AGENT, **headers},
            auth=self.auth,
        )
        try:
            prepared = self.session.prepare_request(request)
            # requests re-quotes the URL, turning '%2E%2E' back into '..', which would then be
            # resolved away; put the segments back exactly as quote_segment encoded them.
            parts = urlsplit(prepared.url or "")
            prepared.url = urlunsplit(parts._replace(path=self._base_path + path))
            settings = self.session.merge_environment_settings(prepared.url, {}, stream, None, None)
            return self.session.send(
                prepared, timeout=timeout or self.timeout, allow_redirects=True, **settings
            )
        except requests.RequestException as exc:
            raise TransportError(
                f"GET {path}: expected a response, got {type(exc).__name__}: {exc}"
                + plain_http_hint(exc)
            ) from exc

    def _renew(self, response: requests.Response) -> bool:
        """After a 401: ask a renewable auth (see ``ApiKeyAuth.renew_after_401``) to renew."""
        renew = getattr(self.auth, "renew_after_401", None)
        if renew is None:
            return False
        sent = response.request.headers.get("Authorization") if response.request else None
        return bool(renew(sent))

    def _retry_after(self, response: requests.Response) -> float | None:
        value = (response.headers.get("Retry-After") or "").strip()
        if not value:
            return None
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - self._wall_clock())

    def _pause(self, attempt: int, retry_after: float | None, why: str) -> None:
        ceiling = min(self.max_backoff, self.backoff * (2**attempt))
        delay = self._rng.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, retry_after)
        logger.warning(
            "retrying a GET in %.2fs (retry %d of %d) after %s",
            delay,
            attempt + 1,
            self.retries,
            why,
        )
        self._sleep(delay)


def _new_session() -> requests.Session:
    session = requests.Session()
    # One client is often shared by threads, each wait holding one connection: with requests'
    # default of 10 pooled connections per host, urllib3 closes the rest after use and logs
    # a warning for each.
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=POOL_MAXSIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


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


def _is_json(response: requests.Response) -> bool:
    kind = media_type(response)
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
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


def plain_http_hint(exc: BaseException) -> str:
    """``"; is the gateway plain HTTP? use http://HOST:PORT"`` when a TLS handshake was
    answered by a server that speaks no TLS (``https://`` is added to a bare host), else ``""``.
    """
    text = str(exc).upper()
    # OpenSSL's reasons for a first answer that is not a TLS record (1.1/3.0, then 3.2+).
    not_tls = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")
    if not isinstance(exc, requests.exceptions.SSLError) or not any(m in text for m in not_tls):
        return ""
    url = getattr(getattr(exc, "request", None), "url", None) or ""
    netloc = urlsplit(url).netloc
    return f"; is the gateway plain HTTP? use http://{netloc or '...'}"

"""The HTTP core: what the ``requests`` and httpx transports decide alike, without I/O.

Constants, URL and timeout checks, the media type of an answer, turning an answer that is not
what was expected into an exception, and the token of an API key pair. Neither ``requests``
nor httpx is imported here: each transport (``blocking``, ``auth``, ``aio``) only sends and
reads, and asks this module what to send and what an answer means.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Optional, Union
from urllib.parse import quote, urlsplit, urlunsplit

from .._checks import is_seconds
from .._exceptions import (
    ApiError,
    AuthError,
    IdleTimeout,
    InvalidArgument,
    NotFoundError,
    StreamInterrupted,
    TransportError,
)
from .._policy import parse_retry_after
from .._version import __version__

USER_AGENT = f"waylay-jobs/{__version__}"
#: The gateway used when none is given.
DEFAULT_GATEWAY_URL = "https://api.waylay.io"
#: (connect, read) timeouts in seconds for ordinary requests.
DEFAULT_TIMEOUT = (10.0, 30.0)
#: Bytes of an error body read from a streamed response before raising.
MAX_ERROR_BODY = 64 * 1024
#: Bytes of a wrong-content-type body read from a streamed 2xx before raising.
MAX_WRONG_BODY = 4 * 1024

Timeout = Union[float, tuple[float, float]]
Params = Sequence[tuple[str, str]]

#: What a good answer is, as error messages say it.
JSON_EXPECTED = "200 application/json"
VALID_JSON_EXPECTED = f"{JSON_EXPECTED} (valid JSON)"
STREAM_EXPECTED = "200 text/event-stream"
#: The headers of a request, besides the ``User-Agent`` and the ``Authorization``.
JSON_HEADERS = {"Accept": "application/json"}
STREAM_HEADERS = {
    "Accept": "text/event-stream",
    # A compressed stream is buffered by the decoder: events would arrive late.
    "Accept-Encoding": "identity",
    "Cache-Control": "no-cache",
}

#: Seconds before ``exp`` at which a token is renewed (less for very short-lived tokens).
DEFAULT_RENEW_MARGIN = 60.0


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


def request_headers(
    headers: Mapping[str, str] = JSON_HEADERS, authorization: Optional[str] = None
) -> dict[str, str]:
    """The headers to send: the ``User-Agent``, ``headers`` (:data:`JSON_HEADERS` or
    :data:`STREAM_HEADERS`) and the ``Authorization`` value when there is one."""
    sent = {"User-Agent": USER_AGENT, **headers}
    if authorization is not None:
        sent["Authorization"] = authorization
    return sent


#: OpenSSL's reasons for a first answer that is not a TLS record (1.1/3.0, then 3.2+).
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")


def plain_http_hint(error_text: str, url: str) -> str:
    """``"; is the gateway plain HTTP? use http://HOST:PORT"`` when the text of a TLS error
    carries OpenSSL's reason for an answer that is no TLS (``https://`` is added to a bare
    host, and the gateway speaks plain HTTP), else ``""``."""
    text = error_text.upper()
    if not any(reason in text for reason in _NOT_TLS):
        return ""
    netloc = urlsplit(url).netloc
    return f"; is the gateway plain HTTP? use http://{netloc or '...'}"


def transport_error(
    what: str,
    exc: BaseException,
    *,
    connect_failed: bool,
    hint: str = "",
    expected: str = "a response",
) -> TransportError:
    """The :class:`TransportError` for a request that got no answer, ``exc`` chained."""
    error = TransportError(
        f"{what}: expected {expected}, got {type(exc).__name__}: {exc}{hint}",
        connect_failed=connect_failed,
    )
    error.__cause__ = exc
    return error


def stream_idle() -> IdleTimeout:
    """The error of a stream read that got nothing within its read (idle) timeout."""
    return IdleTimeout(
        "expected more of the event stream, got nothing within the idle timeout (the read timeout)"
    )


def stream_broken(exc: BaseException) -> StreamInterrupted:
    """The error of a stream read on a broken connection (raise it ``from exc``)."""
    return StreamInterrupted(
        f"expected more of the event stream, got a broken connection: {type(exc).__name__}: {exc}"
    )


# -- answers ----------------------------------------------------------------------------------

#: Characters of a response body quoted in an exception message.
SNIPPET_LENGTH = 200


class Answer(NamedTuple):
    """What a transport read of an HTTP answer, whichever client read it."""

    status: int
    #: The ``Content-Type`` header, if any.
    content_type: Optional[str]
    #: The body, or as much of it as was read.
    body: bytes
    #: The ``Retry-After`` header, if any.
    retry_after: Optional[str] = None


def media_type(content_type: Optional[str]) -> str:
    """The media type without parameters (``text/html``), or a phrase saying there was none."""
    if not content_type:
        return "no content type"
    return content_type.split(";", 1)[0].strip().lower() or "no content type"


def is_json(media: str) -> bool:
    """Whether a media type is JSON (``application/json``, or a vendor ``+json`` type)."""
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def json_accepted(status: int, content_type: Optional[str]) -> bool:
    """Whether an answer is what a GET of a JSON document expects: a 2xx JSON body."""
    return 200 <= status < 300 and is_json(media_type(content_type))


def stream_refused(status: int, content_type: Optional[str]) -> Optional[int]:
    """``None`` when an answer is an event stream; else how many bytes of its body to read
    for the exception (an error body, or a 2xx of the wrong content type)."""
    if not 200 <= status < 300:
        return MAX_ERROR_BODY
    if media_type(content_type) != "text/event-stream":
        return MAX_WRONG_BODY
    return None


def encoding(content_type: Optional[str]) -> str:
    """The charset a ``Content-Type`` declares if Python knows it, else UTF-8 (never
    ISO-8859-1, ``requests``' guess for ``text/*``)."""
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            try:
                return codecs.lookup(value.strip().strip("\"'")).name
            except LookupError:
                return "utf-8"
    return "utf-8"


def body_snippet(body: bytes, codec: str | None = None, limit: int = SNIPPET_LENGTH) -> str:
    """The start of a response body as one line: decoded leniently, whitespace collapsed."""
    text = body[: limit * 4].decode(codec or "utf-8", errors="replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _document(body: bytes, codec: str) -> Any:
    """The JSON in a body, or ``None``."""
    if not body:
        return None
    try:
        return json.loads(body.decode(codec, errors="replace"))
    except ValueError:
        return None


def _error_text(data: Any, snippet: str) -> Optional[str]:
    """The server's error text: the ``error`` string of a JSON body, else the body's start."""
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return snippet or None


def api_error(
    *,
    method: str,
    target: str,
    answer: Answer,
    expected: str,
    now: float,
    response: Any = None,
) -> ApiError:
    """The exception for an answer that is not what was expected, whatever HTTP client got it:
    401/403 :class:`AuthError`, 404 :class:`NotFoundError`, any other status (a 2xx of the
    wrong content type included) :class:`ApiError`. The message reads like
    ``GET /registry/v2/jobs/build/x: expected 200 application/json, got 502 text/html: <body>``;
    the error text, the JSON body and the ``Retry-After`` (read at wall-clock ``now``) go with
    it. ``response`` is the ``requests.Response`` to attach, if any."""
    codec = encoding(answer.content_type)
    data = _document(answer.body, codec)
    snippet = body_snippet(answer.body, codec)
    message = f"{method} {target or '/'}: expected {expected}, got {answer.status} "
    message += media_type(answer.content_type)
    message += f": {snippet}" if snippet else " with an empty body"
    cls: type[ApiError]
    if answer.status in (401, 403):
        cls = AuthError
    elif answer.status == 404:
        cls = NotFoundError
    else:
        cls = ApiError
    return cls(
        message,
        status_code=answer.status,
        error=_error_text(data, snippet),
        data=data,
        response=response,
        retry_after=parse_retry_after(answer.retry_after, now),
    )


# -- tokens ---------------------------------------------------------------------------------------


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, decoded without verifying the signature; ``{}`` when not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_expiry(token: str) -> float | None:
    """The token's ``exp`` claim (epoch seconds), or ``None`` when it has none."""
    exp = jwt_claims(token).get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return float(exp)
    return None


def mask(value: str) -> str:
    """The first characters of an identifier, enough to recognise it: ``'abcd…'``."""
    return value[:4] + "…" if len(value) > 4 else "…"


def token_url(gateway_url: str, accounts_url: Optional[str] = None) -> str:
    """The token endpoint: ``{gateway}/accounts/v1/tokens``, or ``{accounts_url}/tokens`` for
    legacy profiles."""
    if accounts_url:
        return normalize_gateway_url(accounts_url) + "/tokens"
    return normalize_gateway_url(gateway_url) + "/accounts/v1/tokens"


class TokenRequest(NamedTuple):
    """The token exchange of an API key pair: ``POST url?params`` with the JSON ``body``."""

    url: str
    params: dict[str, str]
    #: Holds the secret: never logged, never kept on an exception.
    body: dict[str, str]
    #: ``POST {url}?grant_type=...``, the start of its error messages.
    what: str
    api_key: str

    def __repr__(self) -> str:
        return f"TokenRequest(what={self.what!r}, api_key={mask(self.api_key)!r})"


def token_request(
    url: str, api_key: str, api_secret: str, tenant_id: Optional[str] = None
) -> TokenRequest:
    """The official SDK's exchange: ``client_credentials`` (``clientId``/``clientSecret``), or
    with a tenant ``application_credentials`` (``applicationId``/``applicationSecret``)."""
    if tenant_id is None:
        params = {"grant_type": "client_credentials"}
        body = {"clientId": api_key, "clientSecret": api_secret}
    else:
        params = {"grant_type": "application_credentials", "tenant": tenant_id}
        body = {"applicationId": api_key, "applicationSecret": api_secret}
    what = f"POST {url}?grant_type={params['grant_type']}"
    return TokenRequest(url, params, body, what, api_key)


def token_not_in_time(auth: str, holder: str) -> TransportError:
    """The error of a request whose deadline passed while another ``holder`` (thread or task)
    of the same credentials ``auth`` was exchanging them for a token."""
    return TransportError(
        f"expected a token for {auth}, got none in time: another {holder}'s token request was "
        "still under way",
        connect_failed=False,
    )


def token_from_answer(
    request: TokenRequest,
    answer: Answer,
    *,
    now: float,
    renew_margin: float = DEFAULT_RENEW_MARGIN,
    response: Any = None,
) -> tuple[str, float]:
    """The token of a token exchange's answer, and when to renew it (epoch seconds: a margin
    before its ``exp``, at most half its remaining life; never, without an ``exp``).

    Raises:
        AuthError: the answer is not a 2xx (its body quoted, with the masked key and its
            ``Retry-After``), or a 2xx without a ``token`` string (the body is never quoted:
            it may hold a token under another name).
    """
    status = answer.status
    codec = encoding(answer.content_type)
    document = _document(answer.body, codec)
    media = media_type(answer.content_type)
    if not 200 <= status < 300:
        text = body_snippet(answer.body, codec)
        raise AuthError(
            f"{request.what}: expected 200 with a token for api key {mask(request.api_key)!r}, "
            f"got {status} {media}" + (f": {text}" if text else ""),
            status_code=status,
            error=_error_text(document, text),
            data=document,
            response=response,
            retry_after=parse_retry_after(answer.retry_after, now),
        )
    token = document.get("token") if isinstance(document, dict) else None
    if not isinstance(token, str) or not token:
        shape = (
            f"a JSON object with keys {sorted(document)}"
            if isinstance(document, dict)
            else f"{media} that is not a JSON object"
        )
        raise AuthError(
            f"{request.what}: expected a JSON object with a 'token' string, got {status} {shape}",
            status_code=status,
            response=response,
        )
    expires = token_expiry(token)
    if expires is None:
        return token, float("inf")  # used until the server rejects it (a 401 renews it then)
    margin = min(renew_margin, max(0.0, expires - now) / 2)
    return token, expires - margin

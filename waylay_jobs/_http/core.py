"""The HTTP core: what the ``requests`` and httpx transports decide alike, without I/O.

Constants, URL and timeout checks, the media type of an answer, turning an answer that is not
what was expected into an exception, and the token of an API key pair. Neither ``requests``
nor httpx is imported here: each transport (``blocking``, ``auth``, ``aio``) only sends and
reads, and asks this module what to send and what an answer means.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, Union
from urllib.parse import quote, urlsplit, urlunsplit

from .._checks import is_seconds
from .._exceptions import ApiError, AuthError, InvalidArgument, NotFoundError
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

JSON_EXPECTED = "200 application/json"
STREAM_EXPECTED = "200 text/event-stream"
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


# -- answers that are not what was expected ---------------------------------------------------

#: Characters of a response body quoted in an exception message.
SNIPPET_LENGTH = 200


def body_snippet(body: bytes, encoding: str | None = None, limit: int = SNIPPET_LENGTH) -> str:
    """The start of a response body as one line: decoded leniently, whitespace collapsed."""
    text = body[: limit * 4].decode(encoding or "utf-8", errors="replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def api_error(
    *,
    method: str,
    target: str,
    status: int,
    media: str,
    body: bytes,
    encoding: str,
    expected: str,
    response: Any = None,
) -> ApiError:
    """The exception for an answer that is not what was expected, whatever HTTP client got it
    (``requests`` here, httpx in the async driver): the class by status, the message, the
    server's error text and its JSON body."""
    data: Any = None
    if body:
        try:
            data = json.loads(body.decode(encoding, errors="replace"))
        except ValueError:
            data = None
    snippet = body_snippet(body, encoding)
    error: str | None = snippet or None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        error = data["error"]
    message = f"{method} {target or '/'}: expected {expected}, got {status} {media}"
    message += f": {snippet}" if snippet else " with an empty body"
    cls: type[ApiError]
    if status in (401, 403):
        cls = AuthError
    elif status == 404:
        cls = NotFoundError
    else:
        cls = ApiError
    return cls(message, status_code=status, error=error, data=data, response=response)


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

"""Authentication: a static bearer token, or an API key and secret exchanged for one.

The key/secret flow is the official SDK's (notes/waylay-sdk-config.md §2.1):
``POST {gateway}/accounts/v1/tokens?grant_type=client_credentials`` with
``{"clientId", "clientSecret"}`` answers ``{"token": "<JWT>"}``. The token is renewed a little
before its ``exp`` claim and once after a 401. One lock makes a shared client safe: however
many threads need a token, one request is in flight. Tokens and secrets are never logged,
put in a message or shown by ``repr``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from requests.auth import AuthBase

from .._exceptions import InvalidArgument
from .._policy import current_deadline
from .blocking import failed
from .core import (
    DEFAULT_RENEW_MARGIN,
    DEFAULT_TIMEOUT,
    Answer,
    Timeout,
    check_timeout,
    jwt_claims,
    mask,
    request_headers,
    token_expiry,
    token_from_answer,
    token_not_in_time,
    token_request,
    token_url,
)
from .interrupt import acquire

logger = logging.getLogger("waylay_jobs")

__all__ = ["ApiKeyAuth", "RenewableAuth", "TokenAuth", "jwt_claims", "mask", "token_expiry"]


def _check_credential(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"expected {name} to be a string, got a {type(value).__name__}")
    text: str = value.strip()
    # Checked here because requests would quote the whole header value in its own error.
    if not text or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise InvalidArgument(
            f"expected {name} to be a non-empty string without spaces or control characters "
            "(value not shown)"
        )
    return text


class _NoAuth(AuthBase):
    """Sends no credentials (and keeps requests from falling back to ~/.netrc)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class TokenAuth(AuthBase):
    """A fixed bearer token (``Authorization: Bearer <token>``); it cannot be renewed."""

    def __init__(self, token: str) -> None:
        self._token = _check_credential("token", token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    @property
    def expires_at(self) -> float | None:
        """The token's ``exp`` claim in epoch seconds, when it is a JWT that has one."""
        return token_expiry(self._token)

    def __repr__(self) -> str:
        return "TokenAuth(token='***')"


class RenewableAuth(AuthBase):
    """An auth that renews its credentials itself: after a 401 it renews and resends the
    request once (a response hook, as requests' ``HTTPDigestAuth`` does), so the transport
    need not know which auth it carries. Subclasses provide :meth:`authorize` and
    :meth:`renew_after_401`."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self.authorize(request)
        request.hooks["response"].append(self._resend_after_401)
        return request

    def authorize(self, request: requests.PreparedRequest) -> None:
        """Put the credentials on ``request``."""
        raise NotImplementedError

    def renew_after_401(self, authorization: str | None) -> bool:
        """Forget the credentials a request was rejected with (its ``Authorization``)."""
        raise NotImplementedError

    def _resend_after_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        sent = response.request
        if response.status_code != 401 or sent is None or response.connection is None:
            return response
        if not self.renew_after_401(sent.headers.get("Authorization")):
            return response
        retry = sent.copy()
        retry.hooks = requests.hooks.default_hooks()  # one resend, not a loop
        response.close()
        self.authorize(retry)
        deadline = current_deadline.get()
        if deadline is not None and isinstance(kwargs.get("timeout"), tuple):
            kwargs["timeout"] = deadline.cap_timeout(kwargs["timeout"])
        renewed: requests.Response = response.connection.send(retry, **kwargs)
        renewed.history.append(response)
        renewed.request = retry
        return renewed


class ApiKeyAuth(RenewableAuth):
    """Exchanges an API key and secret for a bearer token, and renews it.

    Args:
        gateway_url: the gateway; the token endpoint is ``{gateway}/accounts/v1/tokens``.
        api_key, api_secret: the key pair (application id and secret with ``tenant_id``).
        session: the session the token requests go through (same TLS and proxy settings as
            the API calls); it is not closed here.
        accounts_url: legacy profiles: the token endpoint is ``{accounts_url}/tokens`` instead.
        tenant_id: use the ``application_credentials`` grant for this tenant.
        timeout: (connect, read) seconds for the token request.
        renew_margin: renew this many seconds before the token expires.
    """

    def __init__(
        self,
        gateway_url: str,
        api_key: str,
        api_secret: str,
        *,
        session: requests.Session,
        accounts_url: str | None = None,
        tenant_id: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        renew_margin: float = DEFAULT_RENEW_MARGIN,
        _clock: Callable[[], float] = time.time,
    ) -> None:
        self._api_key = _check_credential("api_key", api_key)
        self._api_secret = _check_credential("api_secret", api_secret)
        self.token_url = token_url(gateway_url, accounts_url)
        self._tenant_id = None if tenant_id is None else _check_credential("tenant_id", tenant_id)
        self._session = session
        self._timeout = check_timeout("timeout", timeout)
        self._renew_margin = float(renew_margin)
        self._clock = _clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def __repr__(self) -> str:
        return f"ApiKeyAuth(api_key={mask(self._api_key)!r}, token_url={self.token_url!r})"

    def authorize(self, request: requests.PreparedRequest) -> None:
        """Put a current token on ``request`` (fetching one first when needed)."""
        request.headers["Authorization"] = f"Bearer {self.token()}"

    def token(self) -> str:
        """A token valid for a while yet, fetched (by one thread at a time) when needed."""
        # Bounded by the deadline of the request that needs it, and cut by its wait's cancel:
        # another thread's slow token exchange must not hold this one past its own deadline.
        if not acquire(self._lock, current_deadline.get()):
            raise token_not_in_time(str(self), "thread")
        try:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, self._renew_at = self._fetch()
            return self._token
        finally:
            self._lock.release()

    def renew_after_401(self, authorization: str | None) -> bool:
        """Forget the token a request was rejected with, unless another thread already did."""
        if not acquire(self._lock, current_deadline.get()):
            return True  # the resend's token() says why there is no token
        try:
            if self._token is not None and authorization == f"Bearer {self._token}":
                logger.info("the server rejected the token of %s; fetching a new one", self)
                self._token = None
        finally:
            self._lock.release()
        return True

    def _fetch(self) -> tuple[str, float]:
        exchange = token_request(self.token_url, self._api_key, self._api_secret, self._tenant_id)
        deadline = current_deadline.get()
        timeout = self._timeout if deadline is None else deadline.cap_timeout(self._timeout)
        try:
            response = self._session.post(
                exchange.url,
                params=exchange.params,
                json=exchange.body,
                headers=request_headers(),
                timeout=timeout,
                auth=_NoAuth(),
                # A 307/308 would re-send the secret to wherever it points: refuse instead.
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise failed(exchange.what, exc, expected="a token") from exc
        with response:
            response.request.body = None  # it holds the secret; an error keeps the response
            headers = response.headers
            answer = Answer(
                response.status_code,
                headers.get("Content-Type"),
                response.content,
                headers.get("Retry-After"),
            )
            now = self._clock()
            token, renew_at = token_from_answer(
                exchange, answer, now=now, renew_margin=self._renew_margin, response=response
            )
        logger.debug("fetched a token for %s, to renew in %.0fs", self, renew_at - now)
        return token, renew_at

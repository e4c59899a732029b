"""Bearer tokens of the fake: issuing (``POST /accounts/v1/tokens``) and checking."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from typing import Optional

from ._documents import make_jwt


class TokenAuthority:
    """Issues JWT-like tokens and decides whether an ``Authorization`` header is valid.

    Auth is enforced only when credentials or static tokens were configured.
    """

    def __init__(
        self,
        api_key: Optional[str],
        api_secret: Optional[str],
        tokens: Iterable[str],
        ttl: float,
    ) -> None:
        if (api_key is None) != (api_secret is None):
            raise ValueError("api_key and api_secret must be given together")
        self._api_key = api_key
        self._api_secret = api_secret
        self._static = frozenset(tokens)
        self._ttl = ttl
        self._lock = threading.Lock()
        self._issued: dict[str, float] = {}  # token -> expiry (time.time())

    @property
    def enforced(self) -> bool:
        """Whether the jobs endpoints require a bearer token."""
        return self._api_key is not None or bool(self._static)

    def credentials_ok(self, client_id: object, client_secret: object) -> bool:
        """Whether a token request's credentials are accepted (any, when none configured)."""
        if self._api_key is None:
            return isinstance(client_id, str) and isinstance(client_secret, str)
        return client_id == self._api_key and client_secret == self._api_secret

    def issue(self, ttl: Optional[float] = None) -> str:
        """A new token valid for ``ttl`` seconds (default: the registry's ``token_ttl``)."""
        now = time.time()
        expires = now + (self._ttl if ttl is None else ttl)
        claims = {
            "iss": "https://accounts.fake-waylay.invalid",
            "sub": "users/fake-user",
            "domain": "127.0.0.1",
            "tenant": "fake-tenant",
            "jti": str(uuid.uuid4()),
            "iat": int(now),
            "exp": int(expires),
        }
        token = make_jwt(claims)
        with self._lock:
            self._issued[token] = expires
        return token

    def revoke_all(self) -> None:
        """Invalidate every issued token (static ``tokens`` stay valid)."""
        with self._lock:
            self._issued.clear()

    def check(self, authorization: Optional[str]) -> Optional[str]:
        """``None`` if the header is acceptable, else the reason for a 401 (no token in it)."""
        if not self.enforced:
            return None
        if not authorization:
            return "Missing Authorization header: expected 'Bearer <token>'"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "Unsupported Authorization header: expected 'Bearer <token>'"
        token = token.strip()
        if token in self._static:
            return None
        with self._lock:
            expires = self._issued.get(token)
        if expires is None:
            return "Invalid bearer token"
        if expires <= time.time():
            return "Bearer token expired"
        return None

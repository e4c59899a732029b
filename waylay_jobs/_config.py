"""Configuration: the official Waylay SDK's profile files, and ``WAYLAY_*`` environment variables.

Profiles live where the SDK keeps them,
``user_config_dir("Waylay")/python_sdk/.profile.<name>.json`` (appdirs rules, re-implemented
here), the default one named ``_default_``. The format is the
SDK's (notes/waylay-sdk-config.md §1.2); unknown keys are ignored when reading, and
:func:`save_profile` writes exactly the SDK's keys, owner-only.

The environment variables are this library's own (the official SDK reads none):

=====================  =====================================================================
``WAYLAY_GATEWAY_URL``  the gateway (default ``https://api.waylay.io``, or the profile's)
``WAYLAY_TOKEN``        a bearer token; wins over the key and secret
``WAYLAY_API_KEY``      an API key, used with ``WAYLAY_API_SECRET``
``WAYLAY_API_SECRET``   its secret
``WAYLAY_PROFILE``      the profile to read when neither a token nor a key is set
=====================  =====================================================================
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._exceptions import ConfigError, InvalidArgument
from ._http.auth import mask
from ._http.blocking import DEFAULT_GATEWAY_URL

logger = logging.getLogger("waylay_jobs")

DEFAULT_PROFILE = "_default_"
ENV_VARS = (
    "WAYLAY_GATEWAY_URL",
    "WAYLAY_TOKEN",
    "WAYLAY_API_KEY",
    "WAYLAY_API_SECRET",
    "WAYLAY_PROFILE",
)
_CREDENTIAL_FIELDS = {
    "client_credentials": ("api_key", "api_secret"),
    "application_credentials": ("api_key", "api_secret", "tenant_id"),
    "token": ("token",),
    "interactive": (),
}


@dataclass(frozen=True)
class Credentials:
    """What a client needs: the gateway, and a token or an API key pair (or nothing)."""

    gateway_url: str = DEFAULT_GATEWAY_URL
    token: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    tenant_id: str | None = None
    accounts_url: str | None = None
    source: str = "arguments"

    def __repr__(self) -> str:
        kind = "token" if self.token else "api_key" if self.api_key else "none"
        key = f", api_key={mask(self.api_key)!r}" if self.api_key else ""
        return (
            f"Credentials(kind={kind!r}, gateway_url={self.gateway_url!r}{key}, "
            f"source={self.source!r})"
        )


def user_config_dir(
    appname: str = "Waylay",
    *,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """appdirs' ``user_config_dir(appname)`` (no author, no version, not roaming)."""
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    if platform == "win32":
        base = environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        # appdirs on Windows falls back to appname as the author: Waylay\Waylay.
        return Path(base) / appname / appname
    if platform == "darwin":
        return home / "Library" / "Application Support" / appname
    # appdirs would take an empty XDG_CONFIG_HOME as a relative path; that is never intended.
    base = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(base) / appname


def profile_path(
    name: str | None = None,
    *,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The file of profile ``name`` (default ``_default_``)."""
    name = _check_name(name)
    directory = user_config_dir(platform=platform, environ=environ) / "python_sdk"
    return directory / f".profile.{name}.json"


def load_profile(
    name: str | None = None, *, environ: Mapping[str, str] | None = None
) -> Credentials:
    """Read a profile written by the official SDK (or :func:`save_profile`).

    Raises:
        ConfigError: the file is missing, unreadable, not JSON, or has the wrong shape.
    """
    name = _check_name(name)
    path = profile_path(name, environ=environ)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"profile {name!r} not found: expected the file {path}. Create it with "
            "'waylay-jobs configure', waylay_jobs.save_profile() or the Waylay SDK "
            "(WaylayClient.from_profile() asks and saves), "
            "or use WAYLAY_TOKEN or WAYLAY_API_KEY/WAYLAY_API_SECRET"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"profile {name!r}: cannot read {path}: {exc.strerror}") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"profile {name!r}: {path} is not valid JSON: {exc}") from exc
    return parse_profile(document, source=f"profile {name!r} ({path})")


def parse_profile(document: Any, *, source: str) -> Credentials:
    """The credentials of a profile document; errors name ``source`` and the bad field only."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a JSON object, got {_json_kind(document)}")
    creds = document.get("credentials")
    if not isinstance(creds, dict):
        raise ConfigError(f"{source}: expected a 'credentials' object, got {_json_kind(creds)}")
    kind = creds.get("type")
    if kind not in _CREDENTIAL_FIELDS:
        raise ConfigError(
            f"{source}: expected credentials.type to be one of {', '.join(_CREDENTIAL_FIELDS)}, "
            f"got {kind!r}"
        )
    if kind == "interactive":
        raise ConfigError(
            f"{source}: holds 'interactive' credentials (no key, secret or token); "
            "save an API key and secret in it first"
        )
    values = {name: _string(source, creds, name) for name in _CREDENTIAL_FIELDS[kind]}
    gateway = _optional_string(source, creds, "gateway_url")
    accounts = _optional_string(source, creds, "accounts_url")
    if accounts and not gateway:
        logger.warning(
            "%s is a legacy profile (accounts_url only): using %s as the gateway and %s for tokens",
            source,
            DEFAULT_GATEWAY_URL,
            accounts,
        )
    return Credentials(
        gateway_url=gateway or DEFAULT_GATEWAY_URL,
        accounts_url=accounts,
        source=source,
        **values,
    )


def credentials_from_env(environ: Mapping[str, str] | None = None) -> Credentials:
    """Credentials from ``WAYLAY_*`` variables, falling back to a profile.

    ``WAYLAY_TOKEN`` wins over ``WAYLAY_API_KEY``/``WAYLAY_API_SECRET``; with neither, the
    profile ``WAYLAY_PROFILE`` (or the default profile) is read. ``WAYLAY_GATEWAY_URL``
    overrides the gateway in every case. Empty variables count as unset.
    """
    env = os.environ if environ is None else environ
    get = {name: (env.get(name) or "").strip() or None for name in ENV_VARS}
    gateway = get["WAYLAY_GATEWAY_URL"]
    if get["WAYLAY_TOKEN"]:
        return Credentials(
            gateway_url=gateway or DEFAULT_GATEWAY_URL,
            token=get["WAYLAY_TOKEN"],
            source="environment (WAYLAY_TOKEN)",
        )
    key, secret = get["WAYLAY_API_KEY"], get["WAYLAY_API_SECRET"]
    if key or secret:
        if not (key and secret):
            missing = "WAYLAY_API_SECRET" if key else "WAYLAY_API_KEY"
            present = "WAYLAY_API_KEY" if key else "WAYLAY_API_SECRET"
            raise ConfigError(f"{present} is set but {missing} is not: set both, or neither")
        return Credentials(
            gateway_url=gateway or DEFAULT_GATEWAY_URL,
            api_key=key,
            api_secret=secret,
            source="environment (WAYLAY_API_KEY)",
        )
    name = get["WAYLAY_PROFILE"]
    try:
        creds = load_profile(name, environ=env)
    except ConfigError as exc:
        if name is not None:
            raise
        raise ConfigError(
            "no credentials found: set WAYLAY_TOKEN, or WAYLAY_API_KEY and WAYLAY_API_SECRET "
            "(and WAYLAY_GATEWAY_URL for a gateway other than https://api.waylay.io), or "
            f"WAYLAY_PROFILE naming a profile; the default profile could not be used: {exc}"
        ) from exc
    if gateway:
        creds = Credentials(
            gateway_url=gateway,
            token=creds.token,
            api_key=creds.api_key,
            api_secret=creds.api_secret,
            tenant_id=creds.tenant_id,
            accounts_url=creds.accounts_url,
            source=creds.source + " with WAYLAY_GATEWAY_URL",
        )
    return creds


def save_profile(
    name: str | None = None,
    *,
    api_key: str | None = None,
    api_secret: str | None = None,
    token: str | None = None,
    tenant_id: str | None = None,
    gateway_url: str | None = DEFAULT_GATEWAY_URL,
    accounts_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Write a profile the official SDK can read, readable by its owner only (mode 0600).

    Give ``api_key`` and ``api_secret`` (plus ``tenant_id`` for application credentials) or a
    ``token``. Returns the path written. An existing profile of that name is replaced.
    """
    name = _check_name(name)
    creds: dict[str, Any]
    if token is not None and api_key is None and api_secret is None:
        creds = {"type": "token", "token": token}
    elif api_key and api_secret and token is None:
        creds = {"type": "client_credentials", "api_key": api_key, "api_secret": api_secret}
        if tenant_id is not None:
            creds["type"] = "application_credentials"
            creds["tenant_id"] = tenant_id
    else:
        raise InvalidArgument("expected either token= or both api_key= and api_secret=")
    creds["gateway_url"] = gateway_url
    creds["accounts_url"] = accounts_url
    document = {"credentials": creds, "profile": name, "settings": {}}
    path = profile_path(name, environ=environ)
    try:
        _write_private(path, document)
    except OSError as exc:
        raise ConfigError(f"profile {name!r}: cannot write {path}: {exc.strerror}") from exc
    return path


def _write_private(path: Path, document: Any) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Write a private temporary file and move it in place: never a moment of wider access.
    import tempfile  # profiles are seldom written; importing it costs every command 0.6 ms

    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".profile.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _check_name(name: Any) -> str:
    if name is None:
        return DEFAULT_PROFILE
    if (
        not isinstance(name, str)
        or not name
        or any(ch in name for ch in "/\\\0")
        or name
        in (
            ".",
            "..",
        )
    ):
        raise InvalidArgument(f"expected a profile name without path separators, got {name!r}")
    return name


def _string(source: str, creds: Mapping[str, Any], name: str) -> str:
    value = creds.get(name)
    if not isinstance(value, str) or not value.strip():
        # Say what is wrong, never the value (it may be the secret).
        got = "an empty string" if isinstance(value, str) else _json_kind(value)
        raise ConfigError(
            f"{source}: expected credentials.{name} to be a non-empty string, got {got}"
        )
    return value.strip()


def _optional_string(source: str, creds: Mapping[str, Any], name: str) -> str | None:
    value = creds.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(
            f"{source}: expected credentials.{name} to be a URL string or null, "
            f"got {_json_kind(value)}"
        )
    return value


def _json_kind(value: Any) -> str:
    if value is None:
        return "null (or nothing)"
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return kinds.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")

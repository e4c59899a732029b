"""``waylay-jobs configure``: save an API key and its secret as a Waylay SDK profile.

It asks what the official SDK's interactive login asks (the gateway, the API key, the secret
without echo), checks the pair with one token request, and only then writes the profile, in
the SDK's place and format, readable by its owner only (see ``waylay_jobs._config``).
"""

from __future__ import annotations

import getpass
from typing import Optional, TextIO

import requests

from ._config import DEFAULT_PROFILE, profile_path, save_profile
from ._exceptions import InvalidArgument
from ._http.auth import ApiKeyAuth
from ._http.blocking import DEFAULT_GATEWAY_URL, normalize_gateway_url


def gateway_url_for(answer: str) -> str:
    """The gateway an answer to the gateway question names, read as the official SDK reads it.

    Empty, ``api`` or ``enterprise``: ``https://api.waylay.io``; one word such as ``io``:
    ``https://api-io.waylay.io``; a host or URL: itself (``https://`` added when it has no
    scheme, ``accounts-api`` read as ``api``).
    """
    text = answer.strip().lower().replace("accounts-api", "api")
    if text in ("", "api", "enterprise"):
        text = DEFAULT_GATEWAY_URL
    elif text.isalnum():
        text = f"api-{text}.waylay.io"
    return normalize_gateway_url(text)


def run_configure(
    profile: Optional[str],
    gateway: Optional[str],
    *,
    stdin: TextIO,
    out: TextIO,
) -> int:
    """Ask, check, save; returns 0. Raises as the token request does (nothing is saved then).

    The secret is read with ``getpass`` (no echo) when ``stdin`` is a terminal, else
    as a line of ``stdin``, so that a script can pipe the answers in.
    """
    name = profile or DEFAULT_PROFILE
    path = profile_path(name)
    _say(out, f"Saving an API key as the Waylay SDK profile {name!r} ({path}).")
    if path.exists():
        _say(out, "That profile exists: it is replaced once the new key has been checked.")
    if gateway is None:
        gateway_url = gateway_url_for(_ask(stdin, out, f"Gateway [{DEFAULT_GATEWAY_URL}]: "))
    else:
        gateway_url = normalize_gateway_url(gateway)
    api_key = _ask(stdin, out, "API key: ").strip()
    if stdin.isatty():
        api_secret = getpass.getpass("API secret: ").strip()
    else:
        api_secret = _ask(stdin, out, "API secret: ").strip()
    if not api_key or not api_secret:
        missing = "API key" if not api_key else "API secret"
        raise InvalidArgument(f"expected an {missing}, got an empty answer; nothing was saved")
    with requests.Session() as session:
        auth = ApiKeyAuth(gateway_url, api_key, api_secret, session=session)
        _say(out, f"Checking the key with {auth.token_url} ...")
        auth.token()
    written = save_profile(name, api_key=api_key, api_secret=api_secret, gateway_url=gateway_url)
    use = "" if name == DEFAULT_PROFILE else f" --profile {name}"
    _say(out, f"The key works. Saved {written} (readable by you only).")
    _say(out, f"Try: waylay-jobs{use} list --limit 5")
    return 0


def _ask(stdin: TextIO, out: TextIO, prompt: str) -> str:
    out.write(prompt)
    out.flush()
    line = stdin.readline()
    if not line:
        raise InvalidArgument(f"expected an answer to {prompt.strip()!r}, got the end of the input")
    if not stdin.isatty():
        out.write("\n")  # the answer came from a pipe, not echoed: end the prompt's line
    return line.rstrip("\r\n")


def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()

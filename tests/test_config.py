"""Profiles (the official SDK's files) and WAYLAY_* environment variables."""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from waylay_jobs import ConfigError, InvalidArgument
from waylay_jobs._config import (
    Credentials,
    credentials_from_env,
    load_profile,
    profile_path,
    save_profile,
    user_config_dir,
)

SECRET = "SECRET-dGhpcyBpcyBhIHNlY3JldCE="
KEY = "0123456789abcdef01234567"
TOKEN = "TOKEN-eyJhbGciOi.eyJzdWIiOi.c2ln"
ENV_NAMES = (
    "WAYLAY_GATEWAY_URL",
    "WAYLAY_TOKEN",
    "WAYLAY_API_KEY",
    "WAYLAY_API_SECRET",
    "WAYLAY_PROFILE",
)

# Exactly what the official SDK's WaylayConfig.save() writes (notes/waylay-sdk-config.md §1.2).
SDK_PROFILE = (
    '{"credentials": {"type": "client_credentials", "api_key": "'
    + KEY
    + '", "api_secret": "'
    + SECRET
    + '", "gateway_url": "https://api.example.io", "accounts_url": null}, '
    '"profile": "_default_", "settings": {}}'
)


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary XDG_CONFIG_HOME (and HOME), with no WAYLAY_* variables set."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    if sys.platform in ("win32", "darwin"):
        pytest.skip("profile files are exercised under the Linux layout")
    return tmp_path / "xdg" / "Waylay" / "python_sdk"


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f".profile.{name}.json"
    path.write_text(text, encoding="utf-8")
    return path


# -- locations --------------------------------------------------------------------------------


def test_linux_locations() -> None:
    env = {"HOME": "/home/u", "XDG_CONFIG_HOME": "/cfg"}
    assert user_config_dir(platform="linux", environ=env) == Path("/cfg/Waylay")
    assert user_config_dir(platform="linux", environ={"HOME": "/home/u"}) == Path(
        "/home/u/.config/Waylay"
    )
    # appdirs would make an empty XDG_CONFIG_HOME a relative path; treated as unset here.
    empty = {"HOME": "/home/u", "XDG_CONFIG_HOME": ""}
    assert user_config_dir(platform="linux", environ=empty) == Path("/home/u/.config/Waylay")


def test_macos_and_windows_locations() -> None:
    assert user_config_dir(platform="darwin", environ={"HOME": "/Users/u"}) == Path(
        "/Users/u/Library/Application Support/Waylay"
    )
    windows = user_config_dir(
        platform="win32", environ={"LOCALAPPDATA": "C:/Users/u/AppData/Local"}
    )
    assert windows == Path("C:/Users/u/AppData/Local/Waylay/Waylay")
    fallback = user_config_dir(platform="win32", environ={"HOME": "/h"})
    assert fallback == Path("/h/AppData/Local/Waylay/Waylay")


def test_profile_file_names() -> None:
    env = {"HOME": "/home/u"}
    assert profile_path(platform="linux", environ=env) == Path(
        "/home/u/.config/Waylay/python_sdk/.profile._default_.json"
    )
    assert profile_path("staging", platform="linux", environ=env).name == ".profile.staging.json"


@pytest.mark.parametrize("name", ["", "../x", "a/b", "a\\b", "..", ".", 3, "nul\0"])
def test_bad_profile_names(name: object) -> None:
    with pytest.raises(InvalidArgument, match="profile name"):
        profile_path(name)  # type: ignore[arg-type]


# -- reading ----------------------------------------------------------------------------------


def test_reads_the_sdk_file(config_home: Path) -> None:
    write(config_home, "_default_", SDK_PROFILE)
    creds = load_profile()
    assert creds.gateway_url == "https://api.example.io"
    assert (creds.api_key, creds.api_secret, creds.token) == (KEY, SECRET, None)
    assert creds.accounts_url is None
    assert str(config_home / ".profile._default_.json") in creds.source


def test_reads_token_and_application_profiles(config_home: Path) -> None:
    write(
        config_home,
        "tok",
        json.dumps(
            {
                "credentials": {
                    "type": "token",
                    "token": TOKEN,
                    "gateway_url": None,
                    "accounts_url": None,
                },
                "profile": "tok",
                "settings": {},
            }
        ),
    )
    write(
        config_home,
        "app",
        json.dumps(
            {
                "credentials": {
                    "type": "application_credentials",
                    "api_key": KEY,
                    "api_secret": SECRET,
                    "tenant_id": "t-9",
                    "gateway_url": "https://gw.example",
                    "accounts_url": None,
                }
            }
        ),
    )
    token = load_profile("tok")
    assert (token.token, token.gateway_url) == (TOKEN, "https://api.waylay.io")
    app = load_profile("app")
    assert (app.api_key, app.tenant_id, app.gateway_url) == (KEY, "t-9", "https://gw.example")


def test_unknown_keys_are_ignored(config_home: Path) -> None:
    document = json.loads(SDK_PROFILE)
    document["future"] = {"x": 1}
    document["credentials"]["refresh_token"] = "r"
    document["settings"] = {"waylay_registry": "https://elsewhere"}
    write(config_home, "_default_", json.dumps(document))
    assert load_profile().api_key == KEY


def test_legacy_accounts_url_profile(config_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    document = json.loads(SDK_PROFILE)
    document["credentials"]["gateway_url"] = None
    document["credentials"]["accounts_url"] = "https://accounts-api.waylay.io"
    write(config_home, "old", json.dumps(document))
    with caplog.at_level(logging.WARNING, logger="waylay_jobs"):
        creds = load_profile("old")
    assert creds.gateway_url == "https://api.waylay.io"
    assert creds.accounts_url == "https://accounts-api.waylay.io"
    assert "legacy profile" in caplog.text
    assert SECRET not in caplog.text


def test_missing_profile_names_the_path_and_how_to_create_it(config_home: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_profile("nope")
    message = str(info.value)
    assert str(config_home / ".profile.nope.json") in message
    assert "save_profile" in message
    assert "WAYLAY_API_KEY" in message


def test_profile_that_is_not_json(config_home: Path) -> None:
    path = write(config_home, "_default_", SDK_PROFILE[:-10] + "oops")
    with pytest.raises(ConfigError) as info:
        load_profile()
    message = str(info.value)
    assert str(path) in message
    assert "not valid JSON" in message
    assert SECRET not in message
    assert isinstance(info.value.__cause__, ValueError)


def test_unreadable_profile(config_home: Path) -> None:
    (config_home / ".profile.dir.json").mkdir(parents=True)
    with pytest.raises(ConfigError, match="cannot read"):
        load_profile("dir")


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ([1, 2], "expected a JSON object, got an array"),
        ({"profile": "x"}, "expected a 'credentials' object, got null"),
        ({"credentials": "k:s"}, "expected a 'credentials' object, got a string"),
        ({"credentials": {"type": "oauth"}}, "credentials.type to be one of"),
        (
            {"credentials": {"type": "client_credentials", "api_key": KEY}},
            "credentials.api_secret to be a non-empty string, got null",
        ),
        (
            {"credentials": {"type": "client_credentials", "api_key": KEY, "api_secret": 5}},
            "credentials.api_secret to be a non-empty string, got a number",
        ),
        (
            {"credentials": {"type": "client_credentials", "api_key": "", "api_secret": SECRET}},
            "credentials.api_key to be a non-empty string, got an empty string",
        ),
        (
            {"credentials": {"type": "token", "token": TOKEN, "gateway_url": 7}},
            "credentials.gateway_url to be a URL string or null, got a number",
        ),
        (
            {"credentials": {"type": "interactive", "gateway_url": None, "accounts_url": None}},
            "interactive",
        ),
    ],
)
def test_wrong_shapes(config_home: Path, document: object, complaint: str) -> None:
    path = write(config_home, "bad", json.dumps(document))
    with pytest.raises(ConfigError) as info:
        load_profile("bad")
    message = str(info.value)
    assert complaint in message
    assert str(path) in message
    assert SECRET not in message
    assert TOKEN not in message


# -- writing ----------------------------------------------------------------------------------


def test_save_writes_the_sdk_format_owner_only(config_home: Path) -> None:
    path = save_profile(api_key=KEY, api_secret=SECRET, gateway_url="https://api.example.io")
    assert path == config_home / ".profile._default_.json"
    assert path.read_text(encoding="utf-8") == SDK_PROFILE
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_profile().api_secret == SECRET
    assert [p.name for p in config_home.iterdir()] == [path.name]  # no temporary file left


def test_save_replaces_a_world_readable_profile(config_home: Path) -> None:
    path = write(config_home, "p", "{}")
    path.chmod(0o644)
    save_profile("p", token=TOKEN, gateway_url=None)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "credentials": {"type": "token", "token": TOKEN, "gateway_url": None, "accounts_url": None},
        "profile": "p",
        "settings": {},
    }


def test_save_application_credentials(config_home: Path) -> None:
    save_profile("app", api_key=KEY, api_secret=SECRET, tenant_id="t-1")
    creds = load_profile("app")
    assert (creds.api_key, creds.tenant_id) == (KEY, "t-1")


def test_save_failure_is_a_config_error(config_home: Path) -> None:
    (config_home / ".profile.p.json").mkdir(parents=True)  # a directory where the file goes
    with pytest.raises(ConfigError, match=r"cannot write .*\.profile\.p\.json") as info:
        save_profile("p", api_key=KEY, api_secret=SECRET)
    assert SECRET not in str(info.value)
    assert [p.name for p in config_home.iterdir()] == [".profile.p.json"]  # no temporary left


@pytest.mark.parametrize(
    "kwargs", [{}, {"api_key": KEY}, {"token": TOKEN, "api_key": KEY, "api_secret": SECRET}]
)
def test_save_needs_one_kind_of_credentials(config_home: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        save_profile(**kwargs)


# -- environment ------------------------------------------------------------------------------


def test_env_token_wins(config_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYLAY_TOKEN", TOKEN)
    monkeypatch.setenv("WAYLAY_API_KEY", KEY)
    monkeypatch.setenv("WAYLAY_API_SECRET", SECRET)
    creds = credentials_from_env()
    assert (creds.token, creds.api_key, creds.gateway_url) == (TOKEN, None, "https://api.waylay.io")


def test_env_key_pair_and_gateway(config_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYLAY_API_KEY", KEY)
    monkeypatch.setenv("WAYLAY_API_SECRET", SECRET)
    monkeypatch.setenv("WAYLAY_GATEWAY_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("WAYLAY_TOKEN", "")  # empty counts as unset
    creds = credentials_from_env()
    assert (creds.api_key, creds.api_secret, creds.token) == (KEY, SECRET, None)
    assert creds.gateway_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("present", "missing"),
    [("WAYLAY_API_KEY", "WAYLAY_API_SECRET"), ("WAYLAY_API_SECRET", "WAYLAY_API_KEY")],
)
def test_env_half_a_key_pair(
    config_home: Path, monkeypatch: pytest.MonkeyPatch, present: str, missing: str
) -> None:
    monkeypatch.setenv(present, SECRET)
    with pytest.raises(ConfigError, match=f"{present} is set but {missing} is not") as info:
        credentials_from_env()
    assert SECRET not in str(info.value)


def test_env_profile(config_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(config_home, "staging", SDK_PROFILE)
    monkeypatch.setenv("WAYLAY_PROFILE", "staging")
    assert credentials_from_env().gateway_url == "https://api.example.io"
    monkeypatch.setenv("WAYLAY_GATEWAY_URL", "https://override.example")
    creds = credentials_from_env()
    assert (creds.gateway_url, creds.api_key) == ("https://override.example", KEY)
    assert "WAYLAY_GATEWAY_URL" in creds.source


def test_env_falls_back_to_the_default_profile(config_home: Path) -> None:
    write(config_home, "_default_", SDK_PROFILE)
    assert credentials_from_env().api_key == KEY


def test_env_named_profile_missing(config_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYLAY_PROFILE", "ghost")
    with pytest.raises(ConfigError, match=r"profile 'ghost' not found.*\.profile\.ghost\.json"):
        credentials_from_env()


def test_env_nothing_usable_lists_the_variables(config_home: Path) -> None:
    with pytest.raises(ConfigError) as info:
        credentials_from_env()
    message = str(info.value)
    for name in ENV_NAMES:
        assert name in message
    assert ".profile._default_.json" in message


def test_env_mapping_can_be_passed(tmp_path: Path) -> None:
    creds = credentials_from_env({"WAYLAY_TOKEN": TOKEN, "XDG_CONFIG_HOME": str(tmp_path)})
    assert creds.token == TOKEN


def test_credentials_repr_hides_secrets() -> None:
    for creds in (
        Credentials(api_key=KEY, api_secret=SECRET),
        Credentials(token=TOKEN),
        Credentials(),
    ):
        text = repr(creds) + str(creds)
        for secret in (SECRET, TOKEN, KEY):
            assert secret not in text
    assert "kind='api_key'" in repr(Credentials(api_key=KEY, api_secret=SECRET))
    assert "api_key='0123…'" in repr(Credentials(api_key=KEY, api_secret=SECRET))

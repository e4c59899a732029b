"""JobsClient: construction, list and get, seed-parity options, profiles and environment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from waylay_jobs import ConfigError, InvalidArgument, JobsError, NotFoundError, TransportError
from waylay_jobs._client import JobsClient, select
from waylay_jobs._http.blocking import USER_AGENT
from waylay_jobs._models import JobType
from waylay_jobs.testing import FakeRegistry

DATA = Path(__file__).parent / "data" / "examples"
GATEWAY = "https://gw.example"
LIST_URL = GATEWAY + "/registry/v2/jobs/"
TOKEN = "TOKEN-aaa.bbb.ccc"
SECRET = "SECRET-s3cr3t"
KEY = "0123456789abcdef01234567"


def example(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


LIST_DOC = example("jobs_list.json")
BUILD_DOC = example("job_build_completed.json")
BUILD_ID = BUILD_DOC["job"]["job"]["id"]


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[JobsClient]:
    with JobsClient(GATEWAY, token=TOKEN, retries=0) as c:
        yield c


# -- construction -----------------------------------------------------------------------------


def test_token_client_sends_the_bearer(api: responses.RequestsMock, client: JobsClient) -> None:
    api.get(LIST_URL, json=LIST_DOC)
    client.list()
    request = api.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.path_url == "/registry/v2/jobs/"


def test_api_key_client_fetches_a_token(api: responses.RequestsMock) -> None:
    api.post(GATEWAY + "/accounts/v1/tokens", json={"token": TOKEN})
    api.get(LIST_URL, json=LIST_DOC)
    with JobsClient("gw.example/", api_key=KEY, api_secret=SECRET) as client:
        assert client.gateway_url == GATEWAY
        client.list()
    assert api.calls[1].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_no_credentials_sends_no_authorization(api: responses.RequestsMock) -> None:
    api.get(LIST_URL, json=LIST_DOC)
    with JobsClient(GATEWAY) as client:
        client.list()
    assert "Authorization" not in api.calls[0].request.headers


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token": TOKEN, "api_key": KEY, "api_secret": SECRET},
        {"api_key": KEY},
        {"api_secret": SECRET},
        {"token": ""},
        {"token": 123},
        {"api_key": KEY, "api_secret": ""},
        {"gateway_url": "ftp://gw.example"},
        {"gateway_url": "file:///tmp/x"},
        {"timeout": -1},
        {"retries": -2},
    ],
)
def test_bad_construction_sends_nothing(
    api: responses.RequestsMock, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument) as info:
        JobsClient(**kwargs)
    assert SECRET not in str(info.value)


def test_context_manager_closes_only_its_own_session() -> None:
    closed: list[str] = []

    class Recording(requests.Session):
        def close(self) -> None:
            closed.append("mine")
            super().close()

    with JobsClient(GATEWAY, session=Recording()):
        pass
    assert closed == []
    client = JobsClient(GATEWAY)
    client.transport.session.close = lambda: closed.append("owned")  # type: ignore[method-assign]
    with client:
        pass
    assert closed == ["owned"]
    client.close()  # idempotent


def test_repr_hides_secrets() -> None:
    for client in (
        JobsClient(GATEWAY, token=TOKEN),
        JobsClient(GATEWAY, api_key=KEY, api_secret=SECRET),
    ):
        text = repr(client) + str(client)
        for secret in (TOKEN, SECRET, KEY):
            assert secret not in text
        assert "https://gw.example" in text
        client.close()


# -- list -------------------------------------------------------------------------------------


def test_list_decodes(api: responses.RequestsMock, client: JobsClient) -> None:
    api.get(LIST_URL, json=LIST_DOC)
    result = client.list()
    assert result.jobs[0].id == LIST_DOC["jobs"][0]["id"]
    assert result.jobs[0].type == "build"
    assert result.limit == 2


def test_both_list_forms_send_the_same_request(
    api: responses.RequestsMock, client: JobsClient
) -> None:
    api.get(LIST_URL, json=LIST_DOC)
    api.get(LIST_URL, json=LIST_DOC)
    client.list(
        query={
            "type": ["build", "deploy"],
            "state": ["failed"],
            "functionType": ["plugs"],
            "limit": 10,
            "createdAfter": "P1D",
            "createdBefore": "2024-05-01T00:00:00Z",
        }
    )
    client.list(
        type=[JobType.BUILD, "deploy"],
        state=["failed"],
        function_type=["plugs"],
        created_after=timedelta(days=1),
        created_before=datetime(2024, 5, 1, tzinfo=timezone.utc),
        limit=10,
    )
    first, second = (call.request.path_url for call in api.calls)
    assert (
        first
        == second
        == (
            "/registry/v2/jobs/?limit=10&type=build&type=deploy&state=failed&functionType=plugs"
            "&createdBefore=2024-05-01T00%3A00%3A00Z&createdAfter=P1D"
        )
    )


def test_unknown_values_and_keys_pass_through(
    api: responses.RequestsMock, client: JobsClient
) -> None:
    api.get(LIST_URL, json={"jobs": []})
    client.list(query={"type": "teleport", "experimental": True})
    assert api.calls[0].request.path_url == "/registry/v2/jobs/?type=teleport&experimental=true"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"type": 5},
        {"type": [JobType.BUILD, 7]},
        {"limit": True},
        {"limit": -1},
        {"limit": "10"},
        {"created_before": "last tuesday"},
        {"created_after": timedelta(days=-1)},
        {"query": {"type": "build"}, "limit": 3},
        {"query": "type=build"},
        {"raw_response": "yes"},
        {"select_path": 3},
        {"raw_response": True, "select_path": "jobs"},
    ],
)
def test_bad_list_input_sends_nothing(
    api: responses.RequestsMock, client: JobsClient, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument):
        client.list(**kwargs)


def test_bad_created_before_message(client: JobsClient) -> None:
    with pytest.raises(InvalidArgument) as info:
        client.list(query={"createdBefore": "yesterday"})
    assert "createdBefore" in str(info.value)
    assert "'yesterday'" in str(info.value)
    assert "P1D" in str(info.value)
    assert "2024-05-01" in str(info.value)


# -- get --------------------------------------------------------------------------------------


def test_get_decodes_and_quotes_the_id(api: responses.RequestsMock, client: JobsClient) -> None:
    api.get(f"{GATEWAY}/registry/v2/jobs/build/{BUILD_ID.replace('$', '%24')}", json=BUILD_DOC)
    job = client.get("build", BUILD_ID)
    assert job.job.state == "completed"
    assert job.job.job.id == BUILD_ID
    assert api.calls[0].request.headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("job_id", "segment"),
    [("a/b", "a%2Fb"), ("..", "%2E%2E"), ("x y?z#w", "x%20y%3Fz%23w"), ("100%", "100%25")],
)
def test_get_keeps_odd_ids_in_one_segment(
    api: responses.RequestsMock, client: JobsClient, job_id: str, segment: str
) -> None:
    api.get(f"{GATEWAY}/registry/v2/jobs/deploy/{segment}", json=BUILD_DOC)
    client.get(JobType.DEPLOY, job_id)
    assert api.calls[0].request.path_url == f"/registry/v2/jobs/deploy/{segment}"


def test_get_unknown_type_passes(api: responses.RequestsMock, client: JobsClient) -> None:
    api.get(f"{GATEWAY}/registry/v2/jobs/teleport/x", status=404, json={"error": "no"})
    with pytest.raises(NotFoundError):
        client.get("teleport", "x")


@pytest.mark.parametrize(
    ("job_type", "job_id"),
    [
        (5, "x"),
        (None, "x"),
        ("", "x"),
        ("build", ""),
        ("build", "   "),
        ("build", None),
        ("build", 42),
        (JobType.BUILD, b"x"),
    ],
)
def test_bad_get_input_sends_nothing(
    api: responses.RequestsMock, client: JobsClient, job_type: Any, job_id: Any
) -> None:
    with pytest.raises(InvalidArgument):
        client.get(job_type, job_id)


def test_get_not_found(api: responses.RequestsMock, client: JobsClient) -> None:
    api.get(
        f"{GATEWAY}/registry/v2/jobs/build/x",
        status=404,
        json={"error": "Job build/x not found", "statusCode": 404},
    )
    with pytest.raises(NotFoundError) as info:
        client.get("build", "x")
    assert info.value.error == "Job build/x not found"


def test_wrongly_shaped_document_is_a_library_error(
    api: responses.RequestsMock, client: JobsClient
) -> None:
    api.get(LIST_URL, json={"jobs": 5})
    with pytest.raises(JobsError):
        client.list()


# -- seed parity ------------------------------------------------------------------------------


def test_raw_response(api: responses.RequestsMock, client: JobsClient) -> None:
    api.get(
        f"{GATEWAY}/registry/v2/jobs/build/x", status=404, body="gone", content_type="text/plain"
    )
    api.get(LIST_URL, json=LIST_DOC)
    response = client.get("build", "x", raw_response=True)
    assert isinstance(response, requests.Response)
    assert (response.status_code, response.text) == (404, "gone")
    assert client.list(raw_response=True).json() == LIST_DOC


def test_select_path(api: responses.RequestsMock, client: JobsClient) -> None:
    api.get(f"{GATEWAY}/registry/v2/jobs/build/x", json=BUILD_DOC)
    api.get(LIST_URL, json=LIST_DOC)
    assert client.get("build", "x", select_path="job.state") == "completed"
    assert client.list(select_path="jobs[1].type") == "deploy"


def test_select_helper() -> None:
    assert select(LIST_DOC, "") is LIST_DOC
    assert select(LIST_DOC, "jobs.0.id") == LIST_DOC["jobs"][0]["id"]
    assert select(LIST_DOC, "jobs[0].function.name") == LIST_DOC["jobs"][0]["function"]["name"]
    assert select(BUILD_DOC, "_links") == BUILD_DOC["_links"]
    assert select(LIST_DOC, "jobs[-1].type") == "deploy"


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        ("job.status", "job has no key 'status'; its keys: "),
        ("nope", "the document has no key 'nope'; its keys: _links, job"),
        ("job.state.x", "job.state is a str, not an object or list"),
    ],
)
def test_select_missing_paths(path: str, complaint: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        select(BUILD_DOC, path)
    assert f"select_path {path!r}" in str(info.value)
    assert complaint in str(info.value)
    if path == "job.status":
        assert "attemptsMade" in str(info.value)
        assert "state" in str(info.value)


@pytest.mark.parametrize("path", ["jobs.2", "jobs.x", "jobs[-3]", "jobs.1x"])
def test_select_bad_indexes(path: str) -> None:
    with pytest.raises(InvalidArgument, match="list of 2"):
        select(LIST_DOC, path)


# -- profiles and environment -----------------------------------------------------------------


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in (
        "WAYLAY_GATEWAY_URL",
        "WAYLAY_TOKEN",
        "WAYLAY_API_KEY",
        "WAYLAY_API_SECRET",
        "WAYLAY_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "Waylay" / "python_sdk"
    directory.mkdir(parents=True)
    return directory


def test_from_profile(api: responses.RequestsMock, config_dir: Path) -> None:
    (config_dir / ".profile.dev.json").write_text(
        json.dumps(
            {
                "credentials": {
                    "type": "client_credentials",
                    "api_key": KEY,
                    "api_secret": SECRET,
                    "gateway_url": GATEWAY,
                    "accounts_url": None,
                },
                "profile": "dev",
                "settings": {},
            }
        )
    )
    api.post(GATEWAY + "/accounts/v1/tokens", json={"token": TOKEN})
    api.get(LIST_URL, json=LIST_DOC)
    with JobsClient.from_profile("dev") as client:
        client.list()
    assert api.calls[1].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_from_profile_not_json(api: responses.RequestsMock, config_dir: Path) -> None:
    path = config_dir / ".profile._default_.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=str(path)):
        JobsClient.from_profile()


def test_from_profile_missing(api: responses.RequestsMock, config_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.profile\.absent\.json"):
        JobsClient.from_profile("absent")


def test_from_env(
    api: responses.RequestsMock, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLAY_GATEWAY_URL", "127.0.0.1:9")
    monkeypatch.setenv("WAYLAY_TOKEN", TOKEN)
    api.get("https://127.0.0.1:9/registry/v2/jobs/", json=LIST_DOC)
    with JobsClient.from_env(retries=0) as client:
        client.list()
    assert api.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_from_env_with_nothing(api: responses.RequestsMock, config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="WAYLAY_TOKEN"):
        JobsClient.from_env()


@pytest.mark.parametrize("credentials", [{"token": "t"}, {"api_key": "k", "api_secret": "s"}])
def test_https_to_a_plain_http_server_suggests_http(
    fake_registry: FakeRegistry, credentials: dict[str, str]
) -> None:
    host = fake_registry.url.removeprefix("http://")
    client = JobsClient(host, retries=0, **credentials)  # https:// is added
    with client, pytest.raises(TransportError) as info:
        client.list()
    message = str(info.value)
    assert "WRONG_VERSION_NUMBER" in message or "RECORD_LAYER_FAILURE" in message
    assert message.endswith(f"; is the gateway plain HTTP? use http://{host}")
    assert fake_registry.errors == []

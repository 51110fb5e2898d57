"""`POST /user/get-profile`: the anonymous profile of a share-only Orthanc (plugin 0.5+)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.errors import ConfigurationError
from tests.factories import share_body, token_service_settings
from tests.token_service.conftest import ClientFactory, basic
from token_service.app import create_app

ANONYMOUS = {
    "name": "Anonymous",
    "permissions": [],
    "authorized-labels": [],
    "groups": [],
    "validity": 60,
}
# The successor's default file (orthanc-auth-service 25.6+), comments included.
SUCCESSOR_DEFAULT = """// "SPDX-FileCopyrightText: 2022 - 2025 Orthanc Team SRL <info@orthanc.team>"
// SPDX-License-Identifier: CC0-1.0
{
    "name": "Anonymous",
    "user-id": null,
    "authorized-labels": [
    ],
    "permissions": [
        "upload"
    ],
    "groups": [],
    "validity": 60
}"""


def profile(client: TestClient, body: Any, headers: dict[str, str] | None = None) -> Any:
    response = client.post("/user/get-profile", json=body, headers=headers or {})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


@pytest.mark.parametrize(
    "body",
    [
        {"token-key": "", "token-value": "", "server-id": "standard-server-id"},  # 0.10+
        {"token-key": "", "token-value": "", "server-id": None},
        {"identifier": "standard-server-id"},  # 0.5-0.9, anonymous
        {"identifier": None},
        {},
        {"token-key": "Authorization", "token-value": "Basic dXNlcjpwdw==", "server-id": "s"},
        {"token-key": "Authorization", "token-value": "Bearer not-ours", "identifier": "s"},
        {"token-key": 1, "token-value": ["x"], "server-id": {"a": 1}},
        {"user-id": None, "server-id": "s"},
    ],
)
def test_every_caller_gets_the_anonymous_profile(client: TestClient, body: dict[str, Any]) -> None:
    answer = profile(client, body)
    assert answer == ANONYMOUS
    assert "upload" not in answer["permissions"]


def test_without_a_body(client: TestClient) -> None:
    response = client.post("/user/get-profile")
    assert response.status_code == 200
    assert response.json() == ANONYMOUS


def test_share_tokens_get_the_anonymous_profile(client: TestClient) -> None:
    token = client.put("/shares", json=share_body()).json()["token"]
    for key, value in (("Authorization", f"Bearer {token}"), ("token", token)):
        body = {"token-key": key, "token-value": value, "server-id": "standard-server-id"}
        assert profile(client, body) == ANONYMOUS


@pytest.mark.parametrize("user_id", ["0f2a-user", ""])
def test_user_lookups_are_unknown_users(client: TestClient, user_id: str) -> None:
    # Plugin 0.10+ audit logs: JSON null means "unknown user".
    response = client.post(
        "/user/get-profile", json={"user-id": user_id, "server-id": "standard-server-id"}
    )
    assert response.status_code == 200
    assert response.content == b"null"


def test_the_answer_is_a_profile_the_plugin_accepts(client: TestClient) -> None:
    # What AuthorizationWebService::FromJson and GetUserProfileInternal require.
    answer = profile(client, {"token-key": "", "token-value": ""})
    assert isinstance(answer["name"], str)
    assert isinstance(answer["permissions"], list)
    assert isinstance(answer["authorized-labels"], list)
    assert type(answer["validity"]) is int and answer["validity"] >= 0
    assert "user-id" not in answer


def test_profile_needs_the_validation_credentials(make_client: ClientFactory) -> None:
    client = make_client(users={"admin": "admin-pw"}, validation_users={"plugin": "plugin-pw"})
    body = {"token-key": "", "token-value": "", "server-id": None}
    assert client.post("/user/get-profile", json=body).status_code == 401
    wrong = basic("plugin", "admin-pw")
    assert client.post("/user/get-profile", json=body, headers=wrong).status_code == 401
    assert profile(client, body, basic("plugin", "plugin-pw")) == ANONYMOUS
    assert profile(client, body, basic("admin", "admin-pw")) == ANONYMOUS


@pytest.mark.parametrize("content", [b"not json", b"[]", b'"x"'])
def test_unparseable_bodies_are_422(client: TestClient, content: bytes) -> None:
    response = client.post(
        "/user/get-profile", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


# --- ANONYMOUS_PROFILE_FILE ---------------------------------------------------------------


def write(tmp_path: Path, content: str | dict[str, Any]) -> Path:
    path = tmp_path / "anonymous-profile.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_profile_file_sets_name_validity_and_groups(
    make_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path,
        "// share Orthanc of the radiology department\n"
        '{"name": "Patient link", "user-id": null, "permissions": [], '
        '"authorized-labels": [], "groups": ["patients"], "validity": 600}',
    )
    caplog.set_level("INFO")
    client = make_client(anonymous_profile_file=path)
    assert profile(client, {"token-key": "", "token-value": ""}) == {
        "name": "Patient link",
        "permissions": [],
        "authorized-labels": [],
        "groups": ["patients"],
        "validity": 600,
    }
    assert any("'Patient link'" in r.getMessage() for r in caplog.records)


def refused(path: Path) -> str:
    with pytest.raises(ConfigurationError) as error:
        create_app(token_service_settings(anonymous_profile_file=path))
    message = str(error.value)
    assert message.startswith("invalid configuration: ANONYMOUS_PROFILE_FILE")
    return message


def test_the_successors_default_profile_is_refused(tmp_path: Path) -> None:
    message = refused(write(tmp_path, SUCCESSOR_DEFAULT))
    assert "permission 'upload' (storing new instances (POST /instances))" in message
    assert "must have empty permissions and authorized-labels" in message


@pytest.mark.parametrize(
    "permission",
    [
        "all",
        "view",
        "download",
        "delete",
        "send",
        "modify",
        "anonymize",
        "upload",
        "q-r-remote-modalities",
        "settings",
        "api-view",
        "edit-labels",
        "admin-permissions",
        "audit-logs",
        "worklists",
        "share",
        "a-permission-of-plugin-0.12",
    ],
)
def test_any_permission_is_refused(tmp_path: Path, permission: str) -> None:
    path = write(tmp_path, {"name": "Anonymous", "permissions": [permission], "validity": 60})
    assert f"permission {permission!r}" in refused(path)


@pytest.mark.parametrize(
    ("label", "what"), [("*", "every study"), ("teaching", "the studies labelled 'teaching'")]
)
def test_authorized_labels_are_refused(tmp_path: Path, label: str, what: str) -> None:
    path = write(tmp_path, {"name": "Anonymous", "authorized-labels": [label]})
    assert f"authorized label {label!r} (lists {what} to anyone)" in refused(path)


def test_every_refusal_is_named_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path, {"permissions": ["upload", "delete"], "authorized-labels": ["*"], "name": "x"}
    )
    message = refused(path)
    assert "'upload'" in message and "'delete'" in message and "'*'" in message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("not json", "is not a JSON object"),
        ("[]", "profile: Input should be a valid dictionary"),
        ('{"name": ""}', "name: String should have at least 1 character"),
        ('{"validity": -1}', "validity: Input should be greater than or equal to 0"),
        ('{"validity": "soon"}', "validity"),
        ('{"permisions": ["upload"]}', "permisions: Extra inputs are not permitted"),
        ('{"user-id": "admin"}', "user-id: Input should be None"),
        ('{"groups": "patients"}', "groups"),
    ],
)
def test_malformed_profile_files_are_refused(tmp_path: Path, content: str, fragment: str) -> None:
    assert fragment in refused(write(tmp_path, content))


def test_missing_profile_file_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path / "nowhere.json")
    assert "cannot read" in message and "FileNotFoundError" in message

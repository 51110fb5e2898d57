"""HTTP Basic on the token service: USERS create, VALIDATION_USERS only validate."""

from __future__ import annotations

import pytest

from tests.factories import share_body
from tests.token_service.conftest import ClientFactory, basic

USERS = {"users": {"admin": "s3cret-admin"}, "validation_users": {"plugin": "s3cret-plugin"}}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("admin", "wrong"),
        basic("nobody", "s3cret-admin"),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic " + "YWRtaW4="},  # "admin" without a colon
    ],
)
def test_every_failure_looks_the_same(make_client: ClientFactory, headers: dict[str, str]) -> None:
    response = make_client(**USERS).put("/shares", json=share_body(), headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    assert response.headers["www-authenticate"] == 'Basic realm="orthanc-share"'


def test_admin_creates(make_client: ClientFactory) -> None:
    response = make_client(**USERS).put(
        "/shares", json=share_body(), headers=basic("admin", "s3cret-admin")
    )
    assert response.status_code == 200


def test_validator_cannot_create_or_revoke(make_client: ClientFactory) -> None:
    client = make_client(**USERS)
    headers = basic("plugin", "s3cret-plugin")
    assert client.put("/shares", json=share_body(), headers=headers).status_code == 403
    assert client.delete("/shares/abc", headers=headers).status_code == 403


def test_health_needs_no_credentials(make_client: ClientFactory) -> None:
    response = make_client(**USERS).get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_open_service_warns_at_startup(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    make_client()
    assert any(
        "USERS is not set" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records
    )


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_api_description_needs_admin_credentials(make_client: ClientFactory, path: str) -> None:
    client = make_client(**USERS)
    assert client.get(path).status_code == 401
    assert client.get(path, headers=basic("plugin", "s3cret-plugin")).status_code == 403
    assert client.get(path, headers=basic("admin", "s3cret-admin")).status_code == 200


def test_openapi_describes_the_share_routes(make_client: ClientFactory) -> None:
    paths = make_client().get("/openapi.json").json()["paths"]
    assert {"/shares", "/tokens/{token_type}", "/tokens/decode", "/user/get-profile"} <= set(paths)

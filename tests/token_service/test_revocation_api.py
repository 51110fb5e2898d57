"""Revoking shares: `DELETE /shares/{id}` and `POST /shares/revoke`."""

from __future__ import annotations

import logging
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.factories import SECRET, STUDY_ID, STUDY_UID, share_body
from tests.token_service.conftest import ClientFactory

BODY = {
    "orthanc-id": STUDY_ID,
    "server-id": "standard-server-id",
    "level": "study",
    "method": "get",
}


@pytest.fixture
def client(make_client: ClientFactory, tmp_path: Path) -> TestClient:
    return make_client(database_url=f"sqlite:///{tmp_path / 'revocations.sqlite3'}")


def granted(client: TestClient, token: str) -> bool:
    answer: bool = client.post("/shares/validate", json=BODY, headers={"token": token}).json()[
        "granted"
    ]
    return answer


def test_delete_by_share_id(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    token = client.put("/shares", json=share_body()).json()["token"]
    other = client.put("/shares", json=share_body()).json()["token"]
    assert granted(client, token)
    share_id = jwt.decode(token, SECRET, algorithms=["HS256"])["jti"]
    response = client.delete(f"/shares/{share_id}")
    assert response.status_code == 204
    assert not granted(client, token)
    assert granted(client, other)
    assert any(f"share revoked: id={share_id}" in r.getMessage() for r in caplog.records)


def test_revoke_by_link(client: TestClient) -> None:
    answer = client.put("/shares", json=share_body()).json()
    response = client.post("/shares/revoke", json={"token": answer["url"]})
    assert response.status_code == 200
    assert response.json() == {
        "share-id": jwt.decode(answer["token"], SECRET, algorithms=["HS256"])["jti"],
        "revoked": True,
    }
    assert not granted(client, answer["token"])


def test_revoke_a_token_of_the_original_service(client: TestClient) -> None:
    legacy = jwt.encode(
        {
            "id": "toto",
            "studies": [{"dicom_uid": STUDY_UID, "orthanc_id": STUDY_ID}],
            "anonymized": False,
            "type": "stone-viewer-publication",
            "expiration_date": None,
        },
        SECRET,
        algorithm="HS256",
    )
    assert granted(client, legacy)
    response = client.post("/shares/revoke", json={"token": legacy})
    assert response.json() == {"share-id": None, "revoked": True}
    assert not granted(client, legacy)


def test_revocation_survives_a_restart(make_client: ClientFactory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'revocations.sqlite3'}"
    first = make_client(database_url=url)
    token = first.put("/shares", json=share_body()).json()["token"]
    assert first.post("/shares/revoke", json={"token": token}).status_code == 200
    second = make_client(database_url=url)
    assert not granted(second, token)


def test_revoking_garbage_is_400(client: TestClient) -> None:
    response = client.post("/shares/revoke", json={"token": "not-a-token"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Not a valid share token"}


def test_revoking_an_expired_share_is_409(client: TestClient) -> None:
    expired = jwt.encode(
        {"studies": [{"orthanc_id": STUDY_ID}], "type": "stone-viewer-publication", "exp": 10},
        SECRET,
        algorithm="HS256",
    )
    assert client.post("/shares/revoke", json={"token": expired}).status_code == 409


def test_without_database_revocation_is_409(make_client: ClientFactory) -> None:
    client = make_client()
    response = client.delete("/shares/abc")
    assert response.status_code == 409
    assert "DATABASE_URL" in response.json()["detail"]


def test_unopenable_database_stops_startup(tmp_path: Path) -> None:
    from shared.errors import ConfigurationError
    from tests.factories import token_service_settings
    from token_service.app import create_app

    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        create_app(token_service_settings(database_url="mysql://nope"))

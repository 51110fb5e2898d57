"""`POST /shares/validate` and `POST /tokens/validate`, with every plugin payload variant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.factories import SECRET, STUDY_ID, STUDY_UID, share_body, token_body
from tests.token_service.conftest import ClientFactory, basic
from token_service import validation

ROUTES = ["/shares/validate", "/tokens/validate"]
OTHER_STUDY_ID = "11111111-22222222-33333333-44444444-55555555"


def legacy_body(**overrides: Any) -> dict[str, Any]:
    """What plugin 0.4 posts (pretty-printed JSON, `identifier`)."""
    body: dict[str, Any] = {
        "dicom-uid": STUDY_UID,
        "identifier": "standard-server-id",
        "level": "study",
        "method": "get",
        "orthanc-id": STUDY_ID,
    }
    body.update(overrides)
    return body


def current_body(**overrides: Any) -> dict[str, Any]:
    """What plugin 0.5+ posts (compact JSON, `server-id`, optional labels)."""
    body: dict[str, Any] = {
        "dicom-uid": STUDY_UID,
        "labels": ["teaching"],
        "level": "study",
        "method": "get",
        "orthanc-id": STUDY_ID,
        "server-id": "standard-server-id",
    }
    body.update(overrides)
    return body


def create(client: TestClient, **overrides: Any) -> str:
    token: str = client.put("/shares", json=share_body(**overrides)).json()["token"]
    return token


def validate(
    client: TestClient,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    route: str = ROUTES[0],
) -> dict[str, Any]:
    response = client.post(route, json=body, headers=headers or {})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer: dict[str, Any] = response.json()
    assert set(answer) == {"granted", "validity"}
    assert type(answer["granted"]) is bool
    assert type(answer["validity"]) is int and answer["validity"] >= 0
    return answer


@pytest.mark.parametrize("route", ROUTES)
def test_token_header_legacy_payload(client: TestClient, route: str) -> None:
    token = create(client)
    assert validate(client, legacy_body(), {"token": token}, route) == {
        "granted": True,
        "validity": 60,
    }


@pytest.mark.parametrize("route", ROUTES)
def test_token_value_with_bearer_current_payload(client: TestClient, route: str) -> None:
    token = create(client)
    body = current_body(**{"token-key": "Authorization", "token-value": f"Bearer {token}"})
    assert validate(client, body, route=route)["granted"] is True


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_authorization_header_bearer_any_case(client: TestClient, scheme: str) -> None:
    token = create(client)
    assert validate(client, current_body(), {"Authorization": f"{scheme} {token}"})["granted"]


def test_token_value_without_bearer(client: TestClient) -> None:
    token = create(client)
    body = current_body(**{"token-key": "token", "token-value": token})
    assert validate(client, body)["granted"] is True


def test_header_wins_over_token_value(client: TestClient) -> None:
    token = create(client)
    body = current_body(**{"token-key": "token", "token-value": "garbage"})
    assert validate(client, body, {"token": token})["granted"] is True


@pytest.mark.parametrize("route", ROUTES)
def test_anonymous_call_is_denied_not_an_error(client: TestClient, route: str) -> None:
    body = current_body()
    assert validate(client, body, route=route)["granted"] is False


def test_extra_fields_are_ignored(client: TestClient) -> None:
    token = create(client)
    body = current_body(uri="/studies/x", labels=[], future_field={"a": 1})
    assert validate(client, body, {"token": token})["granted"] is True


@pytest.mark.parametrize(
    "ids",
    [
        {"dicom-uid": STUDY_UID, "orthanc-id": None},
        {"dicom-uid": None, "orthanc-id": STUDY_ID},
        {"dicom-uid": "", "orthanc-id": STUDY_ID},
        {"orthanc-id": STUDY_ID},
    ],
)
def test_either_id_suffices(client: TestClient, ids: dict[str, Any]) -> None:
    token = create(client)
    body = {k: v for k, v in current_body().items() if k not in ("dicom-uid", "orthanc-id")}
    assert validate(client, {**body, **ids}, {"token": token})["granted"] is True


@pytest.mark.parametrize(
    "overrides",
    [
        {"orthanc-id": OTHER_STUDY_ID, "dicom-uid": None},
        {"orthanc-id": STUDY_ID, "dicom-uid": "1.2.3.4"},
        {"orthanc-id": None, "dicom-uid": None},
        {"method": "put"},
        {"method": "post"},
        {"method": "delete"},
        {"level": "patient"},
        {"level": "system", "uri": "/studies"},
        {"level": "series"},
        {"server-id": "another-server"},
        {"server-id": None},
    ],
)
def test_denied(client: TestClient, overrides: dict[str, Any]) -> None:
    token = create(client)
    assert validate(client, current_body(**overrides), {"token": token})["granted"] is False


def test_legacy_identifier_is_enforced(client: TestClient) -> None:
    token = create(client)
    assert not validate(client, legacy_body(identifier="other"), {"token": token})["granted"]
    assert not validate(client, legacy_body(identifier=None), {"token": token})["granted"]


def test_without_server_identifier_standard_tokens_open_any_server(
    make_client: ClientFactory,
) -> None:
    client = make_client(server_identifier=None)
    token = create(client)
    assert validate(client, legacy_body(identifier=None), {"token": token})["granted"] is True


def test_standard_and_anonymized_servers_are_kept_apart(make_client: ClientFactory) -> None:
    client = make_client(
        server_identifier=None,
        public_anonymized_orthanc_root="https://pacs.example.org/anon-shares/",
        anonymized_server_identifier="anonymized-server-id",
    )
    standard = create(client, type="osimis-viewer-publication")
    anonymized = create(client, type="osimis-viewer-publication", anonymized=True)
    on_anonymized = current_body(**{"server-id": "anonymized-server-id"})
    on_standard = current_body(**{"server-id": "standard-server-id"})
    assert validate(client, on_anonymized, {"token": anonymized})["granted"] is True
    assert validate(client, on_standard, {"token": anonymized})["granted"] is False
    assert validate(client, on_anonymized, {"token": standard})["granted"] is False
    assert validate(client, on_standard, {"token": standard})["granted"] is True


def test_meddream_publication_token_does_not_open_orthanc(make_client: ClientFactory) -> None:
    client = make_client(
        meddream_token_service_url="http://meddream:8088/v3/generate",
        public_meddream_root="https://pacs.example.org/meddream/",
    )
    token = create(client, type="meddream-viewer-publication")
    assert validate(client, current_body(), {"token": token})["granted"] is False


def test_validity_never_outlives_the_share(client: TestClient) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=20)).isoformat()
    token = create(client, **{"expiration-date": soon})
    answer = validate(client, current_body(), {"token": token})
    assert answer["granted"] is True
    assert 17 <= answer["validity"] <= 20


def test_validity_is_zero_under_one_second(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    token = create(client, **{"expiration-date": expires.isoformat()})
    assert validate(client, current_body(), {"token": token})["validity"] == 60
    # Half a second before expiry, as the validation route's clock sees it.
    fake_now = int(expires.timestamp()) - 0.5
    monkeypatch.setattr(validation, "time", SimpleNamespace(time=lambda: fake_now))
    assert validate(client, current_body(), {"token": token}) == {"granted": True, "validity": 0}


def test_validation_cache_seconds_is_the_ceiling(make_client: ClientFactory) -> None:
    client = make_client(validation_cache_seconds=5)
    token = create(client)
    assert validate(client, current_body(), {"token": token}) == {"granted": True, "validity": 5}


def test_expired_and_tampered_tokens_are_denied(client: TestClient) -> None:
    expired = jwt.encode(
        {
            "studies": [{"dicom_uid": STUDY_UID, "orthanc_id": STUDY_ID}],
            "type": "stone-viewer-publication",
            "exp": 1,
        },
        SECRET,
        algorithm="HS256",
    )
    token = create(client)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (expired, tampered, "garbage", "a.b.c"):
        assert validate(client, current_body(), {"token": bad})["granted"] is False


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[1, 2]", b'"text"', b'{"level": 5}', b""],
)
def test_unparseable_bodies_are_400(client: TestClient, content: bytes) -> None:
    response = client.post(ROUTES[0], content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("The body must be")


def test_oversized_body_is_413(client: TestClient) -> None:
    response = client.post(ROUTES[0], content=b"{" + b" " * 70000 + b"}")
    assert response.status_code == 413


def test_get_is_405(client: TestClient) -> None:
    assert client.get(ROUTES[0]).status_code == 405


def test_credentials_required_when_users_set(make_client: ClientFactory) -> None:
    client = make_client(users={"admin": "admin-pw"}, validation_users={"plugin": "plugin-pw"})
    token = create_with_auth(client)
    body = legacy_body(**{"token-key": "Authorization", "token-value": f"Bearer {token}"})
    assert client.post(ROUTES[0], json=body).status_code == 401
    assert client.post(ROUTES[0], json=body, headers=basic("plugin", "wrong")).status_code == 401
    assert validate(client, body, basic("plugin", "plugin-pw"))["granted"] is True
    assert validate(client, body, basic("admin", "admin-pw"))["granted"] is True


def create_with_auth(client: TestClient) -> str:
    token: str = client.put(
        "/shares", json=share_body(), headers=basic("admin", "admin-pw")
    ).json()["token"]
    return token


@pytest.mark.parametrize(
    "token_type",
    [
        "stone-viewer-publication",
        "osimis-viewer-publication",
        "ohif-viewer-publication",
        "volview-viewer-publication",
        "viewer-instant-link",
        "download-instant-link",
    ],
)
@pytest.mark.parametrize("route", ROUTES)
def test_types_presented_to_orthanc_are_granted(
    make_client: ClientFactory, token_type: str, route: str
) -> None:
    client = make_client(public_ohif_root="https://pacs.example.org/ohif/")
    body = token_body(type=token_type)
    token = client.put(f"/tokens/{token_type}", json=body).json()["token"]
    bearer = current_body(**{"token-key": "Authorization", "token-value": f"Bearer {token}"})
    assert validate(client, bearer, route=route)["granted"] is True
    assert (
        validate(client, current_body(method="delete"), {"token": token}, route)["granted"] is False
    )


@pytest.mark.parametrize("route", ROUTES)
def test_meddream_publication_of_put_tokens_does_not_open_orthanc(
    make_client: ClientFactory, route: str
) -> None:
    client = make_client(
        meddream_token_service_url="http://meddream:8088/v3/generate",
        public_meddream_root="https://pacs.example.org/meddream/",
    )
    body = token_body(type="meddream-viewer-publication")
    token = client.put("/tokens/meddream-viewer-publication", json=body).json()["token"]
    assert validate(client, current_body(), {"token": token}, route)["granted"] is False


def test_unexpected_failure_denies_with_a_generic_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = create(client)

    def broken(_: str) -> None:
        raise RuntimeError("internal detail /secret/path")

    monkeypatch.setattr(client.app.state.services.tokens, "lookup", broken)  # type: ignore[attr-defined]
    response = client.post(ROUTES[0], json=current_body(), headers={"token": token})
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert any("failed unexpectedly" in r.getMessage() for r in caplog.records)

"""`POST /tokens/decode`: OE2's token landing page and the plugin's `/tools/find` override."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import respx
from fastapi.testclient import TestClient

from tests.factories import SECRET, STUDY_ID, STUDY_UID, share_body, token_body
from tests.token_service.conftest import ClientFactory, basic

MEDDREAM_URL = "http://meddream-token:8088/v3/generate"
MEDDREAM = {
    "meddream_token_service_url": MEDDREAM_URL,
    "public_meddream_root": "https://pacs.example.org/meddream/",
}
STUDY = {"dicom-uid": STUDY_UID, "orthanc-id": STUDY_ID, "url": None, "level": "study"}
INVALID: dict[str, Any] = {
    "token-type": None,
    "error-code": "invalid",
    "redirect-url": None,
    "resources": [],
}
STONE_URL = (
    "https://pacs.example.org/shares/stone-webviewer/index.html"
    f"?study={STUDY_UID}&selectedStudies={STUDY_UID}&token="
)


def landing(token: str | None) -> dict[str, Any]:
    """What OE2's token landing page sends, through the plugin."""
    return {"token-key": "token", "token-value": token}


def query_filter(token: str) -> dict[str, Any]:
    """What the plugin's `/tools/find` override sends for a Stone or OHIF query."""
    return {"token-key": "Authorization", "token-value": f"Bearer {token}"}


def decode(
    client: TestClient, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = client.post("/tokens/decode", json=body, headers=headers or {})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer: dict[str, Any] = response.json()
    assert set(answer) == {"token-type", "error-code", "redirect-url", "resources"}
    return answer


def create(client: TestClient, **overrides: Any) -> str:
    token: str = client.put("/shares", json=share_body(**overrides)).json()["token"]
    return token


def legacy(payload: dict[str, Any], key: str = SECRET) -> str:
    return jwt.encode(payload, key, algorithm="HS256")


def test_landing_gets_the_viewer_and_the_studies(client: TestClient) -> None:
    token = create(client)
    assert decode(client, landing(token)) == {
        "token-type": "stone-viewer-publication",
        "error-code": None,
        "redirect-url": STONE_URL + token,
        "resources": [STUDY],
    }


def test_query_filter_gets_the_studies_from_a_bearer_value(client: TestClient) -> None:
    token = create(client)
    answer = decode(client, query_filter(token))
    assert answer["resources"] == [STUDY]
    assert answer["error-code"] is None
    assert answer["token-type"] == "stone-viewer-publication"


def test_token_of_put_tokens_decodes(client: TestClient) -> None:
    body = token_body(
        type="osimis-viewer-publication",
        resources=[
            {"orthanc-id": STUDY_ID, "dicom-uid": STUDY_UID, "level": "study"},
            {"orthanc-id": "b-2", "level": "study"},
        ],
    )
    token = client.put("/tokens/osimis-viewer-publication", json=body).json()["token"]
    answer = decode(client, landing(token))
    assert answer["resources"] == [
        STUDY,
        {"dicom-uid": None, "orthanc-id": "b-2", "url": None, "level": "study"},
    ]
    assert answer["redirect-url"] == (
        "https://pacs.example.org/shares/osimis-viewer/app/index.html"
        f"?pickableStudyIds={STUDY_ID},b-2&selectedStudyIds={STUDY_ID},b-2&token={token}"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"token-key": "token", "token-value": None},
        {"token-key": "token"},
        {},
        {"token-key": None, "token-value": None},
        {"token-key": "token", "token-value": ""},
        {"token-key": "Authorization", "token-value": "Bearer "},
        {"token-key": "token", "token-value": 42},
        {"token-key": "token", "token-value": ["a.b.c"]},
        {"token-key": "token", "token-value": "garbage"},
        {"token-key": "token", "token-value": "a.b.c"},
        {"token-key": "Authorization", "token-value": "Basic dXNlcjpwdw=="},
        {"token-key": "token", "token-value": "x" * 20000},
    ],
)
def test_missing_null_or_garbage_tokens_are_invalid(
    client: TestClient, body: dict[str, Any]
) -> None:
    assert decode(client, body) == INVALID


def test_tampered_and_foreign_tokens_are_invalid(client: TestClient) -> None:
    token = create(client)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}x.{signature}"
    foreign = legacy(
        {"studies": [{"dicom_uid": STUDY_UID}], "type": "stone-viewer-publication"},
        key="another-key-that-is-long-enough-for-hs256!!",
    )
    for bad in (tampered, foreign):
        assert decode(client, landing(bad)) == INVALID


@pytest.mark.parametrize(
    "claims",
    [
        {"studies": [{"dicom_uid": STUDY_UID}], "type": "osimis-viewer-publication", "exp": 10},
        {
            "studies": [{"dicom_uid": STUDY_UID}],
            "type": "osimis-viewer-publication",
            "expiration_date": "2020-01-01T00:00:00",
        },
    ],
    ids=["exp", "v23.1-expiration-date"],
)
def test_expired_tokens_say_so_with_their_type(client: TestClient, claims: dict[str, Any]) -> None:
    for body in (landing(legacy(claims)), query_filter(legacy(claims))):
        assert decode(client, body) == {
            "token-type": "osimis-viewer-publication",
            "error-code": "expired",
            "redirect-url": None,
            "resources": [],
        }


@pytest.mark.parametrize("exp", ["nan", "soon", [1], {"at": 1}, 1e400])
def test_well_signed_token_with_a_garbled_exp_is_invalid(client: TestClient, exp: Any) -> None:
    # Decode reads expired shares without PyJWT's `exp` check: the codec checks it.
    garbled = legacy(
        {"studies": [{"orthanc_id": STUDY_ID}], "type": "stone-viewer-publication", "exp": exp}
    )
    assert decode(client, landing(garbled)) == INVALID


def test_revoked_share_is_invalid(make_client: ClientFactory, tmp_path: Path) -> None:
    client = make_client(database_url=f"sqlite:///{tmp_path / 'revocations.sqlite3'}")
    token = create(client)
    other = create(client)
    assert client.post("/shares/revoke", json={"token": token}).status_code == 200
    assert decode(client, landing(token)) == INVALID
    assert decode(client, query_filter(token)) == INVALID
    assert decode(client, landing(other))["resources"] == [STUDY]


def test_v23_1_token_decodes(client: TestClient) -> None:
    token = legacy(
        {
            "id": "toto",
            "studies": [{"dicom_uid": STUDY_UID, "orthanc_id": STUDY_ID}],
            "anonymized": False,
            "type": "stone-viewer-publication",
            "expiration_date": None,
        }
    )
    assert decode(client, landing(token)) == {
        "token-type": "stone-viewer-publication",
        "error-code": None,
        "redirect-url": STONE_URL + token,
        "resources": [STUDY],
    }


def test_v22_9_single_study_token_decodes(client: TestClient) -> None:
    token = legacy(
        {
            "id": "toto",
            "dicom_uid": STUDY_UID,
            "orthanc_id": STUDY_ID,
            "type": "osimis-viewer-publication",
            "expiration_date": "2099-07-07T11:00:00+00:00",
        }
    )
    answer = decode(client, query_filter(token))
    assert answer["token-type"] == "osimis-viewer-publication"
    assert answer["resources"] == [STUDY]
    assert answer["redirect-url"].startswith(
        f"https://pacs.example.org/shares/osimis-viewer/app/index.html?pickableStudyIds={STUDY_ID}&"
    )


def test_anonymized_share_redirects_to_the_anonymized_orthanc(make_client: ClientFactory) -> None:
    client = make_client(
        public_anonymized_orthanc_root="https://pacs.example.org/anon-shares/",
        anonymized_server_identifier="anonymized-server-id",
    )
    token = create(client, type="osimis-viewer-publication", anonymized=True)
    answer = decode(client, landing(token))
    assert answer["redirect-url"].startswith(
        "https://pacs.example.org/anon-shares/osimis-viewer/app/index.html?"
    )


def test_ohif_share_redirects_to_ohif(make_client: ClientFactory) -> None:
    client = make_client(public_ohif_root="https://pacs.example.org/ohif/")
    body = token_body(type="ohif-viewer-publication")
    token = client.put("/tokens/ohif-viewer-publication", json=body).json()["token"]
    answer = decode(client, landing(token))
    assert answer["redirect-url"] == (
        f"https://pacs.example.org/ohif/viewer?StudyInstanceUIDs={STUDY_UID}&token={token}"
    )
    assert answer["resources"] == [STUDY]


@pytest.mark.parametrize("token_type", ["viewer-instant-link", "download-instant-link"])
def test_instant_links_list_their_studies_but_give_the_landing_nowhere_to_go(
    client: TestClient, token_type: str
) -> None:
    token = client.put(f"/tokens/{token_type}", json=token_body(type=token_type)).json()["token"]
    assert decode(client, query_filter(token)) == {
        "token-type": token_type,
        "error-code": None,
        "redirect-url": None,
        "resources": [STUDY],
    }
    assert decode(client, landing(token)) == {
        "token-type": token_type,
        "error-code": "unknown",
        "redirect-url": None,
        "resources": [STUDY],
    }


def test_viewer_root_removed_since_creation_is_unknown_for_the_landing(
    make_client: ClientFactory,
) -> None:
    token = create(make_client())
    answer = decode(make_client(public_orthanc_root=None), landing(token))
    assert answer["error-code"] == "unknown"
    assert answer["redirect-url"] is None


# --- MedDream publications: mint for the landing page only -------------------------------


@pytest.fixture
def meddream_client(make_client: ClientFactory) -> TestClient:
    return make_client(**MEDDREAM)


@pytest.mark.parametrize(
    "body_of",
    [
        query_filter,
        lambda token: {"token-key": "authorization", "token-value": f"Bearer {token}"},
        lambda token: {"token-key": "Authorization", "token-value": token},
        lambda token: {"token-key": "Token", "token-value": token},
        lambda token: {"token-key": "token-header", "token-value": token},
        lambda token: {"token-value": token},
    ],
    ids=["bearer", "lower-case-authorization", "authorization", "Token", "other-key", "no-key"],
)
def test_query_filter_never_mints_a_meddream_token(
    meddream_client: TestClient, body_of: Any
) -> None:
    token = create(meddream_client, type="meddream-viewer-publication")
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        route = mock.post(MEDDREAM_URL).mock(return_value=httpx.Response(200, text="md-token"))
        answer = decode(meddream_client, body_of(token))
    assert route.call_count == 0
    # A MedDream publication never opens Orthanc: no study for the filter either.
    assert answer == {
        "token-type": "meddream-viewer-publication",
        "error-code": None,
        "redirect-url": None,
        "resources": [],
    }


def test_landing_mints_exactly_one_meddream_token(meddream_client: TestClient) -> None:
    token = create(meddream_client, type="meddream-viewer-publication")
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        route = mock.post(MEDDREAM_URL).mock(return_value=httpx.Response(200, text="md+token/="))
        answer = decode(meddream_client, landing(token))
    assert route.call_count == 1
    assert httpx.Response(200, content=route.calls.last.request.content).json() == {
        "items": [{"studies": {"study": STUDY_UID, "storage": "Orthanc"}}]
    }
    assert answer == {
        "token-type": "meddream-viewer-publication",
        "error-code": None,
        "redirect-url": f"https://pacs.example.org/meddream/?study={STUDY_UID}&token=md%2Btoken%2F%3D",
        "resources": [],
    }


@pytest.mark.parametrize(
    "outcome",
    [
        httpx.Response(500, text="<html>java.lang.NullPointerException</html>"),
        httpx.ConnectError("x"),
    ],
)
def test_meddream_failure_is_unknown_not_an_http_error(
    meddream_client: TestClient, outcome: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = create(meddream_client, type="meddream-viewer-publication")
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        route = mock.post(MEDDREAM_URL)
        if isinstance(outcome, Exception):
            route.mock(side_effect=outcome)
        else:
            route.mock(return_value=outcome)
        response = meddream_client.post("/tokens/decode", json=landing(token))
    assert response.status_code == 200
    assert response.json()["error-code"] == "unknown"
    assert "NullPointer" not in response.text
    assert any("cannot be opened now" in r.getMessage() for r in caplog.records)


def test_meddream_publication_on_a_service_without_meddream(make_client: ClientFactory) -> None:
    token = create(make_client(**MEDDREAM), type="meddream-viewer-publication")
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        route = mock.post(MEDDREAM_URL)
        answer = decode(make_client(), landing(token))
    assert not route.called
    assert answer["error-code"] == "unknown"


# --- Credentials, bodies, logs ------------------------------------------------------------


def test_decode_needs_the_validation_credentials(make_client: ClientFactory) -> None:
    client = make_client(users={"admin": "admin-pw"}, validation_users={"plugin": "plugin-pw"})
    token = client.put("/shares", json=share_body(), headers=basic("admin", "admin-pw")).json()[
        "token"
    ]
    assert client.post("/tokens/decode", json=landing(token)).status_code == 401
    wrong = basic("plugin", "nope")
    assert client.post("/tokens/decode", json=landing(token), headers=wrong).status_code == 401
    for user, password in (("plugin", "plugin-pw"), ("admin", "admin-pw")):
        answer = decode(client, landing(token), basic(user, password))
        assert answer["resources"] == [STUDY]


@pytest.mark.parametrize("content", [b"not json", b"[]", b'"token"', b""])
def test_unparseable_bodies_are_422(client: TestClient, content: bytes) -> None:
    response = client.post(
        "/tokens/decode", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_get_is_405(client: TestClient) -> None:
    assert client.get("/tokens/decode").status_code == 405


def test_decode_logs_no_token(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = create(client)
    decode(client, landing(token))
    decode(client, query_filter(token))
    ours = [r for r in caplog.records if not r.name.startswith("httpx")]
    assert any("decoded a stone-viewer-publication token" in r.getMessage() for r in ours)
    for record in ours:
        assert token.split(".")[2] not in record.getMessage()

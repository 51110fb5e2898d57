"""`PUT /shares`: the v23.1 API that Orthanc Explorer 2 0.4.3-0.6 and scripts call."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import respx
from fastapi.testclient import TestClient

from shared.pseudonyms import pseudonymous_share
from shared.tokens import TokenCodec
from tests.factories import ANONYMIZATION_KEY, SECRET, STUDY_ID, STUDY_UID, share_body
from tests.token_service.conftest import ClientFactory

MEDDREAM = {
    "meddream_token_service_url": "http://meddream-token:8088/v3/generate",
    "public_meddream_root": "https://pacs.example.org/meddream/",
}
OHIF = {"public_ohif_root": "https://pacs.example.org/ohif/"}
ANONYMIZED_OHIF = {"public_anonymized_ohif_root": "https://pacs.example.org/anon-ohif/"}


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"])
    return decoded


def test_oe2_body_creates_a_stone_share_with_a_landing_link(client: TestClient) -> None:
    response = client.put("/shares", json=share_body())
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"request", "token", "url"}
    assert answer["request"] == {
        "id": None,
        "studies": [{"dicom-uid": STUDY_UID, "orthanc-id": STUDY_ID}],
        "anonymized": False,
        "type": "stone-viewer-publication",
        "expiration-date": "2099-02-10T14:12:33.123000+00:00",
    }
    assert answer["url"] == f"https://pacs.example.org/welcome/?token={answer['token']}"


def test_token_keeps_the_v23_fields_and_adds_registered_claims(client: TestClient) -> None:
    token = client.put("/shares", json=share_body(id="study for dr. who")).json()["token"]
    payload = claims(token)
    assert list(payload)[:5] == ["id", "studies", "anonymized", "type", "expiration_date"]
    assert payload["id"] == "study for dr. who"
    assert payload["studies"] == [{"dicom_uid": STUDY_UID, "orthanc_id": STUDY_ID}]
    assert payload["type"] == "stone-viewer-publication"
    assert payload["exp"] == int(datetime(2099, 2, 10, 14, 12, 33, tzinfo=UTC).timestamp())
    assert isinstance(payload["iat"], int)
    assert isinstance(payload["jti"], str) and len(payload["jti"]) >= 16


def test_each_share_gets_its_own_id(client: TestClient) -> None:
    first = claims(client.put("/shares", json=share_body()).json()["token"])
    second = claims(client.put("/shares", json=share_body()).json()["token"])
    assert first["jti"] != second["jti"]


def test_share_without_expiry_has_no_exp(client: TestClient) -> None:
    answer = client.put("/shares", json=share_body(**{"expiration-date": None})).json()
    assert answer["request"]["expiration-date"] is None
    assert "exp" not in claims(answer["token"])


def test_naive_expiration_date_is_utc(client: TestClient) -> None:
    answer = client.put("/shares", json=share_body(**{"expiration-date": "2099-01-01T10:00:00"}))
    assert answer.json()["request"]["expiration-date"] == "2099-01-01T10:00:00+00:00"
    assert claims(answer.json()["token"])["exp"] == int(
        datetime(2099, 1, 1, 10, tzinfo=UTC).timestamp()
    )


def test_direct_viewer_urls_without_landing(make_client: ClientFactory) -> None:
    client = make_client(
        public_landing_root=None, public_orthanc_root="https://pacs.example.org/shares"
    )
    stone = client.put("/shares", json=share_body()).json()
    assert stone["url"] == (
        "https://pacs.example.org/shares/stone-webviewer/index.html"
        f"?study={STUDY_UID}&selectedStudies={STUDY_UID}&token={stone['token']}"
    )
    body = share_body(
        type="osimis-viewer-publication",
        studies=[{"orthanc-id": "a-1"}, {"orthanc-id": "b-2", "dicom-uid": "1.2"}],
    )
    osimis = client.put("/shares", json=body).json()
    assert osimis["url"] == (
        "https://pacs.example.org/shares/osimis-viewer/app/index.html"
        f"?pickableStudyIds=a-1,b-2&selectedStudyIds=a-1,b-2&token={osimis['token']}"
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (share_body(studies=[]), "studies"),
        (
            share_body(studies=[{"dicom-uid": None, "orthanc-id": None}]),
            "dicom-uid or an orthanc-id",
        ),
        (share_body(studies=[{}]), "dicom-uid or an orthanc-id"),
        (share_body(type="no-such-viewer"), "type"),
        (share_body(**{"expiration-date": "tomorrow"}), "expiration-date"),
        ({"type": "stone-viewer-publication"}, "studies"),
    ],
)
def test_malformed_bodies_are_422(client: TestClient, body: dict[str, Any], fragment: str) -> None:
    response = client.put("/shares", json=body)
    assert response.status_code == 422
    assert fragment in response.text
    assert "input" not in response.json()["detail"][0]


def test_non_json_body_is_422(client: TestClient) -> None:
    response = client.put(
        "/shares", content=b"not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_expiration_in_the_past_is_refused(client: TestClient) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = client.put("/shares", json=share_body(**{"expiration-date": past}))
    assert response.status_code == 400
    assert response.json() == {"detail": "expiration-date is in the past"}


@pytest.mark.parametrize(
    ("overrides", "body", "message"),
    [
        ({"public_orthanc_root": None}, share_body(), "PUBLIC_ORTHANC_ROOT"),
        (
            {},
            share_body(anonymized=True, type="volview-viewer-publication"),
            "volview-viewer-publication shares cannot be anonymized",
        ),
        (
            {
                "public_anonymized_orthanc_root": "https://pacs.example.org/anon-shares/",
                "anonymized_server_identifier": "anonymized-server-id",
                "anonymization_key": None,
            },
            share_body(anonymized=True),
            "ANONYMIZATION_KEY",
        ),
        (
            {},
            share_body(anonymized=True, type="osimis-viewer-publication"),
            "PUBLIC_ANONYMIZED_ORTHANC_ROOT",
        ),
        (
            {"public_anonymized_orthanc_root": "https://pacs.example.org/anon-shares/"},
            share_body(anonymized=True, type="osimis-viewer-publication"),
            "ANONYMIZED_SERVER_IDENTIFIER",
        ),
        ({}, share_body(type="meddream-instant-link"), "MEDDREAM_TOKEN_SERVICE_URL"),
        ({}, share_body(type="meddream-viewer-publication"), "MEDDREAM_TOKEN_SERVICE_URL"),
        (
            {**MEDDREAM, "public_landing_root": None},
            share_body(type="meddream-viewer-publication"),
            "PUBLIC_LANDING_ROOT",
        ),
        (
            MEDDREAM,
            share_body(anonymized=True, type="meddream-instant-link"),
            "cannot be anonymized",
        ),
        (
            # Anonymized OHIF reads through the anonymizer: its own OHIF, not PUBLIC_OHIF_ROOT's.
            {**OHIF, "anonymized_server_identifier": "anonymized-server-id"},
            share_body(anonymized=True, type="ohif-viewer-publication"),
            "anonymized ohif-viewer-publication shares are not enabled "
            "(PUBLIC_ANONYMIZED_OHIF_ROOT is not set)",
        ),
        (
            ANONYMIZED_OHIF,
            share_body(anonymized=True, type="ohif-viewer-publication"),
            "(ANONYMIZED_SERVER_IDENTIFIER is not set)",
        ),
        (
            {**ANONYMIZED_OHIF, "anonymized_server_identifier": "anonymized-server-id"},
            share_body(
                anonymized=True, type="ohif-viewer-publication", studies=[{"orthanc-id": STUDY_ID}]
            ),
            "needs a dicom-uid for every study",
        ),
        ({}, share_body(studies=[{"orthanc-id": STUDY_ID}]), "needs a dicom-uid for every study"),
        (
            {},
            share_body(type="osimis-viewer-publication", studies=[{"dicom-uid": STUDY_UID}]),
            "needs an orthanc-id for every study",
        ),
    ],
)
def test_shares_the_configuration_does_not_allow_are_400(
    make_client: ClientFactory, overrides: dict[str, Any], body: dict[str, Any], message: str
) -> None:
    response = make_client(**overrides).put("/shares", json=body)
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_anonymized_osimis_share_links_to_the_anonymized_orthanc(
    make_client: ClientFactory,
) -> None:
    client = make_client(
        public_landing_root=None,
        public_anonymized_orthanc_root="https://pacs.example.org/anon-shares/",
        anonymized_server_identifier="anonymized-server-id",
    )
    body = share_body(anonymized=True, type="osimis-viewer-publication")
    answer = client.put("/shares", json=body).json()
    assert answer["url"].startswith("https://pacs.example.org/anon-shares/osimis-viewer/app/")
    assert claims(answer["token"])["anonymized"] is True


@respx.mock(assert_all_called=True, assert_all_mocked=True)
def test_meddream_instant_link(make_client: ClientFactory, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("http://meddream-token:8088/v3/generate").mock(
        return_value=httpx.Response(200, text="ab+c/d==\n")
    )
    client = make_client(**MEDDREAM)
    body = share_body(
        type="meddream-instant-link", studies=[{"dicom-uid": "1.2"}, {"dicom-uid": "1.3"}]
    )
    answer = client.put("/shares", json=body).json()
    assert answer["token"] == "ab+c/d=="
    assert (
        answer["url"] == "https://pacs.example.org/meddream/?study=1.2,1.3&token=ab%2Bc%2Fd%3D%3D"
    )
    sent = route.calls.last.request
    assert sent.headers["content-type"] == "application/json"
    assert httpx.Response(200, content=sent.content).json() == {
        "items": [
            {"studies": {"study": "1.2", "storage": "Orthanc"}},
            {"studies": {"study": "1.3", "storage": "Orthanc"}},
        ]
    }


@respx.mock(assert_all_called=True, assert_all_mocked=True)
def test_meddream_failure_is_502_without_internals(
    make_client: ClientFactory, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("http://meddream-token:8088/v3/generate").mock(
        return_value=httpx.Response(500, text="<html>java.lang.NullPointerException</html>")
    )
    response = make_client(**MEDDREAM).put("/shares", json=share_body(type="meddream-instant-link"))
    assert response.status_code == 502
    assert "NullPointer" not in response.text


def test_meddream_viewer_publication_links_to_the_landing(make_client: ClientFactory) -> None:
    answer = make_client(**MEDDREAM).put(
        "/shares", json=share_body(type="meddream-viewer-publication")
    )
    assert answer.status_code == 200
    assert answer.json()["url"].startswith("https://pacs.example.org/welcome/?token=")


def test_creation_is_logged_without_the_token(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = client.put("/shares", json=share_body()).json()
    created = [r.getMessage() for r in caplog.records if "share created" in r.getMessage()]
    assert len(created) == 1
    share_id = claims(answer["token"])["jti"]
    assert f"id={share_id}" in created[0]
    assert "type=stone-viewer-publication studies=1" in created[0]
    for record in caplog.records:
        assert answer["token"] not in record.getMessage()
        assert answer["token"].split(".")[2] not in record.getMessage()


def test_anonymized_stone_share_names_pseudonymous_studies(make_client: ClientFactory) -> None:
    client = make_client(
        public_landing_root=None,
        public_anonymized_orthanc_root="https://pacs.example.org/anon-shares/",
        anonymized_server_identifier="anonymized-server-id",
    )
    answer = client.put("/shares", json=share_body(anonymized=True)).json()
    share = TokenCodec([SECRET.encode()], anonymization_key=ANONYMIZATION_KEY.encode()).decode(
        answer["token"]
    )
    pseudonym = pseudonymous_share(share, ANONYMIZATION_KEY.encode()).studies[0].dicom_uid
    assert pseudonym is not None and pseudonym.startswith("2.25.")
    assert answer["url"] == (
        "https://pacs.example.org/anon-shares/stone-webviewer/index.html"
        f"?study={pseudonym}&selectedStudies={pseudonym}&token={answer['token']}"
    )
    # Nothing in the link names the real study, the token's readable payload included.
    assert STUDY_UID not in answer["url"]
    assert STUDY_ID not in answer["url"]
    payload = claims(answer["token"])
    assert payload["studies"][0]["dicom_uid"] == pseudonym
    assert STUDY_UID not in json.dumps(payload) and STUDY_ID not in json.dumps(payload)
    # The service itself opens the sealed real study, which its validation compares.
    assert share.studies[0].dicom_uid == STUDY_UID
    assert share.studies[0].orthanc_id == STUDY_ID


@pytest.mark.parametrize("data_source", ["dicom-web", "dicom-json"])
def test_anonymized_ohif_share_opens_pseudonymous_studies_through_dicomweb(
    make_client: ClientFactory, data_source: str
) -> None:
    # The anonymizer serves OHIF's DICOMweb data source only: OHIF_DATA_SOURCE, which
    # says how the OHIF of PUBLIC_OHIF_ROOT reads, changes nothing here.
    client = make_client(
        **OHIF,
        **ANONYMIZED_OHIF,
        ohif_data_source=data_source,
        public_landing_root=None,
        anonymized_server_identifier="anonymized-server-id",
    )
    body = share_body(
        anonymized=True, type="ohif-viewer-publication", studies=[{"dicom-uid": STUDY_UID}]
    )
    response = client.put("/shares", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    root = "https://pacs.example.org/anon-ohif/viewer?StudyInstanceUIDs="
    assert answer["url"].startswith(root)
    study, token = answer["url"].removeprefix(root).split("&token=")
    assert study.startswith("2.25.") and STUDY_UID not in study
    assert token == answer["token"]
    decoded = client.post(
        "/tokens/decode", json={"token-key": "token", "token-value": answer["token"]}
    ).json()
    assert decoded["redirect-url"] == answer["url"]


def test_standard_ohif_share_keeps_the_standard_ohif(make_client: ClientFactory) -> None:
    client = make_client(**OHIF, **ANONYMIZED_OHIF, public_landing_root=None)
    answer = client.put("/shares", json=share_body(type="ohif-viewer-publication")).json()
    assert answer["url"] == (
        f"https://pacs.example.org/ohif/viewer?StudyInstanceUIDs={STUDY_UID}"
        f"&token={answer['token']}"
    )


@pytest.mark.parametrize(
    ("overrides", "expected", "absent"),
    [
        (
            {
                "public_anonymized_orthanc_root": "https://pacs.example.org/anon-shares/",
                "public_anonymized_ohif_root": "https://pacs.example.org/anon-ohif/",
                "anonymized_server_identifier": "anonymized-server-id",
            },
            [
                "anonymized stone-viewer-publication",
                "anonymized osimis-viewer-publication",
                "anonymized ohif-viewer-publication",
            ],
            [],
        ),
        (
            {
                "public_anonymized_orthanc_root": "https://pacs.example.org/anon-shares/",
                "public_anonymized_ohif_root": "https://pacs.example.org/anon-ohif/",
                "anonymized_server_identifier": "anonymized-server-id",
                "anonymization_key": None,
            },
            [],
            ["anonymized"],
        ),
    ],
    ids=["anonymized shares enabled", "no anonymization key"],
)
def test_startup_summary_lists_the_share_types_that_can_be_created(
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    overrides: dict[str, Any],
    expected: list[str],
    absent: list[str],
) -> None:
    caplog.set_level(logging.INFO, logger="token_service.app")

    make_client(**overrides)

    summary = [r.getMessage() for r in caplog.records if "share types enabled" in r.getMessage()]
    assert len(summary) == 1
    for kind in expected:
        assert kind in summary[0]
    for word in absent:
        assert word not in summary[0]

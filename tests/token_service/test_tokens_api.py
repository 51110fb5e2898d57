"""`PUT /tokens/{type}`: the creation API of the authorization plugin 0.5+ (OE2 0.7+)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import jwt
import pytest
import respx
from fastapi.testclient import TestClient

from shared.token_models import MAX_VALIDITY_DURATION
from tests.factories import SECRET, STUDY_ID, STUDY_UID, token_body
from tests.token_service.conftest import ClientFactory, basic

MEDDREAM = {
    "meddream_token_service_url": "http://meddream-token:8088/v3/generate",
    "public_meddream_root": "https://pacs.example.org/meddream/",
}
OHIF = {"public_ohif_root": "https://pacs.example.org/ohif"}
DIRECT = {"public_landing_root": None}
ID_2 = "aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee"
UID_2 = "1.2.840.113619.2.55.3.2"
TWO_STUDIES = [
    {"dicom-uid": STUDY_UID, "orthanc-id": STUDY_ID, "level": "study"},
    {"dicom-uid": UID_2, "orthanc-id": ID_2, "level": "study"},
]


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"])
    return decoded


def put(client: TestClient, token_type: str, **overrides: Any) -> httpx2.Response:
    body = token_body(**{"type": token_type, **overrides})
    return client.put(f"/tokens/{token_type}", json=body)


def test_plugin_body_creates_a_stone_token_with_a_landing_link(client: TestClient) -> None:
    before = time.time()
    response = put(client, "stone-viewer-publication")
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"request", "token", "url"}
    assert answer["url"] == f"https://pacs.example.org/welcome/?token={answer['token']}"
    echoed = answer["request"]
    assert echoed["type"] == "stone-viewer-publication"
    assert echoed["resources"] == [
        {"dicom-uid": STUDY_UID, "orthanc-id": STUDY_ID, "url": None, "level": "study"}
    ]
    assert echoed["validity-duration"] == 15 * 24 * 3600
    # validity-duration without expiration-date: the token expires that long from now.
    payload = claims(answer["token"])
    assert before + 15 * 24 * 3600 - 1 <= payload["exp"] <= time.time() + 15 * 24 * 3600
    assert datetime.fromisoformat(echoed["expiration-date"]).timestamp() == pytest.approx(
        payload["exp"], abs=1
    )


def test_token_has_the_one_format_of_put_shares(client: TestClient) -> None:
    token = put(client, "stone-viewer-publication", id="for dr. who").json()["token"]
    payload = claims(token)
    assert list(payload)[:5] == ["id", "studies", "anonymized", "type", "expiration_date"]
    assert payload["id"] == "for dr. who"
    assert payload["studies"] == [{"dicom_uid": STUDY_UID, "orthanc_id": STUDY_ID}]
    assert payload["anonymized"] is False
    assert payload["type"] == "stone-viewer-publication"
    assert isinstance(payload["jti"], str) and isinstance(payload["iat"], int)


@pytest.mark.parametrize("body_type", [None, ""])
def test_omitted_body_type_takes_the_paths(client: TestClient, body_type: str | None) -> None:
    body = token_body(type=body_type)
    if body_type is None:
        del body["type"]
    answer = client.put("/tokens/osimis-viewer-publication", json=body).json()
    assert answer["request"]["type"] == "osimis-viewer-publication"
    assert claims(answer["token"])["type"] == "osimis-viewer-publication"


@pytest.mark.parametrize("body_type", ["osimis-viewer-publication", "invalid", "STONE"])
def test_body_type_differing_from_the_path_is_400(client: TestClient, body_type: str) -> None:
    response = client.put("/tokens/stone-viewer-publication", json=token_body(type=body_type))
    assert response.status_code == 400
    assert response.json() == {"detail": "The type in the body differs from the type in the path"}


@pytest.mark.parametrize("path_type", ["invalid", "validate", "shares", "Stone-Viewer-Publication"])
def test_unknown_path_type_is_400(client: TestClient, path_type: str) -> None:
    body = token_body()
    del body["type"]
    response = client.put(f"/tokens/{path_type}", json=body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Unknown token type; known types: ")
    assert "ohif-viewer-publication" in response.json()["detail"]


@pytest.mark.parametrize("duration", [0, -1, -(2**63)])
def test_no_positive_duration_means_no_expiry(client: TestClient, duration: int) -> None:
    answer = put(client, "stone-viewer-publication", **{"validity-duration": duration}).json()
    assert answer["request"]["validity-duration"] is None
    assert answer["request"]["expiration-date"] is None
    assert "exp" not in claims(answer["token"])


@pytest.mark.parametrize(
    "duration", [MAX_VALIDITY_DURATION + 1, 2**32 + 7, 2**63 - 1, 2**64 - 1, 10**30]
)
def test_garbage_duration_is_a_clear_422(client: TestClient, duration: int) -> None:
    # What the plugin's uninitialised `validityDuration` may send (protocol.md §4.5).
    response = put(client, "stone-viewer-publication", **{"validity-duration": duration})
    assert response.status_code == 422
    assert "validity-duration must be at most 315360000 seconds (10 years)" in response.text


def test_ten_years_is_accepted(client: TestClient) -> None:
    response = put(
        client, "stone-viewer-publication", **{"validity-duration": MAX_VALIDITY_DURATION}
    )
    assert response.status_code == 200
    assert claims(response.json()["token"])["exp"] >= time.time() + MAX_VALIDITY_DURATION - 5


@pytest.mark.parametrize("duration", ["soon", 1.5, [60], {"s": 60}])
def test_non_integer_duration_is_422(client: TestClient, duration: Any) -> None:
    response = put(client, "stone-viewer-publication", **{"validity-duration": duration})
    assert response.status_code == 422
    assert "validity-duration" in response.text


def test_expiration_date_without_duration(client: TestClient) -> None:
    answer = put(
        client,
        "stone-viewer-publication",
        **{"validity-duration": None, "expiration-date": "2099-02-10T14:12:33.123Z"},
    ).json()
    assert answer["request"]["expiration-date"] == "2099-02-10T14:12:33.123000+00:00"
    assert claims(answer["token"])["exp"] == int(
        datetime(2099, 2, 10, 14, 12, 33, tzinfo=UTC).timestamp()
    )


def test_the_earlier_of_date_and_duration_wins(client: TestClient) -> None:
    soon = put(
        client,
        "stone-viewer-publication",
        **{"validity-duration": 3600, "expiration-date": "2099-01-01T00:00:00Z"},
    ).json()
    assert claims(soon["token"])["exp"] <= time.time() + 3600
    sooner = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    date_first = put(
        client,
        "stone-viewer-publication",
        **{"validity-duration": 3600, "expiration-date": sooner},
    ).json()
    assert claims(date_first["token"])["exp"] <= time.time() + 300


def test_expiration_date_in_the_past_is_400(client: TestClient) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = put(
        client, "stone-viewer-publication", **{"validity-duration": None, "expiration-date": past}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "expiration-date is in the past"}


@pytest.mark.parametrize("level", ["series", "instance", "patient", "system"])
@pytest.mark.parametrize(
    "token_type", ["stone-viewer-publication", "viewer-instant-link", "download-instant-link"]
)
def test_resources_other_than_studies_are_400(
    client: TestClient, level: str, token_type: str
) -> None:
    resources = [TWO_STUDIES[0], {"orthanc-id": ID_2, "dicom-uid": UID_2, "level": level}]
    response = put(client, token_type, resources=resources)
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"{token_type} tokens open whole studies: resource 2 has level {level}; "
        "send its study instead"
    }


@respx.mock(assert_all_called=False, assert_all_mocked=True)
def test_meddream_instant_link_of_a_series_is_400_without_calling_meddream(
    make_client: ClientFactory, respx_mock: respx.MockRouter
) -> None:
    # The successor answered HTTP 200 with `null` here (protocol.md §8 #17).
    route = respx_mock.post("http://meddream-token:8088/v3/generate")
    client = make_client(**MEDDREAM)
    resources = [{"dicom-uid": STUDY_UID, "level": "series"}]
    response = put(client, "meddream-instant-link", resources=resources)
    assert response.status_code == 400
    assert "resource 1 has level series" in response.json()["detail"]
    assert not route.called


def test_level_is_read_in_any_case(client: TestClient) -> None:
    resources = [{"dicom-uid": STUDY_UID, "orthanc-id": STUDY_ID, "level": "Study"}]
    response = put(client, "stone-viewer-publication", resources=resources)
    assert response.status_code == 200
    assert response.json()["request"]["resources"][0]["level"] == "study"


@pytest.mark.parametrize(
    ("resources", "fragment"),
    [
        ([], "resources"),
        ("study", "resources"),
        ([{"dicom-uid": STUDY_UID}], "level"),
        ([{"dicom-uid": STUDY_UID, "level": "galaxy"}], "level"),
        ([{"level": "study"}], "resources"),
        ([{"dicom-uid": "", "orthanc-id": "", "level": "study"}], "resources"),
        ([{"dicom-uid": ["x"], "level": "study"}], "dicom-uid"),
    ],
)
def test_malformed_resources_are_422(client: TestClient, resources: Any, fragment: str) -> None:
    response = put(client, "stone-viewer-publication", resources=resources)
    assert response.status_code == 422
    assert fragment in response.text
    assert all("input" not in error for error in response.json()["detail"])


@pytest.mark.parametrize("content", [b"not json", b"[]", b'"x"', b""])
def test_unparseable_bodies_are_422(client: TestClient, content: bytes) -> None:
    response = client.put(
        "/tokens/stone-viewer-publication",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


def test_resources_missing_is_422(client: TestClient) -> None:
    response = client.put(
        "/tokens/stone-viewer-publication", json={"type": "stone-viewer-publication"}
    )
    assert response.status_code == 422
    assert "resources" in response.text


def test_unknown_fields_are_ignored(client: TestClient) -> None:
    response = put(client, "stone-viewer-publication", Username="oe2-user", labels=["x"])
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("token_type", "overrides", "expected"),
    [
        (
            "stone-viewer-publication",
            {},
            "https://pacs.example.org/shares/stone-webviewer/index.html"
            f"?study={STUDY_UID},{UID_2}&selectedStudies={STUDY_UID},{UID_2}&token=TOKEN",
        ),
        (
            "osimis-viewer-publication",
            {},
            "https://pacs.example.org/shares/osimis-viewer/app/index.html"
            f"?pickableStudyIds={STUDY_ID},{ID_2}&selectedStudyIds={STUDY_ID},{ID_2}&token=TOKEN",
        ),
        (
            "ohif-viewer-publication",
            OHIF,
            f"https://pacs.example.org/ohif/viewer?StudyInstanceUIDs={STUDY_UID},{UID_2}&token=TOKEN",
        ),
        (
            "volview-viewer-publication",
            {},
            "https://pacs.example.org/shares/volview/index.html"
            "?names=[archive.zip,archive.zip]"
            f"&urls=[../studies/{STUDY_ID}/archive,../studies/{ID_2}/archive]&token=TOKEN",
        ),
    ],
)
def test_direct_viewer_urls_without_landing(
    make_client: ClientFactory, token_type: str, overrides: dict[str, Any], expected: str
) -> None:
    client = make_client(**DIRECT, **overrides)
    answer = put(client, token_type, resources=TWO_STUDIES).json()
    assert answer["url"] == expected.replace("TOKEN", answer["token"])


def test_ohif_dicom_json_url(make_client: ClientFactory) -> None:
    client = make_client(**DIRECT, **OHIF, ohif_data_source="dicom-json")
    answer = put(client, "ohif-viewer-publication").json()
    url = answer["url"]
    assert url.startswith("https://pacs.example.org/ohif/viewer?")
    assert parse_qs(urlsplit(url).query) == {
        "url": [f"../studies/{STUDY_ID}/ohif-dicom-json"],
        "token": [answer["token"]],
    }


@pytest.mark.parametrize(
    "token_type",
    [
        "stone-viewer-publication",
        "osimis-viewer-publication",
        "ohif-viewer-publication",
        "volview-viewer-publication",
        "meddream-viewer-publication",
    ],
)
def test_publications_link_to_the_landing(make_client: ClientFactory, token_type: str) -> None:
    client = make_client(**OHIF, **MEDDREAM)
    answer = put(client, token_type).json()
    assert answer["url"] == f"https://pacs.example.org/welcome/?token={answer['token']}"


def test_oe2_token_landing_page_as_landing_root(make_client: ClientFactory) -> None:
    client = make_client(
        public_landing_root="https://pacs.example.org/shares/ui/app/token-landing.html"
    )
    answer = put(client, "stone-viewer-publication").json()
    assert answer["url"] == (
        f"https://pacs.example.org/shares/ui/app/token-landing.html?token={answer['token']}"
    )


@pytest.mark.parametrize("token_type", ["viewer-instant-link", "download-instant-link"])
@pytest.mark.parametrize("landing", [{}, DIRECT])
def test_instant_links_have_no_url(
    make_client: ClientFactory, token_type: str, landing: dict[str, Any]
) -> None:
    # OE2 appends `?token=` to its own viewer or download link.
    answer = put(make_client(**landing), token_type, **{"validity-duration": 200}).json()
    assert answer["url"] is None
    payload = claims(answer["token"])
    assert payload["type"] == token_type
    assert payload["exp"] <= time.time() + 200


@pytest.mark.parametrize(
    ("overrides", "token_type", "message"),
    [
        ({"public_orthanc_root": None}, "stone-viewer-publication", "PUBLIC_ORTHANC_ROOT"),
        ({"public_orthanc_root": None}, "osimis-viewer-publication", "PUBLIC_ORTHANC_ROOT"),
        ({"public_orthanc_root": None}, "volview-viewer-publication", "PUBLIC_ORTHANC_ROOT"),
        ({}, "ohif-viewer-publication", "PUBLIC_OHIF_ROOT"),
        ({}, "meddream-instant-link", "MEDDREAM_TOKEN_SERVICE_URL"),
        ({}, "meddream-viewer-publication", "MEDDREAM_TOKEN_SERVICE_URL"),
        (
            {**MEDDREAM, "public_landing_root": None},
            "meddream-viewer-publication",
            "PUBLIC_LANDING_ROOT",
        ),
    ],
)
def test_types_the_configuration_does_not_enable_are_400(
    make_client: ClientFactory, overrides: dict[str, Any], token_type: str, message: str
) -> None:
    response = put(make_client(**overrides), token_type)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert response.json()["detail"].startswith(f"{token_type} shares are not enabled")


@pytest.mark.parametrize(
    ("overrides", "token_type", "resources", "message"),
    [
        (
            {},
            "volview-viewer-publication",
            [{"dicom-uid": STUDY_UID, "level": "study"}],
            "volview-viewer-publication needs an orthanc-id for every study",
        ),
        (
            OHIF,
            "ohif-viewer-publication",
            [{"orthanc-id": STUDY_ID, "level": "study"}],
            "ohif-viewer-publication needs a dicom-uid for every study",
        ),
        (
            {**OHIF, "ohif_data_source": "dicom-json"},
            "ohif-viewer-publication",
            [{"dicom-uid": STUDY_UID, "level": "study"}],
            "ohif-viewer-publication needs an orthanc-id for every study",
        ),
        (
            {**OHIF, "ohif_data_source": "dicom-json"},
            "ohif-viewer-publication",
            TWO_STUDIES,
            "ohif-viewer-publication opens one study with OHIF_DATA_SOURCE=dicom-json",
        ),
    ],
)
def test_resources_a_viewer_cannot_open_are_400(
    make_client: ClientFactory,
    overrides: dict[str, Any],
    token_type: str,
    resources: list[dict[str, str]],
    message: str,
) -> None:
    response = put(make_client(**overrides), token_type, resources=resources)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(message)


@pytest.mark.parametrize(
    "resources",
    [[{"dicom-uid": STUDY_UID, "level": "study"}], [{"orthanc-id": STUDY_ID, "level": "study"}]],
)
def test_instant_links_take_either_id(client: TestClient, resources: list[dict[str, str]]) -> None:
    assert put(client, "viewer-instant-link", resources=resources).status_code == 200


@respx.mock(assert_all_called=True, assert_all_mocked=True)
def test_meddream_instant_link(make_client: ClientFactory, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("http://meddream-token:8088/v3/generate").mock(
        return_value=httpx.Response(200, text="md+tok/en==")
    )
    client = make_client(**MEDDREAM)
    answer = put(client, "meddream-instant-link", resources=TWO_STUDIES).json()
    assert answer["token"] == "md+tok/en=="
    assert answer["url"] == (
        f"https://pacs.example.org/meddream/?study={STUDY_UID},{UID_2}&token=md%2Btok%2Fen%3D%3D"
    )
    assert route.call_count == 1


@respx.mock(assert_all_called=True, assert_all_mocked=True)
def test_meddream_failure_is_502(make_client: ClientFactory, respx_mock: respx.MockRouter) -> None:
    respx_mock.post("http://meddream-token:8088/v3/generate").mock(
        side_effect=httpx.ConnectError("refused")
    )
    response = put(make_client(**MEDDREAM), "meddream-instant-link")
    assert response.status_code == 502
    assert response.json() == {"detail": "The viewer's token service is unavailable"}


def test_creation_needs_admin_credentials(make_client: ClientFactory) -> None:
    client = make_client(users={"admin": "admin-pw"}, validation_users={"plugin": "plugin-pw"})
    body = token_body()
    assert client.put("/tokens/stone-viewer-publication", json=body).status_code == 401
    wrong = basic("admin", "wrong")
    assert (
        client.put("/tokens/stone-viewer-publication", json=body, headers=wrong).status_code == 401
    )
    plugin = basic("plugin", "plugin-pw")
    assert (
        client.put("/tokens/stone-viewer-publication", json=body, headers=plugin).status_code == 403
    )
    admin = basic("admin", "admin-pw")
    assert (
        client.put("/tokens/stone-viewer-publication", json=body, headers=admin).status_code == 200
    )


def test_credentials_are_checked_before_the_body(make_client: ClientFactory) -> None:
    client = make_client(users={"admin": "admin-pw"})
    response = client.put("/tokens/stone-viewer-publication", content=b"not json")
    assert response.status_code == 401


def test_get_is_405(client: TestClient) -> None:
    assert client.get("/tokens/stone-viewer-publication").status_code == 405


def test_creation_is_logged_without_the_token(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = put(client, "viewer-instant-link").json()
    created = [r.getMessage() for r in caplog.records if "share created" in r.getMessage()]
    assert len(created) == 1
    assert "type=viewer-instant-link studies=1" in created[0]
    for record in caplog.records:
        assert answer["token"].split(".")[2] not in record.getMessage()

"""The landing page: redirects for valid links, clear pages for the rest."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
import respx
from fastapi.testclient import TestClient

from share_landing.app import create_app
from shared.models import ShareRequest
from shared.pseudonyms import pseudonymous_share
from shared.tokens import TokenCodec
from tests.factories import (
    ANONYMIZATION_KEY,
    SECRET,
    STUDY_ID,
    STUDY_UID,
    landing_settings,
    share_body,
)

MEDDREAM = {
    "meddream_token_service_url": "http://meddream-token:8088/v3/generate",
    "public_meddream_root": "https://pacs.example.org/meddream/",
}
PATHS = ["/share-landing/", "/"]

Factory = Callable[..., TestClient]


@pytest.fixture
def make_client() -> Iterator[Factory]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(landing_settings(**overrides)), follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Factory) -> TestClient:
    return make_client()


def mint(**overrides: Any) -> str:
    token, _ = TokenCodec([SECRET.encode()], anonymization_key=ANONYMIZATION_KEY.encode()).encode(
        ShareRequest.model_validate(share_body(**overrides))
    )
    return token


def assert_safe_headers(headers: Mapping[str, str]) -> None:
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in headers["content-security-policy"]


@pytest.mark.parametrize("path", PATHS)
def test_stone_share_redirects_to_the_viewer(client: TestClient, path: str) -> None:
    token = mint()
    response = client.get(path, params={"token": token})
    assert response.status_code == 307
    assert response.headers["location"] == (
        "https://pacs.example.org/shares/stone-webviewer/index.html"
        f"?study={STUDY_UID}&selectedStudies={STUDY_UID}&token={token}"
    )
    assert_safe_headers(response.headers)


def test_osimis_share_redirects_to_the_osimis_viewer(client: TestClient) -> None:
    token = mint(type="osimis-viewer-publication")
    location = client.get("/share-landing/", params={"token": token}).headers["location"]
    assert location.startswith("https://pacs.example.org/shares/osimis-viewer/app/index.html?")
    assert parse_qs(urlsplit(location).query)["pickableStudyIds"] == [STUDY_ID]


def test_anonymized_share_redirects_to_the_anonymized_orthanc(make_client: Factory) -> None:
    client = make_client(public_anonymized_orthanc_root="https://pacs.example.org/anon-shares/")
    token = mint(type="osimis-viewer-publication", anonymized=True)
    location = client.get("/share-landing/", params={"token": token}).headers["location"]
    assert location.startswith("https://pacs.example.org/anon-shares/osimis-viewer/")


def test_share_of_the_original_service_redirects(client: TestClient) -> None:
    legacy = jwt.encode(
        {
            "id": "toto",
            "dicom_uid": STUDY_UID,
            "orthanc_id": STUDY_ID,
            "type": "stone-viewer-publication",
            "expiration_date": "2099-07-07T11:00:00+00:00",
        },
        SECRET,
        algorithm="HS256",
    )
    response = client.get("/share-landing/", params={"token": legacy})
    assert response.status_code == 307
    assert f"study={STUDY_UID}" in response.headers["location"]


@pytest.mark.parametrize("path", PATHS)
def test_expired_link_shows_the_expired_page(client: TestClient, path: str) -> None:
    expired = jwt.encode(
        {
            "studies": [{"dicom_uid": STUDY_UID}],
            "type": "stone-viewer-publication",
            "expiration_date": "2020-01-01T00:00:00",
        },
        SECRET,
        algorithm="HS256",
    )
    response = client.get(path, params={"token": expired})
    assert response.status_code == 410
    assert response.headers["content-type"].startswith("text/html")
    assert "This link has expired" in response.text
    assert expired not in response.text
    assert_safe_headers(response.headers)


@pytest.mark.parametrize(
    ("params", "status"),
    [({}, 400), ({"token": ""}, 400), ({"token": "garbage"}, 403), ({"token": "x" * 30000}, 403)],
)
def test_invalid_or_missing_token_shows_the_invalid_page(
    client: TestClient, params: dict[str, str], status: int
) -> None:
    response = client.get("/share-landing/", params=params)
    assert response.status_code == status
    assert "This link is not valid" in response.text
    assert_safe_headers(response.headers)


def test_tampered_token_is_invalid(client: TestClient) -> None:
    token = mint()
    header, payload, signature = token.split(".")
    response = client.get("/share-landing/", params={"token": f"{header}.{payload}x.{signature}"})
    assert response.status_code == 403


def test_token_in_the_url_is_never_reflected(client: TestClient) -> None:
    hostile = '"><script>alert(1)</script>'
    response = client.get("/share-landing/", params={"token": hostile, "x": hostile})
    assert "<script>alert(1)" not in response.text
    assert hostile not in response.text


def test_configured_texts_are_sanitised(make_client: Factory) -> None:
    client = make_client(
        title_invalid_token="Lien <b>invalide</b><script>alert('t')</script>",
        message_invalid_token='Contactez-nous<br/><img src=x onerror="alert(1)"> <a href="javascript:alert(1)">ici</a>',
    )
    page = client.get("/share-landing/", params={"token": "bad"}).text
    assert "<h1>Lien <b>invalide</b></h1>" in page
    assert "<title>Lien invalide</title>" in page
    assert "Contactez-nous<br>" in page
    assert "<script" not in page and "onerror" not in page and "javascript:" not in page


def test_operator_pages_replace_ours(make_client: Factory, tmp_path: Path) -> None:
    (tmp_path / "expired-token.html").write_text("<p>Notre lien a expiré : {{ title }}</p>")
    client = make_client(landing_pages_dir=tmp_path, title_expired_token="Expiré")
    expired = jwt.encode(
        {"studies": [{"dicom_uid": "1"}], "type": "stone-viewer-publication", "exp": 1},
        SECRET,
        algorithm="HS256",
    )
    response = client.get("/share-landing/", params={"token": expired})
    assert response.status_code == 410
    assert response.text == "<p>Notre lien a expiré : Expiré</p>"
    # the pages not supplied by the operator are still ours
    assert "This link is not valid" in client.get("/share-landing/").text


def test_revoked_share_shows_the_invalid_page(make_client: Factory, tmp_path: Path) -> None:
    from shared.revocations import open_store

    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    token = mint()
    share = TokenCodec([SECRET.encode()], anonymization_key=ANONYMIZATION_KEY.encode()).decode(
        token
    )
    open_store(url).revoke(share.revocation_key, share.expires_at)
    response = make_client(database_url=url).get("/share-landing/", params={"token": token})
    assert response.status_code == 410
    assert "This link is not valid" in response.text


def test_previous_key_still_opens_links(make_client: Factory) -> None:
    token = mint()
    client = make_client(
        secret_key="a-brand-new-key-of-more-than-32-bytes!!", previous_secret_keys=SECRET
    )
    assert client.get("/share-landing/", params={"token": token}).status_code == 307


def test_no_public_root_is_the_unavailable_page(make_client: Factory) -> None:
    response = make_client(public_orthanc_root=None).get(
        "/share-landing/", params={"token": mint()}
    )
    assert response.status_code == 503
    assert "temporarily unavailable" in response.text


@respx.mock(assert_all_called=True, assert_all_mocked=True)
def test_meddream_publication_gets_a_fresh_meddream_token(
    make_client: Factory, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post("http://meddream-token:8088/v3/generate").mock(
        return_value=httpx.Response(200, text="md+token/=")
    )
    client = make_client(**MEDDREAM)
    token = mint(type="meddream-viewer-publication")
    response = client.get("/share-landing/", params={"token": token})
    assert response.status_code == 307
    assert response.headers["location"] == (
        f"https://pacs.example.org/meddream/?study={STUDY_UID}&token=md%2Btoken%2F%3D"
    )
    assert route.call_count == 1
    assert_safe_headers(response.headers)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(503, text="maintenance"),
        httpx.Response(200, text=""),
        httpx.Response(200, text="<html>error</html>"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
)
def test_meddream_unavailable_is_a_friendly_503(make_client: Factory, answer: Any) -> None:
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as mock:
        route = mock.post("http://meddream-token:8088/v3/generate")
        if isinstance(answer, Exception):
            route.mock(side_effect=answer)
        else:
            route.mock(return_value=answer)
        client = make_client(**MEDDREAM)
        response = client.get(
            "/share-landing/", params={"token": mint(type="meddream-viewer-publication")}
        )
    assert response.status_code == 503
    assert "temporarily unavailable" in response.text
    assert "maintenance" not in response.text


def test_meddream_publication_without_meddream_config_is_503(client: TestClient) -> None:
    response = client.get(
        "/share-landing/", params={"token": mint(type="meddream-viewer-publication")}
    )
    assert response.status_code == 503


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_landing_logs_no_token(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    token = mint()
    client.get("/share-landing/", params={"token": token})
    client.get("/share-landing/", params={"token": token + "x"})
    # The test client's own request log (httpx2) is not the service's.
    ours = [r for r in caplog.records if not r.name.startswith("httpx")]
    assert any("share opened" in r.getMessage() for r in ours)
    for record in ours:
        assert token.split(".")[2] not in record.getMessage()


OHIF = {"public_ohif_root": "https://pacs.example.org/ohif"}


def test_ohif_share_redirects_to_ohif(make_client: Factory) -> None:
    token = mint(type="ohif-viewer-publication")
    response = make_client(**OHIF).get("/share-landing/", params={"token": token})
    assert response.status_code == 307
    assert response.headers["location"] == (
        f"https://pacs.example.org/ohif/viewer?StudyInstanceUIDs={STUDY_UID}&token={token}"
    )


def test_ohif_dicom_json_share_redirects_to_the_study_json(make_client: Factory) -> None:
    token = mint(type="ohif-viewer-publication")
    client = make_client(**OHIF, ohif_data_source="dicom-json")
    location = client.get("/share-landing/", params={"token": token}).headers["location"]
    assert location.startswith("https://pacs.example.org/ohif/viewer?")
    assert parse_qs(urlsplit(location).query) == {
        "url": [f"../studies/{STUDY_ID}/ohif-dicom-json"],
        "token": [token],
    }


def test_ohif_share_without_ohif_root_is_the_unavailable_page(client: TestClient) -> None:
    response = client.get("/share-landing/", params={"token": mint(type="ohif-viewer-publication")})
    assert response.status_code == 503
    assert "temporarily unavailable" in response.text


def test_volview_share_redirects_to_volview(client: TestClient) -> None:
    token = mint(type="volview-viewer-publication")
    response = client.get("/share-landing/", params={"token": token})
    assert response.status_code == 307
    assert response.headers["location"] == (
        "https://pacs.example.org/shares/volview/index.html?names=[archive.zip]"
        f"&urls=[../studies/{STUDY_ID}/archive]&token={token}"
    )


@pytest.mark.parametrize("share_type", ["viewer-instant-link", "download-instant-link"])
def test_instant_link_tokens_have_no_viewer_here(client: TestClient, share_type: str) -> None:
    response = client.get("/share-landing/", params={"token": mint(type=share_type)})
    assert response.status_code == 403
    assert "This link is not valid" in response.text


def test_anonymized_stone_share_redirects_with_pseudonyms(make_client: Factory) -> None:
    client = make_client(public_anonymized_orthanc_root="https://pacs.example.org/anon-shares/")
    token = mint(anonymized=True)
    location = client.get("/share-landing/", params={"token": token}).headers["location"]
    share = TokenCodec([SECRET.encode()], anonymization_key=ANONYMIZATION_KEY.encode()).decode(
        token
    )
    pseudonym = pseudonymous_share(share, ANONYMIZATION_KEY.encode()).studies[0].dicom_uid
    assert location.startswith("https://pacs.example.org/anon-shares/stone-webviewer/index.html?")
    assert parse_qs(urlsplit(location).query)["study"] == [pseudonym]
    assert STUDY_UID not in location


def test_anonymized_share_without_anonymization_key_is_503(make_client: Factory) -> None:
    client = make_client(
        public_anonymized_orthanc_root="https://pacs.example.org/anon-shares/",
        anonymization_key=None,
    )
    response = client.get("/share-landing/", params={"token": mint(anonymized=True)})
    assert response.status_code == 503


ANONYMIZED_OHIF = {"public_anonymized_ohif_root": "https://pacs.example.org/anon-ohif/"}


@pytest.mark.parametrize("data_source", ["dicom-web", "dicom-json"])
def test_anonymized_ohif_share_redirects_to_the_anonymized_ohif(
    make_client: Factory, data_source: str
) -> None:
    client = make_client(**OHIF, **ANONYMIZED_OHIF, ohif_data_source=data_source)
    token = mint(type="ohif-viewer-publication", anonymized=True)
    location = client.get("/share-landing/", params={"token": token}).headers["location"]
    assert location.startswith("https://pacs.example.org/anon-ohif/viewer?")
    query = parse_qs(urlsplit(location).query)
    assert set(query) == {"StudyInstanceUIDs", "token"}
    assert query["StudyInstanceUIDs"][0].startswith("2.25.")
    assert STUDY_UID not in location.split("&token=")[0]


def test_anonymized_ohif_share_never_opens_the_standard_ohif(make_client: Factory) -> None:
    client = make_client(**OHIF)
    token = mint(type="ohif-viewer-publication", anonymized=True)
    response = client.get("/share-landing/", params={"token": token})
    assert response.status_code == 503
    assert "temporarily unavailable" in response.text

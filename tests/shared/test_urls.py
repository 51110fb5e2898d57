"""The links a share opens."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from shared.models import ShareType, StudyGrant
from shared.urls import landing_url, meddream_url, query, viewer_url
from tests.factories import STUDY_ID, STUDY_UID, landing_settings
from tests.shared.conftest import make_share

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6InRvdG8ifQ.0ymBXIpW5o1fT1Rre0pvRMWd2fGwsBPwhSI9F1kNzmE"
ROOT = "https://pacs.example.org/shares/"
UID_2, ID_2 = "1.2.840.113619.2.55.3.2", "aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee"


def test_query_encodes_values_and_keeps_commas() -> None:
    assert (
        query(study="1.2,1.3", token="a+b/c=d e&f") == "study=1.2,1.3&token=a%2Bb%2Fc%3Dd%20e%26f"
    )


def test_landing_url() -> None:
    assert landing_url("https://pacs.example.org/welcome/", JWT) == (
        f"https://pacs.example.org/welcome/?token={JWT}"
    )


def test_landing_url_under_a_root_from_the_settings() -> None:
    root = landing_settings(
        public_landing_root="https://pacs.example.org/welcome"
    ).public_landing_root
    assert root is not None

    assert landing_url(root, JWT) == f"https://pacs.example.org/welcome/?token={JWT}"


def test_stone_viewer_url() -> None:
    share = make_share(type=ShareType.STONE_VIEWER_PUBLICATION)

    assert viewer_url(share, JWT, ROOT) == (
        "https://pacs.example.org/shares/stone-webviewer/index.html"
        f"?study={STUDY_UID}&selectedStudies={STUDY_UID}&token={JWT}"
    )


def test_stone_viewer_url_keeps_commas_between_studies() -> None:
    share = make_share(
        StudyGrant(STUDY_UID, STUDY_ID),
        StudyGrant(UID_2, None),
        type=ShareType.STONE_VIEWER_PUBLICATION,
    )

    url = viewer_url(share, JWT, ROOT)

    assert url is not None
    assert f"?study={STUDY_UID},{UID_2}&selectedStudies={STUDY_UID},{UID_2}&" in url


def test_stone_viewer_url_needs_every_dicom_uid() -> None:
    share = make_share(
        StudyGrant(STUDY_UID, STUDY_ID),
        StudyGrant(None, ID_2),
        type=ShareType.STONE_VIEWER_PUBLICATION,
    )

    assert viewer_url(share, JWT, ROOT) is None


def test_osimis_viewer_url() -> None:
    share = make_share(
        StudyGrant(STUDY_UID, STUDY_ID),
        StudyGrant(None, ID_2),
        type=ShareType.OSIMIS_VIEWER_PUBLICATION,
    )

    assert viewer_url(share, JWT, ROOT) == (
        "https://pacs.example.org/shares/osimis-viewer/app/index.html"
        f"?pickableStudyIds={STUDY_ID},{ID_2}&selectedStudyIds={STUDY_ID},{ID_2}&token={JWT}"
    )


def test_osimis_viewer_url_needs_every_orthanc_id() -> None:
    share = make_share(
        StudyGrant(STUDY_UID, STUDY_ID),
        StudyGrant(UID_2, None),
        type=ShareType.OSIMIS_VIEWER_PUBLICATION,
    )

    assert viewer_url(share, JWT, ROOT) is None


@pytest.mark.parametrize(
    ("configured", "expected_prefix"),
    [
        ("https://pacs.example.org/shares", "https://pacs.example.org/shares/stone-webviewer/"),
        ("https://pacs.example.org/shares/", "https://pacs.example.org/shares/stone-webviewer/"),
        ("http://localhost:8042", "http://localhost:8042/stone-webviewer/"),
        ("https://pacs.example.org/a/b", "https://pacs.example.org/a/b/stone-webviewer/"),
    ],
)
def test_viewer_url_under_a_root_from_the_settings(configured: str, expected_prefix: str) -> None:
    # The settings give roots their trailing slash; urljoin would drop the last segment.
    root = landing_settings(public_orthanc_root=configured).public_orthanc_root
    share = make_share(type=ShareType.STONE_VIEWER_PUBLICATION)

    url = viewer_url(share, JWT, root)

    assert url is not None
    assert url.startswith(expected_prefix + "index.html?")


def test_viewer_url_encodes_the_token() -> None:
    share = make_share(type=ShareType.OSIMIS_VIEWER_PUBLICATION)

    url = viewer_url(share, "a+b/c=&x", ROOT)

    assert url is not None
    assert url.endswith("&token=a%2Bb%2Fc%3D%26x")
    assert parse_qs(urlsplit(url).query)["token"] == ["a+b/c=&x"]


@pytest.mark.parametrize(
    "share_type", [ShareType.MEDDREAM_INSTANT_LINK, ShareType.MEDDREAM_VIEWER_PUBLICATION]
)
def test_viewer_url_is_none_for_meddream_types(share_type: ShareType) -> None:
    assert viewer_url(make_share(type=share_type), JWT, ROOT) is None


def test_viewer_url_is_none_without_a_root() -> None:
    assert viewer_url(make_share(), JWT, None) is None


def test_meddream_url_names_the_studies_and_encodes_the_token() -> None:
    token = "aGVsbG8+d29y/bGQ=="  # MedDream tokens are base64 with + / and = padding

    url = meddream_url("https://pacs.example.org/meddream/", [STUDY_UID, UID_2], token)

    assert url == (
        f"https://pacs.example.org/meddream/?study={STUDY_UID},{UID_2}"
        "&token=aGVsbG8%2Bd29y%2FbGQ%3D%3D"
    )
    assert parse_qs(urlsplit(url).query) == {"study": [f"{STUDY_UID},{UID_2}"], "token": [token]}


def test_meddream_url_under_a_root_from_the_settings() -> None:
    root = landing_settings(
        public_meddream_root="https://pacs.example.org/meddream"
    ).public_meddream_root
    assert root is not None

    url = meddream_url(root, [STUDY_UID], "tok")

    assert url == f"https://pacs.example.org/meddream/?study={STUDY_UID}&token=tok"

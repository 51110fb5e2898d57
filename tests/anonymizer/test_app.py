"""The anonymizer app against a mocked anonymized-share Orthanc (respx at the transport)."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
import respx
from fastapi.testclient import TestClient

from anonymizer.app import create_app
from anonymizer.settings import Settings
from shared.errors import ConfigurationError
from shared.pseudonyms import pseudonymizer_for
from shared.settings import load_settings
from shared.tokens import TokenCodec
from tests.anonymizer import samples
from tests.anonymizer.conftest import (
    ANONYMIZATION_KEY,
    STUDY_ID,
    STUDY_UID,
    UPSTREAM,
    anonymizer_settings,
    mint,
)
from tests.factories import SECRET

SERIES_UID = "1.2.840.113619.2.55.3.2"
INSTANCE_UID = "1.2.840.113619.2.55.3.3"
SERIES_ID = "11111111-22222222-33333333-44444444-55555555"
INSTANCE_ID = "66666666-77777777-88888888-99999999-aaaaaaaa"
OTHER_STUDY_UID = "1.2.840.113619.2.55.9.9"


@pytest.fixture
def router() -> Iterator[respx.Router]:
    """The anonymized-share Orthanc; every route must be called, nothing else may be."""
    router = respx.Router(base_url=UPSTREAM, assert_all_called=True, assert_all_mocked=True)
    yield router
    router.assert_all_called()


def make_client(router: respx.Router, settings: Settings | None = None) -> TestClient:
    app = create_app(
        settings or anonymizer_settings(), transport=httpx.MockTransport(router.async_handler)
    )
    return TestClient(app)


@pytest.fixture
def client(router: respx.Router) -> Iterator[TestClient]:
    with make_client(router) as client:
        yield client


@pytest.fixture
def token() -> str:
    return mint()[0]


def pseudo() -> Any:
    return pseudonymizer_for(mint_share(), ANONYMIZATION_KEY.encode())


_SHARE = mint()


def mint_share() -> Any:
    return _SHARE[1]


def bearer(token: str = _SHARE[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def listing(router: respx.Router) -> None:
    """The study's series and instances, as the index lists them."""
    router.get(f"/studies/{STUDY_ID}/series").mock(
        return_value=httpx.Response(
            200, json=[{"ID": SERIES_ID, "MainDicomTags": {"SeriesInstanceUID": SERIES_UID}}]
        )
    )
    router.get(f"/studies/{STUDY_ID}/instances").mock(
        return_value=httpx.Response(
            200,
            json=[
                {
                    "ID": INSTANCE_ID,
                    "ParentSeries": SERIES_ID,
                    "MainDicomTags": {"SOPInstanceUID": INSTANCE_UID},
                }
            ],
        )
    )


def chunks(data: bytes, size: int = 100) -> AsyncIterator[bytes]:
    """A streamed body, as a real transport gives it (not read in advance)."""

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]

    return stream()


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


# ---------------------------------------------------------------- refusals before Orthanc


@pytest.mark.parametrize(
    ("method", "path", "params", "headers"),
    [
        ("GET", "/dicom-web/studies/{ps}/metadata", {}, {}),
        ("GET", "/dicom-web/studies/{ps}/metadata", {}, {"Authorization": "Bearer not-a-token"}),
        ("GET", "/dicom-web/studies/{ps}/metadata", {}, {"Authorization": "Basic dXNlcjpwdw=="}),
        ("GET", "/dicom-web/studies/{ps}/metadata", {}, "expired"),
        ("GET", "/dicom-web/studies/{ps}/metadata", {}, "not-anonymized"),
        ("GET", "/dicom-web/studies/{ps}/metadata", {}, "meddream"),
        ("GET", "/dicom-web/studies/{ps}/metadata", {"accept": "application/dicom+xml"}, None),
        ("GET", "/dicom-web/studies/{other}/metadata", {}, None),
        ("GET", "/dicom-web/studies", {}, None),
        ("GET", "/dicom-web/studies", {"PatientName": "DOE*"}, None),
        ("GET", "/dicom-web/studies", {"0020000D": "{other}"}, None),
        ("GET", "/patients/" + STUDY_ID, {}, None),
        ("GET", "/studies/{ps}/../../patients", {}, None),
        ("GET", "/tools/find", {}, None),
        ("POST", "/tools/find", {}, None),
        ("DELETE", "/studies/" + STUDY_ID, {}, None),
        ("PUT", "/dicom-web/studies/{ps}/metadata", {}, None),
        ("GET", "/studies/99999999-22222222-33333333-44444444-55555555", {}, None),
    ],
)
def test_refused_without_asking_orthanc(
    client: TestClient,
    router: respx.Router,
    method: str,
    path: str,
    params: dict[str, str],
    headers: dict[str, str] | str | None,
) -> None:
    share_pseudo = pseudo()
    tokens = {
        "expired": mint(**{"expiration-date": "2001-01-01T00:00:00Z"})[0],
        "not-anonymized": mint(anonymized=False)[0],
        "meddream": mint(type="meddream-viewer-publication")[0],
    }
    if isinstance(headers, str):
        headers = bearer(tokens[headers])
    elif headers is None:
        headers = bearer()
    values = {"ps": share_pseudo.uid(STUDY_UID), "other": share_pseudo.uid(OTHER_STUDY_UID)}
    url = path.format(**values)
    params = {k: v.format(**values) for k, v in params.items()}

    response = client.request(method, url, params=params, headers=headers)

    assert response.status_code == 403
    assert response.json() == {"detail": "Forbidden"}
    assert router.calls.call_count == 0


# ---------------------------------------------------------------- rewriting


def test_qido_maps_the_filter_back_and_rewrites_the_results(
    client: TestClient, router: respx.Router
) -> None:
    share_pseudo = pseudo()
    item = {
        "0020000D": {"vr": "UI", "Value": [STUDY_UID]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]},
        "00081030": {"vr": "LO", "Value": ["KNEE OF JANE"]},
    }
    stray = {"0020000D": {"vr": "UI", "Value": [OTHER_STUDY_UID]}}
    route = router.get("/dicom-web/studies").mock(
        return_value=httpx.Response(
            200, json=[item, stray], headers={"Content-Type": "application/dicom+json"}
        )
    )

    response = client.get(
        "/dicom-web/studies",
        params={
            "0020000D": share_pseudo.uid(STUDY_UID),
            "includefield": "00081030",
            "token": _SHARE[0],
        },
    )

    assert response.status_code == 200
    request = route.calls.last.request
    assert request.url.params["0020000D"] == STUDY_UID
    assert request.url.params["includefield"] == "00081030"
    assert request.url.params["token"] == _SHARE[0]
    assert request.headers["accept"] == "application/dicom+json"
    assert response.headers["content-type"] == "application/dicom+json"
    assert response.json() == [
        {"0020000D": {"vr": "UI", "Value": [share_pseudo.uid(STUDY_UID)]}, "00100010": {"vr": "PN"}}
    ]


def test_series_metadata_resolves_pseudonyms_within_the_study(
    client: TestClient, router: respx.Router
) -> None:
    share_pseudo = pseudo()
    listing(router)
    route = router.get(f"/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}/metadata").mock(
        return_value=httpx.Response(200, json=[samples.planted_json()])
    )
    path = f"/dicom-web/studies/{share_pseudo.uid(STUDY_UID)}/series/{share_pseudo.uid(SERIES_UID)}/metadata"

    response = client.get(path, headers=bearer())

    assert response.status_code == 200
    assert route.call_count == 1
    assert samples.leaks(response.content) == []
    assert response.json()[0]["00120062"]["Value"] == ["YES"]
    # Listing happens once; the next request reuses it.
    assert client.get(path, headers=bearer()).status_code == 200
    assert route.call_count == 2
    assert router.calls.call_count == 4  # two listings, once, and two metadata answers


def test_series_of_another_study_is_refused(client: TestClient, router: respx.Router) -> None:
    share_pseudo = pseudo()
    listing(router)

    response = client.get(
        f"/dicom-web/studies/{share_pseudo.uid(STUDY_UID)}/series/{share_pseudo.uid('9.9.9')}/metadata",
        headers=bearer(),
    )

    assert response.status_code == 403


def _study_answer(router: respx.Router) -> None:
    router.get(f"/studies/{STUDY_ID}").mock(
        return_value=httpx.Response(
            200,
            json={
                "ID": STUDY_ID,
                "MainDicomTags": {"StudyInstanceUID": STUDY_UID},
                "Series": [SERIES_ID],
            },
        )
    )


def test_orthanc_resource_of_a_sealed_token_is_named_by_its_pseudonym_only(
    client: TestClient, router: respx.Router
) -> None:
    # The link shows pseudonyms only: answering the real id would confirm a guess of it.
    share_pseudo = pseudo()
    _study_answer(router)

    real = client.get(f"/studies/{STUDY_ID}", headers={"token": _SHARE[0]})
    named = client.get(
        f"/studies/{share_pseudo.orthanc_id(STUDY_ID)}", headers={"token": _SHARE[0]}
    )
    by_uid = client.get(
        "/dicom-web/studies", params={"StudyInstanceUID": STUDY_UID}, headers={"token": _SHARE[0]}
    )

    assert real.status_code == 403
    assert by_uid.status_code == 403
    assert named.json() == {
        "ID": share_pseudo.orthanc_id(STUDY_ID),
        "Series": [share_pseudo.orthanc_id(SERIES_ID)],
        "MainDicomTags": {"StudyInstanceUID": share_pseudo.uid(STUDY_UID)},
    }


def test_orthanc_resource_accepts_the_real_study_id_an_original_token_shows(
    client: TestClient, router: respx.Router
) -> None:
    # The original's anonymized Osimis links name the real Orthanc id, in the token too.
    legacy = jwt.encode(
        {
            "id": None,
            "studies": [{"dicom_uid": STUDY_UID, "orthanc_id": STUDY_ID}],
            "anonymized": True,
            "type": "osimis-viewer-publication",
            "expiration_date": None,
        },
        SECRET,
        algorithm="HS256",
    )
    share = TokenCodec([SECRET.encode()]).decode(legacy)
    assert not share.sealed
    legacy_pseudo = pseudonymizer_for(share, ANONYMIZATION_KEY.encode())
    _study_answer(router)

    response = client.get(f"/studies/{STUDY_ID}", headers={"token": legacy})

    assert response.json() == {
        "ID": legacy_pseudo.orthanc_id(STUDY_ID),
        "Series": [legacy_pseudo.orthanc_id(SERIES_ID)],
        "MainDicomTags": {"StudyInstanceUID": legacy_pseudo.uid(STUDY_UID)},
    }


def test_instance_tags_by_pseudonymous_id(client: TestClient, router: respx.Router) -> None:
    share_pseudo = pseudo()
    listing(router)
    route = router.get(f"/instances/{INSTANCE_ID}/tags", params={"simplify": ""}).mock(
        return_value=httpx.Response(200, json={"PatientName": "DOE^JANE", "Modality": "MR"})
    )

    response = client.get(
        f"/instances/{share_pseudo.orthanc_id(INSTANCE_ID)}/tags?simplify", headers=bearer()
    )

    assert route.call_count == 1
    assert response.json()["PatientName"] == ""
    assert response.json()["Modality"] == "MR"


# ---------------------------------------------------------------- headers


def test_request_and_answer_headers_are_whitelisted(
    client: TestClient, router: respx.Router
) -> None:
    share_pseudo = pseudo()
    route = router.get(f"/dicom-web/studies/{STUDY_UID}/metadata").mock(
        return_value=httpx.Response(
            200,
            json=[],
            headers={"Set-Cookie": "session=1", "Server": "Orthanc", "X-Internal": "pacs-01"},
        )
    )

    response = client.get(
        f"/dicom-web/studies/{share_pseudo.uid(STUDY_UID)}/metadata",
        headers={
            **bearer(),
            "token": _SHARE[0],
            "Cookie": "session=abc",
            "X-Forwarded-For": "10.0.0.1",
            "Range": "bytes=0-10",
            "Accept": "application/dicom+xml",
        },
    )

    sent = route.calls.last.request.headers
    assert sent["authorization"] == f"Bearer {_SHARE[0]}"
    assert sent["token"] == _SHARE[0]
    assert sent["accept"] == "application/dicom+json"
    for name in ("cookie", "x-forwarded-for", "range"):
        assert name not in sent
    for name in ("set-cookie", "server", "x-internal"):
        assert name not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_upstream_error_status_is_kept_but_not_its_body(
    client: TestClient, router: respx.Router
) -> None:
    share_pseudo = pseudo()
    router.get(f"/dicom-web/studies/{STUDY_UID}/metadata").mock(
        return_value=httpx.Response(404, json={"Details": f"Unknown study {STUDY_UID}"})
    )

    response = client.get(
        f"/dicom-web/studies/{share_pseudo.uid(STUDY_UID)}/metadata", headers=bearer()
    )

    assert response.status_code == 404
    assert STUDY_UID not in response.text


def test_an_unexpected_failure_is_a_generic_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_: Any) -> None:
        raise RuntimeError(f"lost track of {STUDY_UID}")

    monkeypatch.setattr(client.app.proxy, "handle", broken)  # type: ignore[attr-defined]

    response = client.get(f"/studies/{STUDY_ID}", headers=bearer())

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert STUDY_UID not in response.text
    assert f"lost track of {STUDY_UID}" in caplog.text
    assert client.get("/health").json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("error", "status"),
    [(httpx.ConnectError("refused"), 502), (httpx.ReadTimeout("slow"), 504)],
)
def test_upstream_outage(
    client: TestClient, router: respx.Router, error: Exception, status: int
) -> None:
    share_pseudo = pseudo()
    router.get(f"/dicom-web/studies/{STUDY_UID}/metadata").mock(side_effect=error)

    response = client.get(
        f"/dicom-web/studies/{share_pseudo.uid(STUDY_UID)}/metadata", headers=bearer()
    )

    assert response.status_code == status


def test_answer_over_the_cap_is_not_rewritten(router: respx.Router) -> None:
    share_pseudo = pseudo()
    router.get(f"/dicom-web/studies/{STUDY_UID}/metadata").mock(
        return_value=httpx.Response(200, content=b"[" + b" " * (1024 * 1024 + 10) + b"]")
    )

    with make_client(router, anonymizer_settings(max_rewrite_bytes=1024 * 1024)) as client:
        response = client.get(
            f"/dicom-web/studies/{share_pseudo.uid(STUDY_UID)}/metadata", headers=bearer()
        )

    assert response.status_code == 502


# ---------------------------------------------------------------- streaming


def test_rendered_image_streams_raw_bytes_with_its_headers(
    client: TestClient, router: respx.Router
) -> None:
    share_pseudo = pseudo()
    listing(router)
    jpeg = b"\xff\xd8" + bytes(range(256)) * 10 + b"\xff\xd9"
    route = router.get(
        f"/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}/instances/{INSTANCE_UID}/rendered"
    ).mock(
        return_value=httpx.Response(
            200,
            content=chunks(gzip.compress(jpeg)),
            headers={"Content-Type": "image/jpeg", "Content-Encoding": "gzip", "Server": "Orthanc"},
        )
    )
    path = (
        f"/dicom-web/studies/{share_pseudo.uid(STUDY_UID)}/series/{share_pseudo.uid(SERIES_UID)}"
        f"/instances/{share_pseudo.uid(INSTANCE_UID)}/rendered"
    )

    response = client.get(
        path,
        params={"viewport": "64,64"},
        headers={**bearer(), "Accept-Encoding": "gzip", "Range": "bytes=0-"},
    )

    assert response.content == jpeg
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"] == "image/jpeg"
    assert "server" not in response.headers
    sent = route.calls.last.request
    assert sent.headers["accept-encoding"] == "gzip"
    assert sent.headers["range"] == "bytes=0-"
    assert sent.url.params["viewport"] == "64,64"


def test_frames_stream_without_content_location(client: TestClient, router: respx.Router) -> None:
    share_pseudo = pseudo()
    listing(router)
    location = f"{UPSTREAM}/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}/instances/{INSTANCE_UID}/frames/1"
    body = (
        b"--xyz\r\nContent-Type: application/octet-stream\r\nContent-Location: "
        + location.encode()
        + b"\r\n\r\nPIXELS\r\n--xyz--\r\n"
    )
    route = router.get(
        f"/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}/instances/{INSTANCE_UID}/frames/1"
    ).mock(
        return_value=httpx.Response(
            200,
            content=chunks(body, 7),
            headers={
                "Content-Type": "multipart/related; type=application/octet-stream; boundary=xyz"
            },
        )
    )
    path = (
        f"/dicom-web/studies/{share_pseudo.uid(STUDY_UID)}/series/{share_pseudo.uid(SERIES_UID)}"
        f"/instances/{share_pseudo.uid(INSTANCE_UID)}/frames/1"
    )

    response = client.get(
        path, headers={**bearer(), "Accept": "multipart/related; type=application/octet-stream"}
    )

    assert response.status_code == 200
    assert (
        response.content
        == b"--xyz\r\ncontent-type: application/octet-stream\r\n\r\nPIXELS\r\n--xyz--\r\n"
    )
    assert (
        route.calls.last.request.headers["accept"]
        == "multipart/related; type=application/octet-stream"
    )
    assert route.calls.last.request.headers["accept-encoding"] == "identity"


def test_static_files_need_no_token_and_get_none(client: TestClient, router: respx.Router) -> None:
    route = router.get("/stone-webviewer/index.html").mock(
        return_value=httpx.Response(200, text="<html>", headers={"Content-Type": "text/html"})
    )

    response = client.get(
        "/stone-webviewer/index.html",
        params={"study": "2.25.1", "token": _SHARE[0]},
        headers={"Cookie": "a=b", **bearer()},
    )

    assert response.text == "<html>"
    sent = route.calls.last.request
    assert sent.url.query == b""
    assert "authorization" not in sent.headers and "cookie" not in sent.headers


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"anonymization_key": "short"}, "ANONYMIZATION_KEY"),
        ({"anonymized_orthanc_url": "orthanc:8042"}, "ANONYMIZED_ORTHANC_URL"),
        ({"anonymized_orthanc_url": None}, "ANONYMIZED_ORTHANC_URL"),
    ],
)
def test_bad_settings_stop_startup(overrides: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {
        "secret_key": "x" * 40,
        "anonymization_key": ANONYMIZATION_KEY,
        "anonymized_orthanc_url": UPSTREAM,
    }
    values.update(overrides)
    values = {k: v for k, v in values.items() if v is not None}

    with pytest.raises(ConfigurationError, match=message):
        load_settings(Settings, secrets_dir=None, **values)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("ANONYMIZATION_KEY", ANONYMIZATION_KEY)
    monkeypatch.setenv("ANONYMIZED_ORTHANC_URL", "http://orthanc-anon:8042/")
    monkeypatch.setenv("MAX_REWRITE_BYTES", str(8 * 1024 * 1024))

    settings = load_settings(Settings, secrets_dir=None)

    assert settings.upstream_root() == "http://orthanc-anon:8042"
    assert settings.key_bytes() == ANONYMIZATION_KEY.encode()
    assert settings.max_rewrite_bytes == 8 * 1024 * 1024
    assert ANONYMIZATION_KEY not in repr(settings)


def test_logs_never_show_the_token(
    client: TestClient, router: respx.Router, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")

    client.get("/patients/x", params={"token": _SHARE[0]}, headers=bearer())

    assert "refused" in caplog.text
    assert _SHARE[0] not in caplog.text


def test_json_answers_are_valid_json(client: TestClient, router: respx.Router) -> None:
    share_pseudo = pseudo()
    router.get(f"/dicom-web/studies/{STUDY_UID}/metadata").mock(
        return_value=httpx.Response(200, content=b"not json")
    )

    response = client.get(
        f"/dicom-web/studies/{share_pseudo.uid(STUDY_UID)}/metadata", headers=bearer()
    )

    assert response.status_code == 502
    assert json.loads(response.text) == {"detail": "Bad gateway"}


def test_system_keeps_only_software_keys(router: respx.Router, client: TestClient) -> None:
    router.get("/system").respond(
        json={
            "Name": "St. Mary Radiology",
            "DicomAet": "STMARY",
            "DicomPort": 4242,
            "Version": "1.12.9",
            "ApiVersion": 27,
            "PluginsEnabled": True,
        }
    )
    response = client.get("/system")
    assert response.status_code == 200
    assert response.json() == {"Version": "1.12.9", "ApiVersion": 27, "PluginsEnabled": True}

"""Shares opened through a real Orthanc, exactly as viewers open them in production.

Two Orthanc servers ("standard" and "anonymized") run the authorization-plugin emulator in
the legacy (0.4) and the current (0.5+) mode in turn; the token service and the landing run
as real uvicorn processes; revocations live in a real PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from tests.e2e.dicom_data import GeneratedData, Study
from tests.e2e.orthanc import EmulatorConfig, OrthancFactory, OrthancServer
from tests.factories import SECRET
from tests.servers import ServiceProcess, free_port, start_service

pytestmark = pytest.mark.e2e

STANDARD_ID = "standard-server-id"
ANONYMIZED_ID = "anonymized-server-id"
OE2 = ("oe2", "oe2-password")  # USERS: what Orthanc Explorer 2's proxy is configured with
PLUGIN = ("share-plugin", "plugin-password")  # VALIDATION_USERS: the plugins' credentials
CACHE_SECONDS = 2  # short, so that expiry and revocation show within a test
ANONYMIZATION_KEY = "e2e-anonymization-key-of-at-least-32-bytes"


def emulator(mode: str, service_url: str, server_id: str, timeout: float = 10.0) -> EmulatorConfig:
    """The plugin configuration of a share Orthanc (StandardConfigurations: Stone, Osimis)."""
    common: dict[str, Any] = {
        "username": PLUGIN[0],
        "password": PLUGIN[1],
        "server_id": server_id,
        "standard_configurations": ("stone-webviewer", "osimis-web-viewer"),
        "timeout_seconds": timeout,
    }
    if mode == "legacy":
        return EmulatorConfig(mode="legacy", web_service=f"{service_url}/shares/validate", **common)
    return EmulatorConfig(mode="current", root_url=f"{service_url}/", **common)


@dataclass
class Stack:
    """One deployment: Orthanc servers, token service and landing."""

    mode: str
    standard: OrthancServer
    anonymized: OrthancServer
    anonymizer: ServiceProcess
    token_service: ServiceProcess
    landing: ServiceProcess
    data: GeneratedData

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """`PUT /shares` as Orthanc Explorer 2 0.6's proxy sends it."""
        response = httpx.put(f"{self.token_service.url}/shares", json=body, auth=OE2)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


def oe2_body(study: Study, orthanc_id: str, **overrides: Any) -> dict[str, Any]:
    """The exact body of protocol.md 5.1: what OE2 0.4.3-0.6 sends for a share button."""
    in_a_week = datetime.now(UTC) + timedelta(days=7)
    body: dict[str, Any] = {
        "id": None,
        "studies": [{"dicom-uid": study.study_instance_uid, "orthanc-id": orthanc_id}],
        "anonymized": False,
        "type": "stone-viewer-publication",
        "expiration-date": in_a_week.strftime("%Y-%m-%dT%H:%M:%S.") + "123Z",
    }
    body.update(overrides)
    return body


def service_env(standard: OrthancServer, anonymized_root: str, landing_port: int) -> dict[str, str]:
    return {
        "SECRET_KEY": SECRET,
        "ANONYMIZATION_KEY": ANONYMIZATION_KEY,
        "PUBLIC_ORTHANC_ROOT": f"{standard.base_url}/",
        "PUBLIC_ANONYMIZED_ORTHANC_ROOT": anonymized_root,
        "PUBLIC_LANDING_ROOT": f"http://127.0.0.1:{landing_port}/share-landing/",
        "SERVER_IDENTIFIER": STANDARD_ID,
        "ANONYMIZED_SERVER_IDENTIFIER": ANONYMIZED_ID,
        "USERS": f'{{"{OE2[0]}": "{OE2[1]}"}}',
        "VALIDATION_USERS": f'{{"{PLUGIN[0]}": "{PLUGIN[1]}"}}',
        "VALIDATION_CACHE_SECONDS": str(CACHE_SECONDS),
        "REVOCATION_REFRESH_SECONDS": "0.2",
    }


@pytest.fixture(scope="module", params=["legacy", "current"])
def stack(
    request: pytest.FixtureRequest,
    orthanc_factory: OrthancFactory,
    generated_data: GeneratedData,
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    mode: str = request.param
    token_port, landing_port = free_port(), free_port()
    service_url = f"http://127.0.0.1:{token_port}"
    standard = orthanc_factory(f"standard-{mode}", emulator(mode, service_url, STANDARD_ID))
    anonymized = orthanc_factory(f"anonymized-{mode}", emulator(mode, service_url, ANONYMIZED_ID))
    log_dir = tmp_path_factory.mktemp(f"services-{mode}")
    anonymizer = start_service(
        "anonymizer",
        {
            "SECRET_KEY": SECRET,
            "ANONYMIZATION_KEY": ANONYMIZATION_KEY,
            "ANONYMIZED_ORTHANC_URL": anonymized.base_url,
        },
        log_dir,
    )
    env = service_env(standard, f"{anonymizer.url}/", landing_port) | {"DATABASE_URL": postgres_url}
    token_service = start_service("token-service", env, log_dir, port=token_port)
    landing = start_service("share-landing", env, log_dir, port=landing_port)
    yield Stack(mode, standard, anonymized, anonymizer, token_service, landing, generated_data)
    for service in (token_service, landing, anonymizer):
        service.stop()
    standard.stop()
    anonymized.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stone_requests(study: Study) -> list[tuple[str, dict[str, str]]]:
    """Every request the Stone Web Viewer makes to open one study."""
    uid = study.study_instance_uid
    series, instance = next(study.instances())
    base = f"/dicom-web/studies/{uid}/series/{series.series_instance_uid}"
    frame = f"{base}/instances/{instance.sop_instance_uid}"
    return [
        ("/system", {}),
        (f"/dicom-web/studies?0020000D={uid}", {"Accept": "application/dicom+json"}),
        (f"/dicom-web/studies?StudyInstanceUID={uid}&includefield=00081030", {}),
        (f"/dicom-web/studies/{uid}/series", {}),
        (f"/dicom-web/studies/{uid}/metadata", {}),
        (f"{base}/metadata", {}),
        (f"{frame}/frames/1", {"Accept": 'multipart/related; type="application/octet-stream"'}),
        (f"{frame}/rendered", {"Accept": "image/png"}),
        (f"{base}/rendered", {"Accept": "image/jpeg"}),
    ]


def test_oe2_share_opens_in_stone(stack: Stack) -> None:
    study = stack.data.studies[0]
    answer = stack.create(oe2_body(study, stack.standard.ids.study(study)))
    assert answer["url"].startswith(f"{stack.landing.url}/share-landing/?token=")

    landing = httpx.get(answer["url"])
    assert landing.status_code == 307
    location = landing.headers["location"]
    assert location.startswith(f"{stack.standard.base_url}/stone-webviewer/index.html?")
    query = parse_qs(urlsplit(location).query)
    assert query["study"] == [study.study_instance_uid]
    token = query["token"][0]

    for path, headers in stone_requests(study):
        response = stack.standard.http.get(path, headers=bearer(token) | headers)
        assert response.status_code == 200, (path, response.status_code)
    series = stack.standard.http.get(
        f"/dicom-web/studies/{study.study_instance_uid}/series", headers=bearer(token)
    ).json()
    assert len(series) == len(study.series)
    rendered = stack.standard.http.get(stone_requests(study)[7][0], headers=bearer(token))
    # DICOMweb 1.7 renders JPEG whatever the Accept header; an image either way.
    assert rendered.content.startswith((b"\x89PNG", b"\xff\xd8\xff"))


def osimis_requests(stack: Stack, study: Study) -> list[str]:
    ids = stack.standard.ids
    series, instance = next(study.instances())
    study_id = ids.study(study)
    series_id = ids.series[series.series_instance_uid]
    instance_id = ids.instances[instance.sop_instance_uid]
    return [
        f"/studies/{study_id}",
        f"/studies/{study_id}/series",
        f"/series/{series_id}",
        f"/series/{series_id}/instances",
        f"/instances/{instance_id}/tags",
        f"/instances/{instance_id}/preview",
        f"/instances/{instance_id}/file",
        f"/studies/{study_id}/archive",
    ]


@pytest.mark.parametrize("carrier", ["header", "query"])
def test_osimis_share_with_token_header_or_argument(stack: Stack, carrier: str) -> None:
    study = stack.data.studies[1]
    body = oe2_body(study, stack.standard.ids.study(study), type="osimis-viewer-publication")
    token = stack.create(body)["token"]
    for path in osimis_requests(stack, study):
        if carrier == "header":
            response = stack.standard.http.get(path, headers={"token": token})
        else:
            response = stack.standard.http.get(path, params={"token": token})
        assert response.status_code == 200, (path, response.status_code)


@pytest.fixture(scope="module")
def shared_study(stack: Stack) -> tuple[Study, str]:
    """One study shared for Stone; its token."""
    study = stack.data.studies[2]
    return study, stack.create(oe2_body(study, stack.standard.ids.study(study)))["token"]


def test_refused_requests(stack: Stack, shared_study: tuple[Study, str]) -> None:
    study, token = shared_study
    ids = stack.standard.ids
    same_patient = next(s for s in stack.data.studies_of(study.patient) if s != study)
    other_patient = next(s for s in stack.data.studies if s.patient != study.patient)
    http = stack.standard.http
    auth = bearer(token)
    refused = {
        "study of the same patient": http.get(f"/studies/{ids.study(same_patient)}", headers=auth),
        "study of another patient": http.get(
            f"/dicom-web/studies/{other_patient.study_instance_uid}/series", headers=auth
        ),
        "patient level": http.get(
            f"/patients/{ids.patients[study.patient.patient_id]}", headers=auth
        ),
        "patient archive": http.get(
            f"/patients/{ids.patients[study.patient.patient_id]}/archive", headers=auth
        ),
        "listing /studies": http.get("/studies", headers=auth),
        "listing /dicom-web/studies": http.get("/dicom-web/studies", headers=auth),
        "DELETE the study": http.delete(f"/studies/{ids.study(study)}", headers=auth),
        "POST on the study": http.post(
            f"/studies/{ids.study(study)}/anonymize", json={}, headers=auth
        ),
        "no token": http.get(f"/dicom-web/studies/{study.study_instance_uid}/series"),
        "tampered token": http.get(
            f"/dicom-web/studies/{study.study_instance_uid}/series",
            headers=bearer(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")),
        ),
    }
    for what, response in refused.items():
        assert response.status_code == 403, what
    # the study was not deleted nor modified through the share
    assert len(
        http.get(f"/dicom-web/studies/{study.study_instance_uid}/series", headers=auth).json()
    )


def test_expired_share_is_refused(stack: Stack) -> None:
    study = stack.data.studies[0]
    expired = jwt.encode(
        {
            "id": None,
            "studies": [
                {
                    "dicom_uid": study.study_instance_uid,
                    "orthanc_id": stack.standard.ids.study(study),
                }
            ],
            "anonymized": False,
            "type": "stone-viewer-publication",
            "expiration_date": "2021-01-01T00:00:00+00:00",
        },
        SECRET,
        algorithm="HS256",
    )
    response = stack.standard.http.get(
        f"/dicom-web/studies/{study.study_instance_uid}/series", headers=bearer(expired)
    )
    assert response.status_code == 403


def test_standard_and_anonymized_servers_do_not_accept_each_others_tokens(stack: Stack) -> None:
    study = stack.data.studies[3]
    orthanc_id = stack.standard.ids.study(study)
    standard = stack.create(oe2_body(study, orthanc_id, type="osimis-viewer-publication"))
    anonymized = stack.create(
        oe2_body(study, orthanc_id, type="osimis-viewer-publication", anonymized=True)
    )
    assert anonymized["url"].startswith(stack.landing.url)
    path = f"/studies/{orthanc_id}"
    assert stack.standard.http.get(path, headers={"token": standard["token"]}).status_code == 200
    assert (
        stack.anonymized.http.get(path, headers={"token": anonymized["token"]}).status_code == 200
    )
    assert stack.anonymized.http.get(path, headers={"token": standard["token"]}).status_code == 403
    assert stack.standard.http.get(path, headers={"token": anonymized["token"]}).status_code == 403


def _wait_until(deadline: float) -> None:
    while time.time() < deadline:
        time.sleep(0.05)


def test_share_that_expires_while_in_use_stops_working(stack: Stack) -> None:
    study = stack.data.studies[4]
    expires = datetime.now(UTC) + timedelta(seconds=3)
    body = oe2_body(
        study, stack.standard.ids.study(study), **{"expiration-date": expires.isoformat()}
    )
    token = stack.create(body)["token"]
    path = f"/dicom-web/studies/{study.study_instance_uid}/series"
    assert stack.standard.http.get(path, headers=bearer(token)).status_code == 200
    # The plugin caches the grant for the validity the service returned, which never
    # reaches past the expiry: just after it, the study is refused.
    _wait_until(expires.timestamp() + 0.3)
    assert stack.standard.http.get(path, headers=bearer(token)).status_code == 403


def test_revoked_share_stops_working_within_the_validity(stack: Stack) -> None:
    study = stack.data.studies[5]
    answer = stack.create(oe2_body(study, stack.standard.ids.study(study)))
    path = f"/dicom-web/studies/{study.study_instance_uid}/series"
    assert stack.standard.http.get(path, headers=bearer(answer["token"])).status_code == 200
    revoked = httpx.post(
        f"{stack.token_service.url}/shares/revoke", json={"token": answer["url"]}, auth=OE2
    )
    assert revoked.status_code == 200
    _wait_until(time.time() + CACHE_SECONDS + 0.3)
    assert stack.standard.http.get(path, headers=bearer(answer["token"])).status_code == 403
    assert httpx.get(answer["url"]).status_code == 410


@pytest.fixture
def lone_stack(
    stack: Stack, orthanc_factory: OrthancFactory, tmp_path: Path
) -> Iterator[tuple[OrthancServer, ServiceProcess]]:
    """An Orthanc and a token service of its own, with no caching, to be stopped and frozen."""
    port = free_port()
    orthanc = orthanc_factory(
        f"lone-{stack.mode}",
        emulator(stack.mode, f"http://127.0.0.1:{port}", STANDARD_ID, timeout=1.5),
    )
    env = service_env(orthanc, f"{orthanc.base_url}/", free_port()) | {
        "VALIDATION_CACHE_SECONDS": "0"
    }
    service = start_service("token-service", env, tmp_path, port=port)
    yield orthanc, service
    service.resume()
    service.stop()
    orthanc.stop()


def test_token_service_down_or_hanging_fails_closed_and_recovers(
    stack: Stack, lone_stack: tuple[OrthancServer, ServiceProcess], tmp_path: Path
) -> None:
    orthanc, service = lone_stack
    study = stack.data.studies[0]
    created = httpx.put(
        f"{service.url}/shares", json=oe2_body(study, orthanc.ids.study(study)), auth=OE2
    ).json()
    path = f"/dicom-web/studies/{study.study_instance_uid}/series"
    auth = bearer(created["token"])
    assert orthanc.http.get(path, headers=auth).status_code == 200

    service.suspend()  # hanging: accepts connections, never answers
    started = time.monotonic()
    assert orthanc.http.get(path, headers=auth, timeout=10).status_code == 403
    assert time.monotonic() - started < 5
    service.resume()
    assert orthanc.http.get(path, headers=auth).status_code == 200

    service.stop()  # down: connection refused
    assert orthanc.http.get(path, headers=auth).status_code == 403
    restarted = start_service("token-service", service.env, tmp_path, port=service.port)
    try:
        assert orthanc.http.get(path, headers=auth).status_code == 200
    finally:
        restarted.stop()


def test_browser_follows_the_link_to_the_viewer_and_reads_the_study(stack: Stack) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS

    study = stack.data.studies[0]
    answer = stack.create(oe2_body(study, stack.standard.ids.study(study)))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(answer["url"])
            # Stone is not packaged in Debian: the page itself is Orthanc's 404, but the
            # browser is on the viewer URL, on the share Orthanc's origin.
            assert page.url.startswith(f"{stack.standard.base_url}/stone-webviewer/index.html?")
            token = parse_qs(urlsplit(page.url).query)["token"][0]
            assert token == answer["token"]
            statuses = page.evaluate(
                """async ([uid, token]) => {
                    const url = `/dicom-web/studies/${uid}/series`;
                    const withToken = await fetch(url, {headers: {Authorization: `Bearer ${token}`}});
                    const without = await fetch(url);
                    return [withToken.status, without.status];
                }""",
                [study.study_instance_uid, token],
            )
            assert statuses == [200, 403]
        finally:
            browser.close()


def test_anonymized_stone_share_through_the_anonymizer(stack: Stack) -> None:
    study = stack.data.studies[0]
    orthanc_id = stack.standard.ids.study(study)
    answer = stack.create(oe2_body(study, orthanc_id, anonymized=True))
    location = httpx.get(answer["url"]).headers["location"]
    assert location.startswith(f"{stack.anonymizer.url}/stone-webviewer/index.html?")
    pseudonym = parse_qs(urlsplit(location).query)["study"][0]
    assert pseudonym.startswith("2.25.") and pseudonym != study.study_instance_uid

    secrets = [
        study.study_instance_uid,
        orthanc_id,
        study.patient.patient_id,
        study.patient.name.split("^")[0],
        study.patient.birth_date,
        study.accession_number,
        study.institution_name,
    ]
    # The link reaches the browser: neither it nor the token's readable payload names
    # the patient or the real study (the real ids travel sealed).
    # (`sealed` is ciphertext, and the token's base64 may hold any short string by chance.)
    claims = json.loads(base64.urlsafe_b64decode(answer["token"].split(".")[1] + "=="))
    assert claims.pop("sealed") and claims["id"] is None
    for secret in secrets:
        for link in (answer["url"], location):
            assert secret not in link.replace(answer["token"], ""), secret
        assert secret not in json.dumps(claims), secret
    auth = bearer(answer["token"])

    def get(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        response = httpx.get(f"{stack.anonymizer.url}{path}", headers=auth | (headers or {}))
        assert response.status_code == 200, (path, response.status_code)
        for secret in secrets:
            assert secret.encode() not in response.content, (path, secret)
            assert secret not in str(response.headers), (path, secret)
        return response

    assert "Version" in get("/system").json()  # Stone reads it first
    assert len(get(f"/dicom-web/studies?0020000D={pseudonym}").json()) == 1
    series = get(f"/dicom-web/studies/{pseudonym}/series").json()
    assert len(series) == len(study.series)
    series_uid = series[0]["0020000E"]["Value"][0]
    metadata = get(f"/dicom-web/studies/{pseudonym}/series/{series_uid}/metadata").json()
    assert metadata[0]["00120062"]["Value"] == ["YES"]  # PatientIdentityRemoved
    instance_uid = metadata[0]["00080018"]["Value"][0]
    frame = get(
        f"/dicom-web/studies/{pseudonym}/series/{series_uid}/instances/{instance_uid}/frames/1",
        {"Accept": 'multipart/related; type="application/octet-stream"'},
    )
    assert len(frame.content) > 64 * 64 * 2

    # What the anonymizer does not serve: the real UID (the link never showed it), another
    # study, no token, a standard share's token.
    standard = stack.create(oe2_body(study, orthanc_id))["token"]
    path = f"/dicom-web/studies/{pseudonym}/series"
    refused = [
        httpx.get(
            f"{stack.anonymizer.url}/dicom-web/studies/{study.study_instance_uid}/series",
            headers=auth,
        ),
        httpx.get(
            f"{stack.anonymizer.url}/dicom-web/studies/{stack.data.studies[1].study_instance_uid}/series",
            headers=auth,
        ),
        httpx.get(f"{stack.anonymizer.url}{path}"),
        httpx.get(f"{stack.anonymizer.url}{path}", headers=bearer(standard)),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403]

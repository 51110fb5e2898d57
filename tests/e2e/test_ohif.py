"""A real OHIF opens shares: standard ones from a share Orthanc, anonymized ones through the anonymizer.

Headless Chromium follows the link the token service returns (through the landing) to the
prebuilt OHIF v3.12.10 of `@ohif/app`, served by nginx with DICOMweb on the same origin
(`tests/e2e/ohif_site.py`): one origin reads a share Orthanc running the authorization
emulator (what `PUBLIC_OHIF_ROOT` names), the other the anonymizer in front of a second
Orthanc (`PUBLIC_ANONYMIZED_OHIF_ROOT`); both Orthancs validate every request with the
real token service.

What OHIF 3.12.10 does with `viewer?StudyInstanceUIDs=<study>&token=<token>` and the
configuration of `tests/e2e/ohif/app-config.js` (DICOMweb, `wadors` images and thumbnails),
as this module observes and pins it:

* It reads `token` from the query (any case), removes it from the address bar, and sends
  `Authorization: Bearer <token>` with every DICOMweb request (none carries it in the
  query). A reload of the cleaned address therefore has no token: the link must be
  opened again.
* Every request is a GET under the data source's root (`/dicom-web`):
  1. `/studies?limit=101&offset=0&fuzzymatching=false&includefield=00081030,00080060`
     `&StudyInstanceUID=<study>` (QIDO, `Accept: application/dicom+json`);
  2. `/studies/<study>/series?includefield=00080021,00080031,0008103E,00200011`;
  3. `/studies?00100020=<PatientID>&limit=101&offset=0&fuzzymatching=false`
     `&includefield=00081030,00080060`: the study browser looking for the patient's other
     studies, sent only when the study has a PatientID. Standard shares never grant the
     patient level, so it is refused (403) and OHIF lists the shared study alone; the
     anonymizer empties PatientID, so OHIF never sends it for anonymized shares;
  4. `/studies/<study>/series/<series>/metadata`, once per series;
  5. `/studies/<study>/series/<series>/instances/<instance>/frames/1` (`Accept: multipart/
     related; type=application/octet-stream; transfer-syntax=*`), for the images of the
     displayed series and the first image of every other series (its thumbnail).
  No `/rendered`, `/thumbnail`, bulk data, study-level metadata or WADO-URI request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Response, sync_playwright

from tests.e2e.dicom_data import GeneratedData, Study
from tests.e2e.ohif_site import LoggedRequest, OhifSite, install_ohif, running_sites
from tests.e2e.orthanc import EmulatorConfig, OrthancFactory, OrthancServer
from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.factories import SECRET
from tests.servers import ServiceProcess, free_port, start_service

pytestmark = pytest.mark.e2e

STANDARD_ID = "standard-server-id"
ANONYMIZED_ID = "anonymized-server-id"
OE2 = ("oe2", "oe2-password")
PLUGIN = ("share-plugin", "plugin-password")
ANONYMIZATION_KEY = "e2e-ohif-anonymization-key-of-32-bytes-at-least"
PATIENT_QIDO = "00100020"
# The query arguments of each kind of request OHIF sends (nothing else carries any).
QUERY_KEYS: dict[str, list[set[str]]] = {
    "qido": [
        {"limit", "offset", "fuzzymatching", "includefield", "StudyInstanceUID"},
        {"includefield"},
    ],
    "patient-qido": [{PATIENT_QIDO, "limit", "offset", "fuzzymatching", "includefield"}],
    "metadata": [set()],
    "frames": [set()],
}
FRAMES_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"
FRAME_BYTES = 64 * 64 * 2
# OHIF's onboarding tour covers the page with an overlay that swallows clicks.
SKIP_TOUR = "localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']))"
# True once the viewport's canvas shows an image: many grey levels, not a blank canvas.
IMAGE_SHOWN = """() => {
    const canvas = document.querySelector('.cornerstone-canvas');
    if (!canvas || !canvas.width || !canvas.height) return false;
    const context = canvas.getContext('2d');
    if (!context) return false;
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    const levels = new Set();
    for (let i = 0; i < data.length; i += 4 * 31) levels.add(data[i]);
    return levels.size > 16;
}"""


@dataclass(frozen=True)
class Exchange:
    """One DICOMweb request the browser made, and its answer."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int
    response_headers: dict[str, str]
    body: bytes

    @property
    def kind(self) -> str:
        """What the request reads: qido, patient-qido, metadata, frames or other."""
        if self.path.endswith("/metadata"):
            return "metadata"
        if "/frames/" in self.path:
            return "frames"
        if PATIENT_QIDO in self.query:
            return "patient-qido"
        if self.path.endswith(("/studies", "/series")):
            return "qido"
        return "other"


@dataclass
class Visit:
    """A page opened on a site: where it ended, what it fetched, what nginx logged."""

    page: Page
    exchanges: list[Exchange]
    origins: set[str]
    failed: list[str]
    logged: list[LoggedRequest]

    def text(self) -> str:
        """Everything the page holds: its markup (attributes included) and visible text."""
        return self.page.content() + "\n" + self.page.inner_text("body")


@dataclass
class Stack:
    """The deployment: two OHIF sites, their Orthancs, the anonymizer and our services."""

    standard: OrthancServer
    anonymized: OrthancServer
    sites: dict[str, OhifSite]
    token_service: ServiceProcess
    landing: ServiceProcess
    data: GeneratedData

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a share with OE2's credentials."""
        response = httpx.put(f"{self.token_service.url}{path}", json=body, auth=OE2)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


def emulator(service_url: str, server_id: str) -> EmulatorConfig:
    """A share Orthanc's plugin (0.5+) configured for OHIF: the `Authorization` header."""
    return EmulatorConfig(
        mode="current",
        root_url=f"{service_url}/",
        username=PLUGIN[0],
        password=PLUGIN[1],
        server_id=server_id,
        standard_configurations=("ohif",),
    )


@pytest.fixture(scope="module")
def stack(
    orthanc_factory: OrthancFactory,
    generated_data: GeneratedData,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    dist = install_ohif()
    token_port, landing_port = free_port(), free_port()
    service_url = f"http://127.0.0.1:{token_port}"
    log_dir = tmp_path_factory.mktemp("ohif-services")
    with ExitStack() as cleanup:
        standard = orthanc_factory("ohif-standard", emulator(service_url, STANDARD_ID))
        cleanup.callback(standard.stop)
        anonymized = orthanc_factory("ohif-anonymized", emulator(service_url, ANONYMIZED_ID))
        cleanup.callback(anonymized.stop)
        anonymizer = start_service(
            "anonymizer",
            {
                "SECRET_KEY": SECRET,
                "ANONYMIZATION_KEY": ANONYMIZATION_KEY,
                "ANONYMIZED_ORTHANC_URL": anonymized.base_url,
            },
            log_dir,
        )
        cleanup.callback(anonymizer.stop)
        upstreams = {"standard": standard.base_url, "anonymized": anonymizer.url}
        sites = cleanup.enter_context(
            running_sites(tmp_path_factory.mktemp("ohif-nginx"), dist, upstreams)
        )
        env = {
            "SECRET_KEY": SECRET,
            "ANONYMIZATION_KEY": ANONYMIZATION_KEY,
            "PUBLIC_OHIF_ROOT": sites["standard"].root,
            "PUBLIC_ANONYMIZED_OHIF_ROOT": sites["anonymized"].root,
            "PUBLIC_LANDING_ROOT": f"http://127.0.0.1:{landing_port}/share-landing/",
            "SERVER_IDENTIFIER": STANDARD_ID,
            "ANONYMIZED_SERVER_IDENTIFIER": ANONYMIZED_ID,
            "USERS": f'{{"{OE2[0]}": "{OE2[1]}"}}',
            "VALIDATION_USERS": f'{{"{PLUGIN[0]}": "{PLUGIN[1]}"}}',
        }
        token_service = start_service("token-service", env, log_dir, port=token_port)
        cleanup.callback(token_service.stop)
        landing = start_service("share-landing", env, log_dir, port=landing_port)
        cleanup.callback(landing.stop)
        yield Stack(standard, anonymized, sites, token_service, landing, generated_data)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _exchange(response: Response) -> Exchange:
    url = urlsplit(response.url)
    request = response.request
    return Exchange(
        method=request.method,
        path=url.path,
        query=parse_qs(url.query, keep_blank_values=True),
        headers=request.all_headers(),
        status=response.status,
        response_headers=response.all_headers(),
        body=response.body(),
    )


def open_in_browser(browser: Browser, url: str, site: OhifSite, *, expect_image: bool) -> Visit:
    """Open `url` (landing on `site`) in a fresh context and wait until OHIF is done."""
    already_logged = len(site.dicomweb_log())
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(SKIP_TOUR)
    responses: list[Response] = []
    origins: set[str] = set()
    failed: list[str] = []

    def on_response(response: Response) -> None:
        if _is_dicomweb(response):
            responses.append(response)

    context.on("response", on_response)
    context.on("request", lambda request: origins.add(_origin(request.url)))
    context.on("requestfailed", lambda request: failed.append(request.url))
    page = context.new_page()
    with page.expect_response(_is_dicomweb, timeout=30_000):
        page.goto(url)
    if expect_image:
        page.wait_for_function(IMAGE_SHOWN, timeout=30_000)
    page.wait_for_load_state("networkidle")
    exchanges = [_exchange(response) for response in responses]
    logged = site.dicomweb_log()[already_logged:]
    return Visit(page, exchanges, origins - {""}, failed, logged)


def _is_dicomweb(response: Response) -> bool:
    return urlsplit(response.url).path.startswith("/dicom-web/")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else ""


def show_patient(page: Page) -> None:
    """Unfold OHIF's patient panel (name, id, sex, birth date) in the header."""
    label = page.get_by_text("Patient", exact=True)
    label.click()
    label.wait_for(state="detached")


def ohif_date(value: str) -> str:
    """A DICOM date as OHIF shows it: 01-Jan-1970."""
    return datetime.strptime(value, "%Y%m%d").strftime("%d-%b-%Y")


def ohif_name(name: str) -> str:
    """A DICOM person name as OHIF shows it: DOE, JANE."""
    return ", ".join(name.split("^"))


def shown_identity(study: Study) -> list[str]:
    """What identifies the study's patient, as stored and as OHIF displays it."""
    patient = study.patient
    values = [
        patient.name,
        ohif_name(patient.name),
        patient.patient_id,
        patient.birth_date,
        ohif_date(patient.birth_date),
        study.study_date,
        ohif_date(study.study_date),
        study.accession_number,
        study.description,
        study.institution_name,
        "REFERRER",
        study.study_instance_uid,
    ]
    for series, instance in study.instances():
        values += [series.series_instance_uid, series.description, instance.sop_instance_uid]
    return values


def check_viewer_read_the_study(
    visit: Visit, site: OhifSite, study_uid: str, token: str, *, series_count: int
) -> None:
    """The study opened from `site` alone, every DICOMweb request with the share's token."""
    page = visit.page
    assert page.url.startswith(f"{site.root}viewer?StudyInstanceUIDs={study_uid}")
    assert "token=" not in page.url  # OHIF moved it into its Authorization header
    assert visit.failed == []
    assert visit.exchanges
    for exchange in visit.exchanges:
        assert exchange.method == "GET"
        assert exchange.headers.get("authorization") == f"Bearer {token}", exchange.path
        assert "token" not in {name.lower() for name in exchange.query}
        assert exchange.kind in QUERY_KEYS, exchange.path
        assert set(exchange.query) in QUERY_KEYS[exchange.kind], exchange.path
    kinds = [exchange.kind for exchange in visit.exchanges]
    assert kinds.count("metadata") == series_count
    assert kinds.count("qido") == 2
    frames = [e for e in visit.exchanges if e.kind == "frames"]
    assert len(frames) >= series_count
    for frame in frames:
        assert frame.headers["accept"] == FRAMES_ACCEPT
        assert frame.status == 200, frame.path
        assert frame.response_headers["content-type"].startswith("multipart/related")
        assert len(frame.body) > FRAME_BYTES
    # nginx saw the same DICOMweb requests, each with a Bearer token.
    assert sorted(e.path for e in visit.logged) == sorted(e.path for e in visit.exchanges)
    assert {entry.presented for entry in visit.logged} == {"bearer"}


def test_standard_ohif_share(stack: Stack, browser: Browser, tmp_path: Path) -> None:
    study = stack.data.studies[0]
    site = stack.sites["standard"]
    body = {
        "resources": [
            {
                "dicom-uid": study.study_instance_uid,
                "orthanc-id": stack.standard.ids.study(study),
                "level": "study",
            }
        ],
        "type": "ohif-viewer-publication",
        "validity-duration": 3600,
    }
    answer = stack.create("/tokens/ohif-viewer-publication", body)
    assert answer["url"].startswith(f"{stack.landing.url}/share-landing/?token=")

    visit = open_in_browser(browser, answer["url"], site, expect_image=True)
    show_patient(visit.page)
    visit.page.screenshot(path=str(tmp_path / "standard.png"))

    check_viewer_read_the_study(
        visit, site, study.study_instance_uid, answer["token"], series_count=len(study.series)
    )
    assert visit.origins == {stack.landing.url, site.root.rstrip("/")}
    # Every request is granted but the patient-level lookup of other studies.
    refused = [e for e in visit.exchanges if e.status != 200]
    assert [(e.kind, e.status) for e in refused] == [("patient-qido", 403)]
    assert refused[0].query[PATIENT_QIDO] == [study.patient.patient_id]
    # OHIF shows who the study is about (what the anonymized share must not show).
    text = visit.text()
    patient = study.patient
    for shown in (ohif_name(patient.name), patient.patient_id, ohif_date(patient.birth_date)):
        assert shown in text
    assert study.series[0].description in text
    visit.page.context.close()


def test_anonymized_ohif_share(stack: Stack, browser: Browser, tmp_path: Path) -> None:
    study = stack.data.studies[0]
    site = stack.sites["anonymized"]
    orthanc_id = stack.anonymized.ids.study(study)
    body = {
        "studies": [{"dicom-uid": study.study_instance_uid, "orthanc-id": orthanc_id}],
        "anonymized": True,
        "type": "ohif-viewer-publication",
        "expiration-date": None,
    }
    answer = stack.create("/shares", body)
    location = httpx.get(answer["url"]).headers["location"]
    assert location.startswith(f"{site.root}viewer?StudyInstanceUIDs=2.25.")
    pseudonym = parse_qs(urlsplit(location).query)["StudyInstanceUIDs"][0]

    visit = open_in_browser(browser, answer["url"], site, expect_image=True)
    show_patient(visit.page)
    visit.page.screenshot(path=str(tmp_path / "anonymized.png"))

    check_viewer_read_the_study(
        visit, site, pseudonym, answer["token"], series_count=len(study.series)
    )
    assert visit.origins == {stack.landing.url, site.root.rstrip("/")}
    assert {e.status for e in visit.exchanges} == {200}
    assert "patient-qido" not in [e.kind for e in visit.exchanges]
    secrets = shown_identity(study) + [
        orthanc_id,
        stack.anonymized.ids.patients[study.patient.patient_id],
    ]
    for exchange in visit.exchanges:
        headers = "\n".join(f"{k}: {v}" for k, v in exchange.response_headers.items())
        leaked = [s for s in secrets if s.encode() in exchange.body or s in headers]
        assert leaked == [], exchange.path
    text = visit.text()
    assert [s for s in secrets if s in text] == []
    visit.page.context.close()


@pytest.mark.parametrize("site_name", ["standard", "anonymized"])
def test_a_study_outside_the_share_is_refused(
    stack: Stack, browser: Browser, site_name: str
) -> None:
    shared, same_patient, other_patient = (stack.data.studies[i] for i in (0, 1, 2))
    site = stack.sites[site_name]
    orthanc = stack.standard if site_name == "standard" else stack.anonymized
    body = {
        "studies": [
            {"dicom-uid": shared.study_instance_uid, "orthanc-id": orthanc.ids.study(shared)}
        ],
        "anonymized": site_name == "anonymized",
        "type": "ohif-viewer-publication",
    }
    token = stack.create("/shares", body)["token"]
    for uid in (same_patient.study_instance_uid, other_patient.study_instance_uid):
        url = f"{site.root}viewer?StudyInstanceUIDs={uid}&token={token}"
        visit = open_in_browser(browser, url, site, expect_image=False)
        assert visit.exchanges, uid
        assert {(e.kind, e.status) for e in visit.exchanges} == {("qido", 403)}, uid
        assert {(entry.status, entry.presented) for entry in visit.logged} == {(403, "bearer")}
        visit.page.context.close()

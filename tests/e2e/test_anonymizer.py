"""The anonymizer in front of a real Orthanc: every request a viewer makes, nothing planted leaks.

A real Debian Orthanc 1.10.1 (DICOMweb plugin, *no* authorization plugin: the
anonymizer's own token check is what this test relies on) holds studies with identifying
values planted everywhere (patient module, sequences, private tags, file meta). The
anonymizer runs as a real uvicorn process. The requests are those the Stone Web Viewer,
OHIF and the Osimis viewer make; every body (zip entries and multipart parts opened) and
every header is searched for the planted values, the real UIDs and the real Orthanc ids.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from anonymizer.multipart import boundary_of, parse_multipart
from shared.models import ShareRequest
from shared.pseudonyms import Pseudonymizer, pseudonymizer_for
from shared.tokens import TokenCodec
from tests.anonymizer import samples
from tests.servers import free_port

from .dicom_data import GeneratedData, Study, encode_instance
from .orthanc import OrthancFactory, OrthancServer

pytestmark = pytest.mark.e2e

SECRET_KEY = "e2e-anonymizer-secret-key-0123456789abcdef"
ANONYMIZATION_KEY = "e2e-anonymization-key-0123456789abcdefghij"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
MULTIPART_FRAMES = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


@dataclass(frozen=True)
class Deployment:
    """Orthanc with planted studies, the anonymizer before it, and one share's token."""

    orthanc: OrthancServer
    anonymizer: httpx.Client
    token: str
    pseudo: Pseudonymizer
    shared: tuple[str, ...]  # real StudyInstanceUIDs of the shared studies
    unshared: str
    study_ids: dict[str, str]  # real StudyInstanceUID -> real Orthanc id
    secrets: tuple[str, ...]  # every value that must never reach the browser


def _planted_instances() -> list[bytes]:
    """The planted instance and the one its sequences reference, in one series."""
    first = samples.planted_part10()
    other = samples.planted_dataset()
    other.SOPInstanceUID = samples.OTHER_INSTANCE
    other.file_meta.MediaStorageSOPInstanceUID = other.SOPInstanceUID
    buffer = io.BytesIO()
    other.save_as(buffer, enforce_file_format=True)
    return [first, buffer.getvalue()]


def _upload(server: OrthancServer, data: bytes) -> dict[str, str]:
    response = server.http.post(
        "/instances", content=data, headers={"Content-Type": "application/dicom"}
    )
    response.raise_for_status()
    answer: dict[str, str] = response.json()
    return answer


def _study_secrets(study: Study) -> list[str]:
    patient = study.patient
    values = [
        patient.patient_id,
        patient.name,
        patient.name.replace("^", " "),
        patient.birth_date,
        study.accession_number,
        study.study_date,
        study.description,
        study.institution_name,
        "REFERRER^E2E",
        study.study_instance_uid,
    ]
    for series, instance in study.instances():
        values += [series.series_instance_uid, series.description, instance.sop_instance_uid]
    return values


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"anonymizer exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"anonymizer did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def deployment(
    orthanc_factory: OrthancFactory,
    generated_data: GeneratedData,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    """Orthanc without any authorization plugin, the anonymizer as a uvicorn process."""
    orthanc = orthanc_factory("anonymizer-upstream", seeded=False)
    secrets: list[str] = [v for v in samples.PLANTED if len(v) >= 6]
    study_ids: dict[str, str] = {}
    other_ids: list[str] = []
    for data in _planted_instances():
        answer = _upload(orthanc, data)
        study_ids[samples.STUDY] = answer["ParentStudy"]
        other_ids += [answer["ID"], answer["ParentSeries"], answer["ParentPatient"]]
    shared_generated, unshared = generated_data.studies[0], generated_data.studies[1]
    for study in (shared_generated, unshared):
        for series, instance in study.instances():
            answer = _upload(orthanc, encode_instance(study, series, instance))
            study_ids[study.study_instance_uid] = answer["ParentStudy"]
            other_ids += [answer["ID"], answer["ParentSeries"], answer["ParentPatient"]]
        secrets += _study_secrets(study)
    secrets += list(study_ids.values()) + other_ids

    shared = (samples.STUDY, shared_generated.study_instance_uid)
    request = ShareRequest.model_validate(
        {
            "studies": [{"dicom-uid": uid, "orthanc-id": study_ids[uid]} for uid in shared],
            "anonymized": True,
            "type": "stone-viewer-publication",
        }
    )
    token, share = TokenCodec(
        [SECRET_KEY.encode()], anonymization_key=ANONYMIZATION_KEY.encode()
    ).encode(request)

    port = free_port()
    log = tmp_path_factory.mktemp("anonymizer") / "anonymizer.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONUNBUFFERED": "1",
        "SECRET_KEY": SECRET_KEY,
        "ANONYMIZATION_KEY": ANONYMIZATION_KEY,
        "ANONYMIZED_ORTHANC_URL": orthanc.base_url,
    }
    command = [
        sys.executable, "-m", "uvicorn", "anonymizer.app:app",
        "--host", "127.0.0.1", "--port", str(port), "--no-server-header",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
            yield Deployment(
                orthanc=orthanc,
                anonymizer=client,
                token=token,
                pseudo=pseudonymizer_for(share, ANONYMIZATION_KEY.encode()),
                shared=shared,
                unshared=unshared.study_instance_uid,
                study_ids=study_ids,
                secrets=tuple(dict.fromkeys(secrets)),
            )
        assert token not in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=10)


def _bodies(response: httpx.Response) -> list[bytes]:
    """The body, and what it holds: every zip entry, every multipart part."""
    content_type = response.headers.get("content-type", "")
    bodies = [response.content]
    if content_type.startswith("application/zip"):
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            bodies += [info.filename.encode() for info in archive.infolist()]
            bodies += [archive.read(info) for info in archive.infolist()]
    boundary = boundary_of(content_type)
    if boundary is not None:
        for part in parse_multipart(response.content, boundary):
            bodies += [repr(part.headers).encode(), part.body]
    return bodies


class Viewer:
    """Makes a viewer's requests through the anonymizer and checks every answer."""

    def __init__(self, deployment: Deployment) -> None:
        self.d = deployment
        self.checked = 0

    def get(self, path: str, *, accept: str | None = None, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.d.token}"}
        if accept is not None:
            headers["Accept"] = accept
        response = self.d.anonymizer.get(path, params=params, headers=headers)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        header_text = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        for body in [header_text.encode(), *_bodies(response)]:
            found = [secret for secret in self.d.secrets if secret.encode() in body]
            assert found == [], (path, found)
        self.checked += 1
        return response


def test_every_viewer_request_is_anonymized(deployment: Deployment) -> None:
    viewer = Viewer(deployment)
    pseudo = deployment.pseudo
    for real_study in deployment.shared:
        study = pseudo.uid(real_study)
        # Stone Web Viewer: QIDO at study and series level with hex keys, then per series.
        found = viewer.get("/dicom-web/studies", **{"0020000D": study, "includefield": "00081030"})
        assert [item["0020000D"]["Value"] for item in found.json()] == [[study]]
        series_list = viewer.get(
            "/dicom-web/series", **{"0020000D": study, "includefield": "00080060,0020000E"}
        ).json()
        assert series_list
        # OHIF: QIDO by keyword, series of the study, study metadata.
        viewer.get("/dicom-web/studies", StudyInstanceUID=study, limit="101", offset="0")
        viewer.get(f"/dicom-web/studies/{study}/series", includefield="0008103E")
        viewer.get(f"/dicom-web/studies/{study}/metadata")
        for series_item in series_list:
            series = series_item["0020000E"]["Value"][0]
            base = f"/dicom-web/studies/{study}/series/{series}"
            metadata = viewer.get(f"{base}/metadata").json()
            viewer.get(f"{base}/instances")
            viewer.get(f"{base}/rendered")
            for instance_item in metadata:
                instance = instance_item["00080018"]["Value"][0]
                assert instance_item["00120062"]["Value"] == ["YES"]
                viewer.get(f"{base}/instances/{instance}/metadata")
                viewer.get(f"{base}/instances/{instance}/frames/1", accept=MULTIPART_FRAMES)
                viewer.get(f"{base}/instances/{instance}/rendered")
                viewer.get(f"{base}/instances/{instance}", accept=MULTIPART_DICOM)
                bulk = instance_item["7FE00010"].get("BulkDataURI")
                if bulk is not None:
                    viewer.get(bulk[bulk.index("/dicom-web/") :], accept=MULTIPART_FRAMES)
        # The Osimis viewer and downloads: Orthanc's REST API with pseudonymous ids.
        study_id = pseudo.orthanc_id(deployment.study_ids[real_study])
        study_json = viewer.get(f"/studies/{study_id}").json()
        assert study_json["ID"] == study_id
        viewer.get(f"/studies/{study_id}/series")
        viewer.get(f"/studies/{study_id}/instances")
        for series_id in study_json["Series"]:
            viewer.get(f"/series/{series_id}/study")
            for instance_id in viewer.get(f"/series/{series_id}").json()["Instances"]:
                viewer.get(f"/instances/{instance_id}/simplified-tags")
                viewer.get(f"/instances/{instance_id}/tags")
                viewer.get(f"/instances/{instance_id}/tags", simplify="")
                viewer.get(f"/instances/{instance_id}/preview")
                viewer.get(f"/instances/{instance_id}/file")
                viewer.get(f"/instances/{instance_id}/study")
        archive = viewer.get(f"/studies/{study_id}/archive")
        assert zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert viewer.checked > 50


def test_references_inside_sequences_point_at_the_pseudonymous_instance(
    deployment: Deployment,
) -> None:
    viewer = Viewer(deployment)
    pseudo = deployment.pseudo
    base = f"/dicom-web/studies/{pseudo.uid(samples.STUDY)}/series/{pseudo.uid(samples.SERIES)}"

    metadata = viewer.get(f"{base}/metadata").json()

    uids = {item["00080018"]["Value"][0] for item in metadata}
    for item in metadata:
        referenced = item["00081140"]["Value"][0]["00081155"]["Value"][0]
        assert referenced == pseudo.uid(samples.OTHER_INSTANCE) and referenced in uids
        assert item["00080016"]["Value"] == ["1.2.840.10008.5.1.4.1.1.4"]


@pytest.mark.parametrize(
    "path",
    [
        "/dicom-web/studies/{unshared}/metadata",
        "/dicom-web/studies/{unshared_pseudo}/metadata",
        "/dicom-web/studies?0020000D={unshared}",
        "/dicom-web/studies?PatientName=DOE*",
        "/dicom-web/studies",
        "/dicom-web/studies/{shared}/metadata?includefield=all",
        "/patients",
        "/studies",
        "/studies/{unshared_id}",
        "/tools/find",
        "/system/",
    ],
)
def test_what_is_not_shared_is_refused(deployment: Deployment, path: str) -> None:
    pseudo = deployment.pseudo
    url = path.format(
        unshared=deployment.unshared,
        unshared_pseudo=pseudo.uid(deployment.unshared),
        unshared_id=deployment.study_ids[deployment.unshared],
        shared=pseudo.uid(deployment.shared[0]),
    )

    response = deployment.anonymizer.get(
        url, headers={"Authorization": f"Bearer {deployment.token}"}
    )

    assert response.status_code == 403


def test_a_token_that_is_not_anonymized_opens_nothing(deployment: Deployment) -> None:
    study_id = deployment.study_ids[deployment.shared[0]]
    request = ShareRequest.model_validate(
        {
            "studies": [{"dicom-uid": deployment.shared[0], "orthanc-id": study_id}],
            "anonymized": False,
            "type": "stone-viewer-publication",
        }
    )
    token, _ = TokenCodec(
        [SECRET_KEY.encode()], anonymization_key=ANONYMIZATION_KEY.encode()
    ).encode(request)

    response = deployment.anonymizer.get(
        f"/studies/{study_id}", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 403


def test_system_shows_the_software_not_the_site(deployment: Deployment) -> None:
    direct = deployment.orthanc.http.get("/system").json()
    assert "Name" in direct and "DicomAet" in direct
    response = deployment.anonymizer.get("/system")
    assert response.status_code == 200
    answer = response.json()
    assert answer["Version"] == direct["Version"]
    assert answer["ApiVersion"] == direct["ApiVersion"]
    assert not {"Name", "DicomAet", "DicomPort", "HttpPort"} & set(answer)

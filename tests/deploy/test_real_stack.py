"""Share links through the stack's nginx to the real services and real Orthancs.

Real processes: nginx on the rendered templates, the token service, the landing and the
anonymizer (`orthanc-share serve ...`), and two Debian Orthancs configured from
docker/orthanc/share.json and anon-share.json with the authorization-plugin emulator of
tests/e2e (the official plugin has no Debian package).  Only the addresses differ from
the compose deployment: loopback ports instead of service names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.deploy.compose import REPO, Compose, interpolate, load_compose
from tests.deploy.nginx import Nginx, free_port, prepare, read_log_when, running_nginx
from tests.e2e.orthanc import EmulatorConfig, OrthancFactory, OrthancServer
from tests.factories import SECRET, share_body
from tests.servers import ServiceProcess, start_service

pytestmark = pytest.mark.e2e

ADMIN_ACCOUNT = ("orthanc-admin", "admin-orthanc-password-for-tests-0123456789")
SHARE_ACCOUNT = ("orthanc-share", "share-orthanc-password-for-tests-0123456789")
ANON_SHARE_ACCOUNT = ("orthanc-anon-share", "anon-share-orthanc-password-for-tests-0123")
ANONYMIZATION_KEY = "deploy-test-anonymization-key-0123456789abcdef"


@dataclass(frozen=True)
class Stack:
    public: str
    nginx: Nginx
    token_service: ServiceProcess
    orthanc: OrthancServer
    anonymized_orthanc: OrthancServer


def compose_value(compose: Compose, service: str, name: str) -> str:
    value = compose.service(service).environment()[name]
    assert value is not None
    return interpolate(value, {})


def orthanc_config(name: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((REPO / "docker" / "orthanc" / name).read_text())
    return config


def share_orthanc(
    compose: Compose,
    factory: OrthancFactory,
    service: str,
    config_file: str,
    token_service: ServiceProcess,
    account: tuple[str, str],
) -> OrthancServer:
    """A Debian Orthanc with the Authorization and DICOMweb URL settings of `config_file`."""
    config = orthanc_config(config_file)
    authorization = config["Authorization"]
    root = urlsplit(authorization["WebServiceRootUrl"])
    assert (root.hostname, root.port) == ("token-service", 8000)
    dicomweb = {
        key: value for key, value in config["DicomWeb"].items() if key in ("PublicRoot", "Host")
    }
    return factory(
        f"deploy-{service}",
        EmulatorConfig(
            mode="current",
            root_url=f"{token_service.url}{root.path}",
            username=account[0],
            password=account[1],
            server_id=compose_value(
                compose, service, "ORTHANC__AUTHORIZATION__WEB_SERVICE_IDENTIFIER"
            ),
            standard_configurations=tuple(authorization["StandardConfigurations"]),
            checked_level=authorization["CheckedLevel"],
        ),
        extra_config={"DicomWeb": {"Enable": True, "Root": "/dicom-web/", **dicomweb}},
    )


@pytest.fixture(scope="module")
def stack(
    orthanc_factory: OrthancFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    compose = load_compose()
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("real-stack-logs")
    common = {
        "SECRET_KEY": SECRET,
        "ANONYMIZATION_KEY": ANONYMIZATION_KEY,
        "PUBLIC_ORTHANC_ROOT": f"{public}/shares/",
        "PUBLIC_LANDING_ROOT": f"{public}/welcome/",
        # What docs/deployment.md has the operator set in .env with the profile.
        "PUBLIC_ANONYMIZED_ORTHANC_ROOT": f"{public}/anon-shares/",
    }
    token_service = start_service(
        "token-service",
        {
            **common,
            "SERVER_IDENTIFIER": compose_value(compose, "token-service", "SERVER_IDENTIFIER"),
            "ANONYMIZED_SERVER_IDENTIFIER": compose_value(
                compose, "token-service", "ANONYMIZED_SERVER_IDENTIFIER"
            ),
            "USERS": json.dumps(dict([ADMIN_ACCOUNT])),
            "VALIDATION_USERS": json.dumps(dict([SHARE_ACCOUNT, ANON_SHARE_ACCOUNT])),
        },
        logs,
    )
    started = [token_service]
    try:
        started.append(landing := start_service("share-landing", common, logs))
        orthanc = share_orthanc(
            compose, orthanc_factory, "orthanc-share", "share.json", token_service, SHARE_ACCOUNT
        )
        anonymized_orthanc = share_orthanc(
            compose,
            orthanc_factory,
            "orthanc-anon-share",
            "anon-share.json",
            token_service,
            ANON_SHARE_ACCOUNT,
        )
        # The anonymizer as compose runs it, its upstream moved to loopback.
        upstream = urlsplit(compose_value(compose, "anonymizer", "ANONYMIZED_ORTHANC_URL"))
        assert (upstream.hostname, upstream.port) == ("orthanc-anon-share", 8042)
        anonymizer_env = {
            "SECRET_KEY": SECRET,
            "ANONYMIZATION_KEY": ANONYMIZATION_KEY,
            "ANONYMIZED_ORTHANC_URL": anonymized_orthanc.base_url,
        }
        started.append(anonymizer := start_service("anonymizer", anonymizer_env, logs))
        closed = f"127.0.0.1:{free_port()}"
        variables = {
            name: str(value) for name, value in compose.service("nginx").environment().items()
        }
        variables.update(
            NGINX_PORT=str(port),
            NGINX_ACCESS_LOG=str(logs / "access.log"),
            UPSTREAM_SHARE_LANDING=landing.url.removeprefix("http://"),
            UPSTREAM_SHARE_ORTHANC=orthanc.base_url.removeprefix("http://"),
            UPSTREAM_ANONYMIZER=anonymizer.url.removeprefix("http://"),
            UPSTREAM_ADMIN_ORTHANC=closed,
            UPSTREAM_MEDDREAM_VIEWER=closed,
        )
        nginx = prepare(Path(tmp_path_factory.mktemp("real-stack-nginx")), variables)
        with running_nginx(nginx):
            yield Stack(public, nginx, token_service, orthanc, anonymized_orthanc)
    finally:
        for service in reversed(started):
            service.stop()


@dataclass(frozen=True)
class Shared:
    study_uid: str
    study_id: str
    other_study_id: str
    token: str
    url: str


@pytest.fixture(scope="module")
def shared(stack: Stack) -> Shared:
    seed = stack.orthanc.seed
    assert seed is not None
    data, ids = seed.data, seed.ids
    study, other = data.studies[0], data.studies[1]
    body = share_body(
        studies=[{"dicom-uid": study.study_instance_uid, "orthanc-id": ids.study(study)}]
    )
    created = httpx.put(f"{stack.token_service.url}/shares", json=body, auth=ADMIN_ACCOUNT)
    assert created.status_code == 200, created.text
    answer = created.json()
    return Shared(
        study.study_instance_uid,
        ids.study(study),
        ids.study(other),
        answer["token"],
        answer["url"],
    )


def through_nginx(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.public, follow_redirects=False, trust_env=False)


def test_share_link_opens_the_viewer_through_the_landing(stack: Stack, shared: Shared) -> None:
    assert shared.url == f"{stack.public}/welcome/?token={shared.token}"
    with through_nginx(stack) as client:
        response = client.get(shared.url)
    assert response.status_code == 307
    assert response.headers["location"] == (
        f"{stack.public}/shares/stone-webviewer/index.html?study={shared.study_uid}"
        f"&selectedStudies={shared.study_uid}&token={shared.token}"
    )


def test_viewer_reads_the_shared_study_through_nginx(stack: Stack, shared: Shared) -> None:
    bearer = {"Authorization": f"Bearer {shared.token}"}
    with through_nginx(stack) as client:
        series = client.get(f"/shares/dicom-web/studies/{shared.study_uid}/series", headers=bearer)
        study = client.get(f"/shares/studies/{shared.study_id}", headers=bearer)
    assert series.status_code == 200, series.text
    assert len(series.json()) >= 1
    assert study.status_code == 200
    assert study.json()["MainDicomTags"]["StudyInstanceUID"] == shared.study_uid


def test_share_orthanc_refuses_what_the_token_does_not_grant(stack: Stack, shared: Shared) -> None:
    bearer = {"Authorization": f"Bearer {shared.token}"}
    with through_nginx(stack) as client:
        assert client.get(f"/shares/studies/{shared.study_id}").status_code == 403
        other = client.get(f"/shares/studies/{shared.other_study_id}", headers=bearer)
        assert other.status_code == 403
        assert (
            client.delete(f"/shares/studies/{shared.study_id}", headers=bearer).status_code == 403
        )


def test_share_orthanc_credentials_cannot_create_shares(stack: Stack, shared: Shared) -> None:
    response = httpx.put(f"{stack.token_service.url}/shares", json=share_body(), auth=SHARE_ACCOUNT)
    assert response.status_code in (401, 403)


def test_no_token_in_the_access_log(stack: Stack, shared: Shared) -> None:
    expected = (
        '"GET /welcome/ HTTP/1.1" 307 ',
        f'"GET /shares/dicom-web/studies/{shared.study_uid}/series HTTP/1.1" 200 ',
    )
    log = read_log_when(stack.nginx.access_log, *expected)
    for line in expected:
        assert line in log
    assert shared.token not in log
    assert "token=" not in log


def test_anonymized_share_opens_through_the_anonymizer(stack: Stack, shared: Shared) -> None:
    seed = stack.anonymized_orthanc.seed
    assert seed is not None
    study = seed.data.studies[0]
    body = share_body(
        studies=[{"dicom-uid": study.study_instance_uid, "orthanc-id": seed.ids.study(study)}],
        anonymized=True,
    )
    created = httpx.put(f"{stack.token_service.url}/shares", json=body, auth=ADMIN_ACCOUNT)
    assert created.status_code == 200, created.text
    token = created.json()["token"]

    with through_nginx(stack) as client:
        landing = client.get(created.json()["url"])
        assert landing.status_code == 307
        location = landing.headers["location"]
        assert location.startswith(f"{stack.public}/anon-shares/stone-webviewer/index.html?")
        pseudonym = parse_qs(urlsplit(location).query)["study"][0]
        assert pseudonym != study.study_instance_uid

        bearer = {"Authorization": f"Bearer {token}"}
        found = client.get(f"/anon-shares/dicom-web/studies?0020000D={pseudonym}", headers=bearer)
        series = client.get(f"/anon-shares/dicom-web/studies/{pseudonym}/series", headers=bearer)
        # A standard share's token, and another study, open nothing there.
        standard = client.get(
            f"/anon-shares/dicom-web/studies/{pseudonym}/series",
            headers={"Authorization": f"Bearer {shared.token}"},
        )
        other = seed.data.studies[1].study_instance_uid
        unshared = client.get(f"/anon-shares/dicom-web/studies/{other}/series", headers=bearer)
    assert found.status_code == 200, found.text
    assert series.status_code == 200, series.text
    assert len(series.json()) == len(study.series)
    assert (standard.status_code, unshared.status_code) == (403, 403)
    for response in (found, series):
        for secret in (
            study.study_instance_uid,
            study.patient.patient_id,
            study.accession_number,
            "127.0.0.1",  # the internal address of the anonymized Orthanc
            str(stack.anonymized_orthanc.port),
        ):
            assert secret not in response.text, secret
    # DICOMweb's absolute URLs name the reserved host of anon-share.json, not an
    # internal one, and the pseudonym.  (Debian's DICOMweb plugin 1.7 predates
    # "PublicRoot", which the image's plugin puts between the two.)
    retrieve = found.json()[0]["00081190"]["Value"][0]
    host = orthanc_config("anon-share.json")["DicomWeb"]["Host"]
    assert retrieve.startswith(f"http://{host}/")
    assert retrieve.endswith(f"/dicom-web/studies/{pseudonym}")

"""A share link through the stack's nginx to the real services and a real Orthanc.

Real processes: nginx on the rendered templates, the token service and the landing
(`orthanc-share serve ...`), and Debian's Orthanc configured from docker/orthanc/share.json
with the authorization-plugin emulator of tests/e2e (the official plugin has no Debian
package).  Only the addresses differ from the compose deployment: loopback ports instead
of service names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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


@dataclass(frozen=True)
class Stack:
    public: str
    nginx: Nginx
    token_service: ServiceProcess
    orthanc: OrthancServer


def compose_value(compose: Compose, service: str, name: str) -> str:
    value = compose.service(service).environment()[name]
    assert value is not None
    return interpolate(value, {})


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
        "PUBLIC_ORTHANC_ROOT": f"{public}/shares/",
        "PUBLIC_LANDING_ROOT": f"{public}/welcome/",
    }
    identifier = compose_value(compose, "token-service", "SERVER_IDENTIFIER")
    token_service = start_service(
        "token-service",
        {
            **common,
            "SERVER_IDENTIFIER": identifier,
            "ANONYMIZED_SERVER_IDENTIFIER": compose_value(
                compose, "token-service", "ANONYMIZED_SERVER_IDENTIFIER"
            ),
            "USERS": json.dumps(dict([ADMIN_ACCOUNT])),
            "VALIDATION_USERS": json.dumps(dict([SHARE_ACCOUNT])),
        },
        logs,
    )
    landing = start_service("share-landing", common, logs)
    try:
        authorization = json.loads((REPO / "docker/orthanc/share.json").read_text())[
            "Authorization"
        ]
        root = urlsplit(authorization["WebServiceRootUrl"])
        assert (root.hostname, root.port) == ("token-service", 8000)
        orthanc = orthanc_factory(
            "deploy-share",
            EmulatorConfig(
                mode="current",
                root_url=f"{token_service.url}{root.path}",
                username=SHARE_ACCOUNT[0],
                password=SHARE_ACCOUNT[1],
                server_id=compose_value(
                    compose, "orthanc-share", "ORTHANC__AUTHORIZATION__WEB_SERVICE_IDENTIFIER"
                ),
                standard_configurations=tuple(authorization["StandardConfigurations"]),
                checked_level=authorization["CheckedLevel"],
            ),
        )
        closed = f"127.0.0.1:{free_port()}"
        variables = {
            name: str(value) for name, value in compose.service("nginx").environment().items()
        }
        variables.update(
            NGINX_PORT=str(port),
            NGINX_ACCESS_LOG=str(logs / "access.log"),
            UPSTREAM_SHARE_LANDING=landing.url.removeprefix("http://"),
            UPSTREAM_SHARE_ORTHANC=orthanc.base_url.removeprefix("http://"),
            UPSTREAM_ADMIN_ORTHANC=closed,
            UPSTREAM_ANONYMIZER=closed,
            UPSTREAM_MEDDREAM_VIEWER=closed,
        )
        nginx = prepare(Path(tmp_path_factory.mktemp("real-stack-nginx")), variables)
        with running_nginx(nginx):
            yield Stack(public, nginx, token_service, orthanc)
    finally:
        landing.stop()
        token_service.stop()


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

"""The services as real uvicorn processes over real sockets."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import SECRET, STUDY_ID, share_body
from tests.servers import ServiceProcess, free_port, start_service

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    log_dir = tmp_path_factory.mktemp("logs")
    landing_port = free_port()
    env = {
        "SECRET_KEY": SECRET,
        "PUBLIC_ORTHANC_ROOT": "http://127.0.0.1:8042/",
        "PUBLIC_LANDING_ROOT": f"http://127.0.0.1:{landing_port}/share-landing/",
        "SERVER_IDENTIFIER": "standard-server-id",
        "USERS": '{"admin": "admin-password"}',
        "VALIDATION_USERS": '{"plugin": "plugin-password"}',
        "DATABASE_URL": f"sqlite:///{log_dir / 'revocations.sqlite3'}",
        "REVOCATION_REFRESH_SECONDS": "0.2",
    }
    started = {
        "token": start_service("token-service", env, log_dir),
        "landing": start_service("share-landing", env, log_dir, port=landing_port),
    }
    yield started
    for service in started.values():
        service.stop()


def test_share_link_round_trip(services: dict[str, ServiceProcess]) -> None:
    token_service, landing = services["token"], services["landing"]
    admin = ("admin", "admin-password")
    created = httpx.put(f"{token_service.url}/shares", json=share_body(), auth=admin)
    assert created.status_code == 200
    link = created.json()["url"]
    token = created.json()["token"]
    assert link.startswith(landing.url + "/share-landing/?token=")

    opened = httpx.get(link)
    assert opened.status_code == 307
    assert opened.headers["location"].startswith(
        "http://127.0.0.1:8042/stone-webviewer/index.html?"
    )

    body = {
        "orthanc-id": STUDY_ID,
        "identifier": "standard-server-id",
        "level": "study",
        "method": "get",
    }
    plugin = ("plugin", "plugin-password")
    answer = httpx.post(
        f"{token_service.url}/shares/validate", json=body, headers={"token": token}, auth=plugin
    )
    assert answer.json() == {"granted": True, "validity": 60}

    # Revoked through the token service; the landing sees it after its next refresh.
    assert (
        httpx.post(
            f"{token_service.url}/shares/revoke", json={"token": link}, auth=admin
        ).status_code
        == 200
    )
    answer = httpx.post(
        f"{token_service.url}/shares/validate", json=body, headers={"token": token}, auth=plugin
    )
    assert answer.json()["granted"] is False
    for _ in range(50):
        if httpx.get(link).status_code == 410:
            break
        subprocess.run(["sleep", "0.1"], check=True)
    assert httpx.get(link).status_code == 410

    # Neither access logs nor application logs carry the token.
    for service in (token_service, landing):
        log = service.log()
        assert token.split(".")[2] not in log
        assert "token=[redacted]" in log or service is token_service
    assert "GET /share-landing/?token=[redacted]" in landing.log()
    assert "share created: id=" in token_service.log()


def test_no_server_header(services: dict[str, ServiceProcess]) -> None:
    response = httpx.get(f"{services['token'].url}/health")
    assert "server" not in response.headers


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, ["SECRET_KEY"]),
        ({"SECRET_KEY": SECRET, "PUBLIC_ORTHANC_ROOT": "ftp://x"}, ["PUBLIC_ORTHANC_ROOT"]),
        ({"SECRET_KEY": SECRET, "USERS": '{"admin": "pw-in-broken-json"'}, ["USERS"]),
    ],
)
def test_bad_configuration_stops_with_one_clear_line(
    tmp_path: Path, env: dict[str, str], names: list[str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "serve", "token-service", "--port", str(free_port())],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    error_lines = [line for line in output.splitlines() if "invalid configuration" in line]
    assert error_lines, output
    for name in names:
        assert name in error_lines[0]
    assert "pw-in-broken-json" not in output


def test_uvicorn_module_app_reads_no_settings_at_import(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import token_service.app, share_landing.app; print('ok')"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_gen_secret() -> None:
    first = subprocess.run(
        [sys.executable, "-m", "shared.cli", "gen-secret"],
        capture_output=True,
        text=True,
        check=True,
    )
    second = subprocess.run(
        [sys.executable, "-m", "shared.cli", "gen-secret"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(first.stdout.strip()) >= 43
    assert first.stdout != second.stdout

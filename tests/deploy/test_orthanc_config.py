"""The Orthanc configuration files mounted by docker-compose.yml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.compose import REPO, Compose, load_compose

CONFIG_DIR = REPO / "docker" / "orthanc"
TOKEN_SERVICE = "http://token-service:8000/"
# Credentials reach the Orthancs as Docker secrets only, never from a file in git.
CREDENTIAL_KEYS = {"RegisteredUsers", "WebServiceUsername", "WebServicePassword", "Password"}


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


def config_of(compose: Compose, service: str) -> dict[str, Any]:
    """The service's mounted /etc/orthanc/*.json files, merged like the image does."""
    merged: dict[str, Any] = {}
    for source, target in compose.service(service).bind_mounts():
        if target.startswith("/etc/orthanc/"):
            merge(merged, json.loads((REPO / source).read_text()), source)
    return merged


def merge(into: dict[str, Any], other: dict[str, Any], source: str) -> None:
    # The image merges the files in directory order, which is not defined: a key set by
    # two files must agree, or the result would depend on that order.
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value, source)
        else:
            assert key not in into or into[key] == value, f"{source}: {key} conflicts"
            into[key] = value


def all_keys(node: object) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in all_keys(v)}
    if isinstance(node, list):
        return {k for item in node for k in all_keys(item)}
    return set()


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.json")), ids=lambda p: p.name)
def test_config_files_are_plain_json_without_credentials(path: Path) -> None:
    config = json.loads(path.read_text())
    assert not CREDENTIAL_KEYS & all_keys(config), path.name


def test_admin_orthanc_creates_shares_through_the_plugin(compose: Compose) -> None:
    config = config_of(compose, "orthanc-admin")
    assert config["AuthenticationEnabled"] is True
    authorization = config["Authorization"]
    # Creation URL only: the plugin then installs no request filter on the admin Orthanc.
    assert authorization == {"WebServiceTokenCreationBaseUrl": TOKEN_SERVICE + "tokens/"}
    assert config["OrthancExplorer2"]["UiOptions"]["EnableShares"] is True
    assert config["OrthancExplorer2"]["Tokens"]["ShareType"] == "stone-viewer-publication"


@pytest.mark.parametrize("service", ["orthanc-share", "orthanc-anon-share"])
def test_share_orthancs_check_every_study_with_the_token_service(
    compose: Compose, service: str
) -> None:
    config = config_of(compose, service)
    authorization = config["Authorization"]
    assert authorization["WebServiceRootUrl"] == TOKEN_SERVICE
    assert authorization["CheckedLevel"] == "studies"
    assert set(authorization["StandardConfigurations"]) == {
        "stone-webviewer",
        "osimis-web-viewer",
        "orthanc-explorer-2",
    }
    # Anonymous access is the plugin's job; nothing may write through these Orthancs.
    assert config["AuthenticationEnabled"] is False
    assert config["ReadOnly"] is True
    assert config["DicomServerEnabled"] is False
    identifier = compose.service(service).environment()
    assert "ORTHANC__AUTHORIZATION__WEB_SERVICE_IDENTIFIER" in identifier


def test_stone_viewer_is_enabled_on_the_share_orthanc(compose: Compose) -> None:
    environment = compose.service("orthanc-share").environment()
    assert environment["STONE_WEB_VIEWER_PLUGIN_ENABLED"] == "true"


@pytest.mark.parametrize(
    "service", ["orthanc-admin", "orthanc-share", "orthanc-anon-share", "orthanc-meddream"]
)
def test_every_orthanc_uses_the_shared_postgresql_database(compose: Compose, service: str) -> None:
    database = config_of(compose, service)["PostgreSQL"]
    assert database["Host"] == "postgres"
    assert database["EnableIndex"] is True and database["EnableStorage"] is True
    # Several Orthancs on one database: no exclusive lock.
    assert database["Lock"] is False
    assert compose.service(service).secrets()["orthanc_db_password"] == (
        "ORTHANC__POSTGRESQL__PASSWORD"
    )


def test_token_service_address_in_orthanc_configs_is_the_compose_service() -> None:
    compose = load_compose()
    command = compose.service("token-service").spec["command"]
    assert command[command.index("--port") + 1] == "8000"
    assert "token-service" in compose.services

"""The Orthanc configuration files mounted by docker-compose.yml."""

from __future__ import annotations

import json
import re
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


# The viewers each share Orthanc serves.  OE2 only on the public one: its token landing
# page calls auth/tokens/decode there; the anonymizer serves no OE2 route at all.
STANDARD_CONFIGURATIONS = {
    "orthanc-share": {"stone-webviewer", "osimis-web-viewer", "orthanc-explorer-2"},
    "orthanc-anon-share": {"stone-webviewer", "osimis-web-viewer"},
}


def readme_share_orthanc_authorization() -> dict[str, Any]:
    """The share Orthanc's `Authorization` example of README's "Today's Orthanc stack"."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Today's Orthanc stack") :]
    block = re.search(r"```jsonc\n(.*?)```", section, re.DOTALL)
    assert block, "README: the share Orthanc's configuration example is gone"
    text = re.sub(r"\s+//[^\n]*", "", block.group(1))  # comments, not URLs
    section_json: dict[str, Any] = json.loads("{" + text + "}")["Authorization"]
    return section_json


@pytest.mark.parametrize("service", sorted(STANDARD_CONFIGURATIONS))
def test_share_orthancs_check_every_study_with_the_token_service(
    compose: Compose, service: str
) -> None:
    config = config_of(compose, service)
    authorization = config["Authorization"]
    assert authorization["WebServiceRootUrl"] == TOKEN_SERVICE
    assert authorization["CheckedLevel"] == "studies"
    assert set(authorization["StandardConfigurations"]) == STANDARD_CONFIGURATIONS[service]
    # Anonymous access is the plugin's job; nothing may write through these Orthancs.
    assert config["AuthenticationEnabled"] is False
    assert config["ReadOnly"] is True
    assert config["DicomServerEnabled"] is False
    identifier = compose.service(service).environment()
    assert "ORTHANC__AUTHORIZATION__WEB_SERVICE_IDENTIFIER" in identifier


@pytest.mark.parametrize("service", sorted(STANDARD_CONFIGURATIONS))
def test_share_orthancs_follow_the_readme_configuration(
    compose: Compose, service: str, generated_secrets: Path
) -> None:
    example = readme_share_orthanc_authorization()
    authorization = config_of(compose, service)["Authorization"]
    for key in ("WebServiceRootUrl", "CheckedLevel"):
        assert authorization[key] == example[key], key
    # Only viewers the README knows, and OE2 whenever its token landing is reachable.
    configurations = set(authorization["StandardConfigurations"])
    assert configurations <= set(example["StandardConfigurations"])
    # WebServiceIdentifier from the environment, credentials from a secret that holds
    # a VALIDATION_USERS account (never a USERS one: it could mint shares).
    environment = compose.service(service).environment()
    assert "ORTHANC__AUTHORIZATION__WEB_SERVICE_IDENTIFIER" in environment
    sources = {target: source for source, target in compose.service(service).secrets().items()}
    credentials_file = compose.secret_files()[sources["token-service-credentials.json"]]
    credentials = json.loads((generated_secrets / Path(credentials_file).name).read_text())
    section = credentials["Authorization"]
    validators = json.loads((generated_secrets / "token_service_validation_users.json").read_text())
    users = json.loads((generated_secrets / "token_service_users.json").read_text())
    assert validators[section["WebServiceUsername"]] == section["WebServicePassword"]
    assert section["WebServiceUsername"] not in users


def test_admin_orthanc_follows_the_readme_configuration(
    compose: Compose, generated_secrets: Path
) -> None:
    readme = (REPO / "README.md").read_text()
    url = config_of(compose, "orthanc-admin")["Authorization"]["WebServiceTokenCreationBaseUrl"]
    assert f'`"WebServiceTokenCreationBaseUrl": "{url}"`' in readme
    sources = {
        target: source for source, target in compose.service("orthanc-admin").secrets().items()
    }
    credentials_file = compose.secret_files()[sources["token-service-credentials.json"]]
    section = json.loads((generated_secrets / Path(credentials_file).name).read_text())[
        "Authorization"
    ]
    users = json.loads((generated_secrets / "token_service_users.json").read_text())
    assert users[section["WebServiceUsername"]] == section["WebServicePassword"]


@pytest.mark.parametrize("service", sorted(STANDARD_CONFIGURATIONS))
def test_stone_viewer_is_enabled_on_the_share_orthancs(compose: Compose, service: str) -> None:
    # Anonymized shares open in Stone too: the anonymizer serves its files from there.
    environment = compose.service(service).environment()
    assert environment["STONE_WEB_VIEWER_PLUGIN_ENABLED"] == "true"


def test_dicomweb_urls_of_the_anonymized_orthanc_name_no_internal_host(compose: Compose) -> None:
    # The anonymizer forwards no Host/X-Forwarded-* header: without DicomWeb.Host, the
    # RetrieveURLs would name orthanc-anon-share:8042.
    dicomweb = config_of(compose, "orthanc-anon-share")["DicomWeb"]
    assert dicomweb["PublicRoot"] == "/anon-shares/dicom-web/"
    host = dicomweb["Host"]
    assert host.endswith(".invalid")  # RFC 2606: reserved, resolves nowhere
    assert not {name for name in compose.services if name in host}
    assert config_of(compose, "orthanc-share")["DicomWeb"]["PublicRoot"] == "/shares/dicom-web/"


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

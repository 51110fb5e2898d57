"""Everything the compose file mounts exists, or is created by the documented generator."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.deploy.compose import REPO, Compose, load_compose
from tests.deploy.conftest import generate_secrets

DEPLOYMENT_DOC = REPO / "docs" / "deployment.md"
SECRETS_DIR = "./docker/secrets/"


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


def test_every_bind_mounted_path_is_in_the_repository(compose: Compose) -> None:
    for service in compose.services.values():
        for source, _ in service.bind_mounts():
            assert source.startswith("./"), f"{service.name}: {source} is not relative"
            assert (REPO / source).exists(), f"{service.name}: {source} is missing"


def operator_files(compose: Compose) -> set[str]:
    """Files the operator's host provides: secret files and env files."""
    files = set(compose.secret_files().values())
    for service in compose.services.values():
        for item in service.spec.get("env_file", []):
            files.add(str(item))
    return files


def test_operator_files_all_live_in_the_ignored_secrets_directory(compose: Compose) -> None:
    for path in operator_files(compose):
        assert path.startswith(SECRETS_DIR), path
    ignore = (REPO / "docker" / "secrets" / ".gitignore").read_text().split()
    assert ignore[ignore.index("*") :] == ["*", "!.gitignore"]


def test_generator_creates_every_operator_file(compose: Compose, generated_secrets: Path) -> None:
    created = {p.name for p in generated_secrets.iterdir()}
    expected = {path.removeprefix(SECRETS_DIR) for path in operator_files(compose)}
    assert created == expected


def test_deployment_doc_names_every_operator_file(compose: Compose) -> None:
    doc = DEPLOYMENT_DOC.read_text()
    assert "python3 docker/generate-secrets.py" in doc
    for path in operator_files(compose):
        assert f"`{path.removeprefix(SECRETS_DIR)}`" in doc, path


def test_generated_files_are_private_on_the_host_and_readable_in_containers(
    generated_secrets: Path,
) -> None:
    assert stat.S_IMODE(generated_secrets.stat().st_mode) == 0o700
    for path in generated_secrets.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_generated_values_agree_with_each_other(generated_secrets: Path) -> None:
    password = (generated_secrets / "share_db_password").read_text().strip()
    url = (generated_secrets / "database_url").read_text().strip()
    assert url == f"postgresql://orthanc_share:{password}@postgres:5432/orthanc_share"
    users = json.loads((generated_secrets / "orthanc_meddream_users.json").read_text())
    env = dict(
        line.split("=", 1) for line in (generated_secrets / "meddream.env").read_text().splitlines()
    )
    assert users["RegisteredUsers"] == {env["ORTHANC_USER"]: env["ORTHANC_PWD"]}
    assert (generated_secrets / "previous_secret_keys").read_text() == ""


def test_generated_keys_are_long_and_distinct(generated_secrets: Path) -> None:
    keys = {
        name: (generated_secrets / name).read_text().strip()
        for name in ("secret_key", "anonymization_key")
    }
    for name, key in keys.items():
        # CommonSettings refuses an ANONYMIZATION_KEY under 32 bytes.
        assert len(key.encode()) >= 32, name
    assert keys["secret_key"] != keys["anonymization_key"]


def test_generator_adds_the_anonymization_key_to_an_older_deployment(tmp_path: Path) -> None:
    # A docker/secrets/ made before anonymized shares existed: only the key is added.
    assert generate_secrets(tmp_path).returncode == 0
    os.remove(tmp_path / "anonymization_key")
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    result = generate_secrets(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "created  anonymization key: anonymization_key" in result.stdout
    after = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert after.pop("anonymization_key")
    assert after == before


def test_generator_keeps_existing_files(tmp_path: Path) -> None:
    assert generate_secrets(tmp_path).returncode == 0
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    again = generate_secrets(tmp_path)
    assert again.returncode == 0
    assert "created" not in again.stdout
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before


def test_generator_refuses_to_complete_half_a_group(tmp_path: Path) -> None:
    # Filling in only the missing half would leave two files that no longer match.
    assert generate_secrets(tmp_path).returncode == 0
    os.remove(tmp_path / "database_url")
    kept = (tmp_path / "share_db_password").read_text()
    result = generate_secrets(tmp_path)
    assert result.returncode != 0
    assert "database_url" in result.stderr
    assert not (tmp_path / "database_url").exists()
    assert (tmp_path / "share_db_password").read_text() == kept


def test_generator_fills_in_a_whole_missing_group(tmp_path: Path) -> None:
    assert generate_secrets(tmp_path).returncode == 0
    key = (tmp_path / "secret_key").read_text()
    for name in ("token_service_users.json", "orthanc_admin_token_service.json"):
        os.remove(tmp_path / name)
    result = generate_secrets(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "created  admin Orthanc -> token service" in result.stdout
    assert (tmp_path / "secret_key").read_text() == key

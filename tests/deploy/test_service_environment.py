"""What compose hands our services is exactly what their settings classes read.

The names come from the settings classes themselves (`model_fields`), so a renamed or
new setting shows up here without anyone keeping a list.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from share_landing.settings import Settings as LandingSettings
from tests.deploy.compose import Compose, Service, interpolate, load_compose
from token_service.settings import Settings as TokenServiceSettings

PUBLIC_URL = "https://share.example.org"
SETTINGS: dict[str, type[BaseSettings]] = {
    "token-service": TokenServiceSettings,
    "share-landing": LandingSettings,
}
# Values that must never sit in `environment:` (visible in `docker inspect`).
SECRET_SETTINGS = {
    "SECRET_KEY",
    "PREVIOUS_SECRET_KEYS",
    "DATABASE_URL",
    "USERS",
    "VALIDATION_USERS",
}


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


def setting_names(cls: type[BaseSettings]) -> dict[str, bool]:
    """Environment (and /run/secrets file) name of each field -> whether it is required."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    names = {}
    for field_name, info in cls.model_fields.items():
        alias = info.validation_alias or info.alias
        if alias is not None and not isinstance(alias, str):
            raise AssertionError(f"{cls.__name__}.{field_name}: alias kind not handled here")
        name = alias or prefix + field_name
        names[name.upper()] = info.is_required()
    return names


def provided_names(service: Service) -> set[str]:
    """Variables the container gets: `environment:` keys and secret file names."""
    return set(service.environment()) | set(service.secrets().values())


@pytest.mark.parametrize("service_name", sorted(SETTINGS))
def test_compose_sets_only_variables_the_service_reads(compose: Compose, service_name: str) -> None:
    reads = setting_names(SETTINGS[service_name])
    unknown = provided_names(compose.service(service_name)) - set(reads)
    assert not unknown, f"{service_name} does not read {sorted(unknown)}"


@pytest.mark.parametrize("service_name", sorted(SETTINGS))
def test_compose_sets_every_required_variable(compose: Compose, service_name: str) -> None:
    required = {
        name for name, is_required in setting_names(SETTINGS[service_name]).items() if is_required
    }
    missing = required - provided_names(compose.service(service_name))
    assert not missing, f"{service_name} needs {sorted(missing)}"


@pytest.mark.parametrize("service_name", sorted(SETTINGS))
def test_secrets_are_files_not_environment(compose: Compose, service_name: str) -> None:
    service = compose.service(service_name)
    assert not SECRET_SETTINGS & set(service.environment())
    reads = setting_names(SETTINGS[service_name])
    assert {name for name in SECRET_SETTINGS if name in reads} <= set(service.secrets().values())


def test_anonymizer_placeholder_sets_nothing(compose: Compose) -> None:
    # Its settings do not exist yet: nothing may be set that no code reads.
    anonymizer = compose.service("anonymizer")
    assert anonymizer.environment() == {}
    assert anonymizer.secrets() == {}


def run_secrets_of(compose: Compose, service: Service, generated: Path, target: Path) -> Path:
    """/run/secrets of `service` as Docker would mount it, from generated files."""
    target.mkdir()
    files = compose.secret_files()
    for source, name in service.secrets().items():
        shutil.copy(generated / Path(files[source]).name, target / name)
    return target


@pytest.mark.parametrize("service_name", sorted(SETTINGS))
def test_settings_load_from_what_compose_provides(
    compose: Compose,
    service_name: str,
    generated_secrets: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = compose.service(service_name)
    for name, value in service.environment().items():
        if value is not None:  # pass-through entries stay unset on a fresh deployment
            monkeypatch.setenv(name, interpolate(value, {"PUBLIC_URL": PUBLIC_URL}))
    secrets_dir = run_secrets_of(compose, service, generated_secrets, tmp_path / "run-secrets")

    settings = SETTINGS[service_name](_secrets_dir=secrets_dir)

    dumped = settings.model_dump()
    assert dumped["public_orthanc_root"] == f"{PUBLIC_URL}/shares/"
    assert dumped["public_landing_root"] == f"{PUBLIC_URL}/welcome/"
    assert dumped["previous_secret_keys"] == ()
    assert str(dumped["database_url"].get_secret_value()).startswith("postgresql://orthanc_share:")
    assert len(dumped["secret_key"].get_secret_value()) >= 32


def _credentials(path: Path) -> tuple[str, str]:
    section = json.loads(path.read_text())["Authorization"]
    return str(section["WebServiceUsername"]), str(section["WebServicePassword"])


def _secret_file(compose: Compose, service: str, target: str, generated: Path) -> Path:
    sources = {name: source for source, name in compose.service(service).secrets().items()}
    return generated / Path(compose.secret_files()[sources[target]]).name


def test_only_the_admin_orthanc_holds_share_creating_credentials(
    compose: Compose, generated_secrets: Path
) -> None:
    users = json.loads(
        _secret_file(compose, "token-service", "USERS", generated_secrets).read_text()
    )
    validators = json.loads(
        _secret_file(compose, "token-service", "VALIDATION_USERS", generated_secrets).read_text()
    )
    target = "token-service-credentials.json"

    admin_user, admin_password = _credentials(
        _secret_file(compose, "orthanc-admin", target, generated_secrets)
    )
    assert users == {admin_user: admin_password}

    for orthanc in ("orthanc-share", "orthanc-anon-share"):
        user, password = _credentials(_secret_file(compose, orthanc, target, generated_secrets))
        assert validators[user] == password
        assert user not in users

"""What compose hands our services is exactly what their settings classes read.

The names come from the settings classes themselves (`model_fields`), so a renamed or
new setting shows up here without anyone keeping a list.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pydantic_settings import BaseSettings

from anonymizer.settings import Settings as AnonymizerSettings
from share_landing.settings import Settings as LandingSettings
from shared.models import ShareRequest
from shared.settings import MIN_SECRET_BYTES
from tests.deploy.compose import REPO, Compose, Service, interpolate, load_compose
from token_service.settings import Settings as TokenServiceSettings

PUBLIC_URL = "https://share.example.org"
SETTINGS: dict[str, type[BaseSettings]] = {
    "token-service": TokenServiceSettings,
    "share-landing": LandingSettings,
    "anonymizer": AnonymizerSettings,
}
# Values that must never sit in `environment:` (visible in `docker inspect`).
SECRET_SETTINGS = {
    "SECRET_KEY",
    "PREVIOUS_SECRET_KEYS",
    "ANONYMIZATION_KEY",
    "DATABASE_URL",
    "USERS",
    "VALIDATION_USERS",
}
# Secrets a service's settings class can read (inherited from CommonSettings) but that
# its code never uses: not handed to it, least privilege.  The anonymizer keeps no
# revocation list; the anonymized Orthanc's plugin asks the token service instead.
UNUSED_SECRETS = {"anonymizer": {"DATABASE_URL"}}


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
    needed = {name for name in SECRET_SETTINGS if name in reads}
    needed -= UNUSED_SECRETS.get(service_name, set())
    assert needed <= set(service.secrets().values())


def test_anonymizer_gets_no_database_credentials(compose: Compose) -> None:
    # If the anonymizer ever reads revocations itself, it needs DATABASE_URL: this
    # fails, and the secret must then be added to its compose entry.
    sources = "\n".join(p.read_text() for p in (REPO / "anonymizer").glob("*.py"))
    for word in ("database_url", "revocation"):
        assert word not in sources.lower(), word
    anonymizer = compose.service("anonymizer")
    assert "DATABASE_URL" not in provided_names(anonymizer)
    assert "database_url" not in anonymizer.secrets()


def test_anonymizer_forwards_to_the_anonymized_orthanc_over_the_backend(compose: Compose) -> None:
    anonymizer = compose.service("anonymizer")
    assert anonymizer.spec["command"] == [
        "orthanc-share", "serve", "anonymizer", "--host", "0.0.0.0", "--port", "8000"
    ]  # fmt: skip
    upstream = urlsplit(str(anonymizer.environment()["ANONYMIZED_ORTHANC_URL"]))
    assert upstream.scheme == "http"
    assert upstream.hostname == "orthanc-anon-share"
    assert upstream.port == 8042
    orthanc = compose.service(upstream.hostname)
    assert set(orthanc.networks()) & set(anonymizer.networks())
    assert anonymizer.depends_on()[upstream.hostname]["condition"] == "service_healthy"
    assert anonymizer.profiles == orthanc.profiles == ["anonymized"]


def test_the_three_services_share_one_anonymization_key(compose: Compose) -> None:
    # The token service and the landing name the pseudonymous study in the link, the
    # anonymizer maps it back: one key, from one file.
    files = compose.secret_files()
    sources = set()
    for name in ("token-service", "share-landing", "anonymizer"):
        by_target = {t: s for s, t in compose.service(name).secrets().items()}
        sources.add(files[by_target["ANONYMIZATION_KEY"]])
    assert sources == {"./docker/secrets/anonymization_key"}


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
    assert dumped["previous_secret_keys"] == ()
    assert len(dumped["secret_key"].get_secret_value()) >= MIN_SECRET_BYTES
    key = dumped["anonymization_key"].get_secret_value()
    assert key == (generated_secrets / "anonymization_key").read_text().strip()
    assert len(key.encode()) >= MIN_SECRET_BYTES
    if service_name == "anonymizer":
        assert dumped["anonymized_orthanc_url"] == "http://orthanc-anon-share:8042"
        assert dumped["database_url"] is None
        return
    assert dumped["public_orthanc_root"] == f"{PUBLIC_URL}/shares/"
    assert dumped["public_landing_root"] == f"{PUBLIC_URL}/welcome/"
    # Pass-through: unset until the operator enables anonymized shares in .env.
    assert dumped["public_anonymized_orthanc_root"] is None
    assert str(dumped["database_url"].get_secret_value()).startswith("postgresql://orthanc_share:")


@pytest.mark.parametrize("service_name", ["token-service", "share-landing"])
def test_anonymized_links_name_the_anonymizer_once_enabled_in_env(
    compose: Compose,
    service_name: str,
    generated_secrets: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What docs/deployment.md tells the operator to put into .env with the profile.
    dotenv = {
        "PUBLIC_URL": PUBLIC_URL,
        "PUBLIC_ANONYMIZED_ORTHANC_ROOT": f"{PUBLIC_URL}/anon-shares/",
    }
    service = compose.service(service_name)
    for name, value in service.environment().items():
        final = dotenv.get(name) if value is None else interpolate(value, dotenv)
        if final is not None:
            monkeypatch.setenv(name, final)
    secrets_dir = run_secrets_of(compose, service, generated_secrets, tmp_path / "run-secrets")
    settings = SETTINGS[service_name](_secrets_dir=secrets_dir)
    assert isinstance(settings, TokenServiceSettings | LandingSettings)

    request = ShareRequest.model_validate(
        {
            "studies": [{"dicom-uid": "1.2.3.4", "orthanc-id": "0195f13e-4afe6822-8b494cc4"}],
            "anonymized": True,
            "type": "stone-viewer-publication",
        }
    )
    token, share = settings.token_codec().encode(request)
    link = settings.viewer_link(share, token)
    assert link is not None
    assert link.startswith(f"{PUBLIC_URL}/anon-shares/stone-webviewer/index.html?")
    assert "1.2.3.4" not in link  # the pseudonym, never the real UID


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

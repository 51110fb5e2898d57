"""Settings common to the services, read through the services' own classes."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import pytest
from pydantic import ValidationError

from share_landing.settings import Settings as LandingSettings
from shared.errors import ConfigurationError
from shared.settings import MIN_SECRET_BYTES, CommonSettings, load_settings
from tests.factories import SECRET
from token_service.settings import Settings as TokenServiceSettings

SERVICES = [TokenServiceSettings, LandingSettings]
FILE_KEY = "key-from-the-secrets-file-0123456789abcdef"
ENV_KEY = "key-from-the-environment-0123456789abcdef"


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    return directory


def configuration_error(cls: type[CommonSettings], secrets_dir: Path | None) -> str:
    """The message of the ConfigurationError that loading raises; checks it is one line."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(cls, secrets_dir=secrets_dir)
    message = str(caught.value)
    assert "\n" not in message
    return message


def full_report(cls: type[CommonSettings], secrets_dir: Path | None) -> str:
    """Everything a traceback of the loading error would print."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(cls, secrets_dir=secrets_dir)
    return "".join(traceback.format_exception(caught.value))


# --- where values come from -------------------------------------------------------------


@pytest.mark.parametrize("cls", SERVICES)
def test_secrets_file_wins_over_the_environment(
    cls: type[CommonSettings], secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (secrets_dir / "SECRET_KEY").write_text(FILE_KEY + "\n")
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)

    settings = load_settings(cls, secrets_dir=secrets_dir)

    assert settings.secret_key.get_secret_value() == FILE_KEY  # and stripped


@pytest.mark.parametrize("cls", SERVICES)
def test_environment_is_used_without_a_secrets_file(
    cls: type[CommonSettings], secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)

    settings = load_settings(cls, secrets_dir=secrets_dir)

    assert settings.secret_key.get_secret_value() == ENV_KEY


def test_missing_secrets_dir_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)

    settings = load_settings(TokenServiceSettings, secrets_dir=tmp_path / "absent")

    assert settings.secret_key.get_secret_value() == ENV_KEY


def test_any_setting_can_come_from_a_secrets_file(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (secrets_dir / "SECRET_KEY").write_text(FILE_KEY)
    (secrets_dir / "USERS").write_text('{"share-user": "file-password"}\n')
    (secrets_dir / "DATABASE_URL").write_text("postgresql://u:file-db-password@db/shares\n")
    monkeypatch.setenv("USERS", '{"share-user": "env-password"}')

    settings = load_settings(TokenServiceSettings, secrets_dir=secrets_dir)

    assert settings.users["share-user"].get_secret_value() == "file-password"
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://u:file-db-password@db/shares"


@pytest.mark.parametrize("cls", SERVICES)
def test_missing_secret_key_is_a_configuration_error(
    cls: type[CommonSettings], secrets_dir: Path
) -> None:
    message = configuration_error(cls, secrets_dir)

    assert "SECRET_KEY" in message


@pytest.mark.parametrize("cls", SERVICES)
def test_empty_environment_values_are_ignored(
    cls: type[CommonSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)
    for name in (
        "PUBLIC_ORTHANC_ROOT",
        "PUBLIC_LANDING_ROOT",
        "PUBLIC_MEDDREAM_ROOT",
        "MEDDREAM_TOKEN_SERVICE_URL",
        "DATABASE_URL",
        "PREVIOUS_SECRET_KEYS",
        "REVOCATION_REFRESH_SECONDS",
    ):
        monkeypatch.setenv(name, "")

    settings = load_settings(cls, secrets_dir=None)

    assert settings.public_orthanc_root is None
    assert settings.public_landing_root is None
    assert settings.database_url is None
    assert settings.previous_secret_keys == ()
    assert settings.revocation_refresh_seconds == 5.0
    assert not settings.meddream_enabled


def test_empty_users_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)
    monkeypatch.setenv("USERS", "")
    monkeypatch.setenv("VALIDATION_USERS", "")

    settings = load_settings(TokenServiceSettings, secrets_dir=None)

    assert settings.users == {}
    assert not settings.basic_auth().enabled


def test_empty_secret_key_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "")

    assert "SECRET_KEY" in configuration_error(TokenServiceSettings, None)


# --- previous keys ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("old-1", ["old-1"]),
        ("old-1,old-2", ["old-1", "old-2"]),
        ("old-1\nold-2\n", ["old-1", "old-2"]),
        (" old-1 , old-2 ,\n old-3\n\n", ["old-1", "old-2", "old-3"]),
        (",,\n", []),
    ],
)
def test_previous_secret_keys_are_comma_or_newline_separated(
    value: str, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)
    monkeypatch.setenv("PREVIOUS_SECRET_KEYS", value)

    settings = load_settings(LandingSettings, secrets_dir=None)

    assert [key.get_secret_value() for key in settings.previous_secret_keys] == expected


def test_previous_secret_keys_from_a_secrets_file(secrets_dir: Path) -> None:
    (secrets_dir / "SECRET_KEY").write_text(FILE_KEY)
    (secrets_dir / "PREVIOUS_SECRET_KEYS").write_text("old-1\nold-2\n")

    settings = load_settings(TokenServiceSettings, secrets_dir=secrets_dir)

    assert settings.signing_keys() == (FILE_KEY.encode(), b"old-1", b"old-2")


# --- public roots -----------------------------------------------------------------------

ROOTS = [
    "PUBLIC_ORTHANC_ROOT",
    "PUBLIC_ANONYMIZED_ORTHANC_ROOT",
    "PUBLIC_LANDING_ROOT",
    "PUBLIC_MEDDREAM_ROOT",
]


@pytest.mark.parametrize("name", ROOTS)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://pacs.example.org/shares", "https://pacs.example.org/shares/"),
        ("https://pacs.example.org/shares/", "https://pacs.example.org/shares/"),
        ("http://localhost:8042", "http://localhost:8042/"),
        ("http://localhost:8042/", "http://localhost:8042/"),
    ],
)
def test_public_roots_get_a_trailing_slash(
    name: str, value: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)
    monkeypatch.setenv(name, value)

    settings = load_settings(TokenServiceSettings, secrets_dir=None)

    assert getattr(settings, name.lower()) == expected


@pytest.mark.parametrize("name", ROOTS)
@pytest.mark.parametrize(
    "value",
    [
        "ftp://pacs.example.org/shares/",
        "pacs.example.org/shares/",
        "/shares/",
        "javascript:alert(1)",
        "https://",
        "https://pacs.example.org/shares/?token=abc",
        "https://pacs.example.org/shares/#section",
    ],
)
def test_public_roots_reject_non_http_and_query_urls(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)
    monkeypatch.setenv(name, value)

    message = configuration_error(TokenServiceSettings, None)

    assert name in message


def test_meddream_token_service_url_is_used_verbatim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)
    monkeypatch.setenv("MEDDREAM_TOKEN_SERVICE_URL", "http://meddream:8088/v3/generate")
    monkeypatch.setenv("PUBLIC_MEDDREAM_ROOT", "https://pacs.example.org/meddream")

    settings = load_settings(LandingSettings, secrets_dir=None)

    assert settings.meddream_token_service_url == "http://meddream:8088/v3/generate"
    assert settings.public_meddream_root == "https://pacs.example.org/meddream/"
    assert settings.meddream_enabled


def test_meddream_token_service_url_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)
    monkeypatch.setenv("MEDDREAM_TOKEN_SERVICE_URL", "meddream:8088/v3/generate")

    assert "MEDDREAM_TOKEN_SERVICE_URL" in configuration_error(LandingSettings, None)


# --- errors never repeat values ---------------------------------------------------------


@pytest.mark.parametrize(
    "users",
    [
        '{"share-user": "hunter2-password"',  # not JSON
        '{"share-user": hunter2-password}',  # not JSON
        '["share-user", "hunter2-password"]',  # not an object
        '{"share-user": ["hunter2-password"]}',  # not a string password
    ],
)
@pytest.mark.parametrize("name", ["USERS", "VALIDATION_USERS"])
def test_bad_users_error_names_the_variable_not_the_password(
    name: str, users: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)
    monkeypatch.setenv(name, users)

    message = configuration_error(TokenServiceSettings, None)

    assert name in message
    assert "hunter2" not in message
    assert "hunter2" not in full_report(TokenServiceSettings, None)


@pytest.mark.parametrize(
    "root",
    [
        "ftp://operator:root-password@pacs.example.org/shares/",
        "https://pacs.example.org/shares/?token=root-password",
    ],
)
def test_bad_root_error_does_not_repeat_the_value(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)
    monkeypatch.setenv("PUBLIC_LANDING_ROOT", root)

    message = configuration_error(LandingSettings, None)

    assert "PUBLIC_LANDING_ROOT" in message
    assert "root-password" not in message
    assert "pacs.example.org" not in message
    assert "root-password" not in full_report(LandingSettings, None)


@pytest.mark.parametrize("cls", SERVICES)
def test_settings_built_directly_do_not_repeat_bad_values(cls: type[CommonSettings]) -> None:
    # Tests and factories build the classes without load_settings: a ValidationError
    # printed there must not show the value either.
    with pytest.raises(ValidationError) as caught:
        cls(
            secret_key=ENV_KEY,
            public_orthanc_root="ftp://operator:root-password@pacs.example.org/",
            _secrets_dir=None,
        )

    assert "PUBLIC_ORTHANC_ROOT" in str(caught.value).upper()
    assert "root-password" not in str(caught.value)


def test_every_wrong_variable_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_ORTHANC_ROOT", "ftp://x/")
    monkeypatch.setenv("VALIDATION_CACHE_SECONDS", "-1")
    monkeypatch.setenv("MEDDREAM_TIMEOUT_SECONDS", "soon")

    message = configuration_error(TokenServiceSettings, None)

    for name in (
        "SECRET_KEY",
        "PUBLIC_ORTHANC_ROOT",
        "VALIDATION_CACHE_SECONDS",
        "MEDDREAM_TIMEOUT_SECONDS",
    ):
        assert name in message
    assert "soon" not in message


def test_secret_values_are_not_shown_by_repr(secrets_dir: Path) -> None:
    (secrets_dir / "SECRET_KEY").write_text(FILE_KEY)
    (secrets_dir / "DATABASE_URL").write_text("postgresql://u:db-password@db/shares")

    settings = load_settings(TokenServiceSettings, secrets_dir=secrets_dir)

    assert FILE_KEY not in repr(settings)
    assert "db-password" not in repr(settings)


# --- weak keys --------------------------------------------------------------------------


def weak_key_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "shared.settings" and record.levelno == logging.WARNING
    ]


def test_weak_secret_key_warns_without_the_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    weak = "short-key-31-bytes-long-0123456"
    assert len(weak) == MIN_SECRET_BYTES - 1
    monkeypatch.setenv("SECRET_KEY", weak)
    settings = load_settings(TokenServiceSettings, secrets_dir=None)

    with caplog.at_level(logging.WARNING, logger="shared.settings"):
        settings.warn_about_weak_settings()

    records = weak_key_warnings(caplog)
    assert len(records) == 1
    assert "SECRET_KEY" in records[0].getMessage()
    assert weak not in caplog.text


def test_weak_previous_key_warns_without_the_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SECRET_KEY", SECRET + "-long-enough")
    monkeypatch.setenv("PREVIOUS_SECRET_KEYS", f"{SECRET},tiny-old-key")
    settings = load_settings(LandingSettings, secrets_dir=None)

    with caplog.at_level(logging.WARNING, logger="shared.settings"):
        settings.warn_about_weak_settings()

    records = weak_key_warnings(caplog)
    assert len(records) == 1
    assert "PREVIOUS_SECRET_KEYS" in records[0].getMessage()
    assert "tiny-old-key" not in caplog.text


def test_key_length_is_counted_in_bytes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SECRET_KEY", "é" * (MIN_SECRET_BYTES // 2))  # 16 characters, 32 bytes
    settings = load_settings(TokenServiceSettings, secrets_dir=None)

    with caplog.at_level(logging.WARNING, logger="shared.settings"):
        settings.warn_about_weak_settings()

    assert weak_key_warnings(caplog) == []


def test_strong_keys_do_not_warn(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SECRET_KEY", "k" * MIN_SECRET_BYTES)
    monkeypatch.setenv("PREVIOUS_SECRET_KEYS", SECRET)
    settings = load_settings(TokenServiceSettings, secrets_dir=None)

    with caplog.at_level(logging.WARNING, logger="shared.settings"):
        settings.warn_about_weak_settings()

    assert weak_key_warnings(caplog) == []


# --- derived values ---------------------------------------------------------------------


def test_signing_keys_put_the_current_key_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "current")
    monkeypatch.setenv("PREVIOUS_SECRET_KEYS", "older,oldest")

    settings = load_settings(TokenServiceSettings, secrets_dir=None)

    assert settings.signing_keys() == (b"current", b"older", b"oldest")


def test_orthanc_root_depends_on_anonymization(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)
    monkeypatch.setenv("PUBLIC_ORTHANC_ROOT", "https://pacs.example.org/shares")
    monkeypatch.setenv("PUBLIC_ANONYMIZED_ORTHANC_ROOT", "https://pacs.example.org/anon")

    settings = load_settings(LandingSettings, secrets_dir=None)

    assert settings.orthanc_root(anonymized=False) == "https://pacs.example.org/shares/"
    assert settings.orthanc_root(anonymized=True) == "https://pacs.example.org/anon/"


def test_settings_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", ENV_KEY)
    settings = load_settings(TokenServiceSettings, secrets_dir=None)

    with pytest.raises(ValueError):
        settings.server_identifier = "changed"  # type: ignore[misc]

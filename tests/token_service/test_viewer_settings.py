"""The settings of this issue, read from the environment as operators write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from share_landing.settings import Settings as LandingSettings
from shared.errors import ConfigurationError
from shared.settings import CommonSettings, load_settings
from shared.urls import OhifDataSource
from tests.factories import SECRET
from token_service.settings import Settings as TokenServiceSettings

SERVICES = [TokenServiceSettings, LandingSettings]


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", SECRET)


@pytest.mark.parametrize("cls", SERVICES)
def test_ohif_defaults(cls: type[CommonSettings]) -> None:
    settings = load_settings(cls, secrets_dir=None)
    assert settings.public_ohif_root is None
    assert settings.ohif_data_source is OhifDataSource.DICOM_WEB


@pytest.mark.parametrize("cls", SERVICES)
def test_ohif_from_the_environment(
    cls: type[CommonSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLIC_OHIF_ROOT", "https://pacs.example.org/ohif")
    monkeypatch.setenv("OHIF_DATA_SOURCE", "dicom-json")
    settings = load_settings(cls, secrets_dir=None)
    assert settings.public_ohif_root == "https://pacs.example.org/ohif/"
    assert settings.ohif_data_source is OhifDataSource.DICOM_JSON


@pytest.mark.parametrize("cls", SERVICES)
def test_anonymized_ohif_root_from_the_environment(
    cls: type[CommonSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(cls, secrets_dir=None).public_anonymized_ohif_root is None
    monkeypatch.setenv("PUBLIC_ANONYMIZED_OHIF_ROOT", "https://pacs.example.org/anon-ohif")
    settings = load_settings(cls, secrets_dir=None)
    assert settings.public_anonymized_ohif_root == "https://pacs.example.org/anon-ohif/"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OHIF_DATA_SOURCE", "dicomweb"),
        ("PUBLIC_OHIF_ROOT", "pacs.example.org/ohif"),
        ("PUBLIC_OHIF_ROOT", "https://pacs.example.org/ohif/?x=1"),
        ("PUBLIC_ANONYMIZED_OHIF_ROOT", "pacs.example.org/anon-ohif"),
        ("PUBLIC_LANDING_ROOT", "ftp://pacs.example.org/welcome"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as error:
        load_settings(TokenServiceSettings, secrets_dir=None)
    assert f"invalid configuration: {name}: " in str(error.value)
    assert value not in str(error.value)


@pytest.mark.parametrize(
    ("configured", "read"),
    [
        # OE2's token landing page: a page, `?token=` is appended to it.
        (
            "https://pacs.example.org/shares/ui/app/token-landing.html",
            "https://pacs.example.org/shares/ui/app/token-landing.html",
        ),
        ("https://pacs.example.org/welcome", "https://pacs.example.org/welcome/"),
        ("https://pacs.example.org/welcome/", "https://pacs.example.org/welcome/"),
        ("https://pacs.example.org", "https://pacs.example.org/"),
        ("https://pacs.example.org/v1.2/welcome", "https://pacs.example.org/v1.2/welcome/"),
    ],
)
def test_landing_root_may_name_a_page(
    monkeypatch: pytest.MonkeyPatch, configured: str, read: str
) -> None:
    monkeypatch.setenv("PUBLIC_LANDING_ROOT", configured)
    assert load_settings(TokenServiceSettings, secrets_dir=None).public_landing_root == read


def test_anonymous_profile_file_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "anonymous-profile.json"
    path.write_text('{"name": "Guest"}')
    monkeypatch.setenv("ANONYMOUS_PROFILE_FILE", str(path))
    settings = load_settings(TokenServiceSettings, secrets_dir=None)
    assert settings.anonymous_profile_file == path
    assert settings.anonymous_profile().name == "Guest"

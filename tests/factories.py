"""Small builders of settings, requests and tokens for tests."""

from __future__ import annotations

from typing import Any

from share_landing.settings import Settings as LandingSettings
from token_service.settings import Settings as TokenServiceSettings

SECRET = "test-secret-key-that-is-long-enough-0123456789"
ANONYMIZATION_KEY = "test-anonymization-key-long-enough-0123456789"
STUDY_UID = "1.2.840.113619.2.55.3.1"
STUDY_ID = "0195f13e-4afe6822-8b494cc4-5162c50d-0daf66aa"


def token_service_settings(**overrides: Any) -> TokenServiceSettings:
    """Token-service settings for tests; nothing is read from the environment or files."""
    values: dict[str, Any] = {
        "secret_key": SECRET,
        "public_orthanc_root": "https://pacs.example.org/shares/",
        "public_landing_root": "https://pacs.example.org/welcome/",
        "server_identifier": "standard-server-id",
        "anonymization_key": ANONYMIZATION_KEY,
        "_secrets_dir": None,
    }
    values.update(overrides)
    return TokenServiceSettings(**values)


def landing_settings(**overrides: Any) -> LandingSettings:
    """Landing settings for tests."""
    values: dict[str, Any] = {
        "secret_key": SECRET,
        "public_orthanc_root": "https://pacs.example.org/shares/",
        "anonymization_key": ANONYMIZATION_KEY,
        "_secrets_dir": None,
    }
    values.update(overrides)
    return LandingSettings(**values)


def share_body(**overrides: Any) -> dict[str, Any]:
    """A `PUT /shares` body as Orthanc Explorer 2 0.6 sends it."""
    body: dict[str, Any] = {
        "id": None,
        "studies": [{"dicom-uid": STUDY_UID, "orthanc-id": STUDY_ID}],
        "anonymized": False,
        "type": "stone-viewer-publication",
        "expiration-date": "2099-02-10T14:12:33.123Z",
    }
    body.update(overrides)
    return body


def token_body(**overrides: Any) -> dict[str, Any]:
    """A `PUT /tokens/{type}` body as the authorization plugin 0.10+ forwards OE2 0.7's."""
    body: dict[str, Any] = {
        "resources": [{"dicom-uid": STUDY_UID, "orthanc-id": STUDY_ID, "level": "study"}],
        "type": "stone-viewer-publication",
        "validity-duration": 15 * 24 * 3600,
        "server-id": "admin-server-id",
    }
    body.update(overrides)
    return body

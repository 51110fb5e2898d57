"""Fixtures and builders for the anonymizer's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from anonymizer.settings import Settings
from shared.models import Share, ShareRequest
from shared.pseudonyms import Pseudonymizer
from shared.tokens import TokenCodec
from tests.factories import SECRET

ANONYMIZATION_KEY = "anonymization-key-for-tests-0123456789abcdef"
UPSTREAM = "http://orthanc-anon:8042"
STUDY_UID = "1.2.840.113619.2.55.3.1"
STUDY_ID = "0195f13e-4afe6822-8b494cc4-5162c50d-0daf66aa"


@pytest.fixture(autouse=True)
def clean_anonymizer_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No anonymizer variable from the caller's environment reaches a test."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    yield


def anonymizer_settings(**overrides: Any) -> Settings:
    """Anonymizer settings for tests; nothing is read from the environment or files."""
    values: dict[str, Any] = {
        "secret_key": SECRET,
        "anonymization_key": ANONYMIZATION_KEY,
        "anonymized_orthanc_url": UPSTREAM,
        "_secrets_dir": None,
    }
    values.update(overrides)
    return Settings(**values)


def mint(**overrides: Any) -> tuple[str, Share]:
    """A share token (anonymized Stone share of STUDY_UID/STUDY_ID unless overridden)."""
    body: dict[str, Any] = {
        "studies": [{"dicom-uid": STUDY_UID, "orthanc-id": STUDY_ID}],
        "anonymized": True,
        "type": "stone-viewer-publication",
        "expiration-date": "2099-01-01T00:00:00Z",
    }
    body.update(overrides)
    return TokenCodec([SECRET.encode()], anonymization_key=ANONYMIZATION_KEY.encode()).encode(
        ShareRequest.model_validate(body)
    )


def pseudonymizer(scope: str = "share-1") -> Pseudonymizer:
    """A pseudonymizer with the tests' key."""
    return Pseudonymizer(ANONYMIZATION_KEY.encode(), scope)

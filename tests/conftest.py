"""Fixtures shared by every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from anonymizer.settings import Settings as AnonymizerSettings
from share_landing.settings import Settings as LandingSettings
from shared.settings import CommonSettings
from token_service.settings import Settings as TokenServiceSettings

pytest_plugins = ["tests.postgres"]


def _setting_names() -> set[str]:
    names: set[str] = set()
    for cls in (CommonSettings, TokenServiceSettings, LandingSettings, AnonymizerSettings):
        names.update(name.upper() for name in cls.model_fields)
    return names


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without any orthanc-share variable from the caller's environment."""
    for name in _setting_names():
        monkeypatch.delenv(name, raising=False)
    yield

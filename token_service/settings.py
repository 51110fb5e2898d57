"""Configuration of the token service."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from shared.auth import BasicAuth
from shared.grants import GrantPolicy
from shared.profiles import AnonymousProfile, load_anonymous_profile
from shared.settings import CommonSettings

__all__ = ["Settings"]


class Settings(CommonSettings):
    """Token service settings: common ones plus server identifiers and credentials."""

    server_identifier: str | None = None
    anonymized_server_identifier: str | None = None
    users: dict[str, SecretStr] = {}
    validation_users: dict[str, SecretStr] = {}
    validation_cache_seconds: int = Field(default=60, ge=0, le=3600)
    anonymous_profile_file: Path | None = None

    def basic_auth(self) -> BasicAuth:
        """The credential checker built from USERS and VALIDATION_USERS."""
        return BasicAuth(
            {name: pw.get_secret_value() for name, pw in self.users.items()},
            {name: pw.get_secret_value() for name, pw in self.validation_users.items()},
        )

    def grant_policy(self) -> GrantPolicy:
        """The part of the settings validation decisions depend on."""
        return GrantPolicy(
            server_identifier=self.server_identifier,
            anonymized_server_identifier=self.anonymized_server_identifier,
            max_validity=self.validation_cache_seconds,
        )

    def anonymous_profile(self) -> AnonymousProfile:
        """The profile of `/user/get-profile`; ConfigurationError if the file grants anything."""
        return load_anonymous_profile(self.anonymous_profile_file)

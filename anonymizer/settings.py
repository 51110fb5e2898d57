"""Configuration of the anonymizer."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import CommonSettings, HttpUrl

__all__ = ["Settings"]

MIB = 1024 * 1024


class Settings(CommonSettings):
    """Anonymizer settings: common ones (the token keys) plus the upstream and the key."""

    # Internal URL of the anonymized-share Orthanc (never its public one).
    anonymized_orthanc_url: HttpUrl
    # Keys the pseudonyms (at least 32 bytes, checked by CommonSettings); changing it
    # changes every UID and id of every anonymized share. Required here.
    anonymization_key: SecretStr
    upstream_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Read/write timeout of one upstream exchange (a large archive streams for a while).
    upstream_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    # Largest JSON or DICOM body read into memory to be rewritten.
    max_rewrite_bytes: int = Field(default=256 * MIB, ge=MIB)
    # Largest study archive rewritten (spooled to disk, not held in memory).
    max_archive_bytes: int = Field(default=4096 * MIB, ge=MIB)
    # How long the list of a shared study's series and instances is reused.
    resource_cache_seconds: float = Field(default=300.0, ge=0, le=86400)

    def upstream_root(self) -> str:
        """The upstream URL without a trailing slash, for joining absolute paths."""
        return self.anonymized_orthanc_url.rstrip("/")

    def key_bytes(self) -> bytes:
        """The anonymization key as bytes."""
        return self.anonymization_key.get_secret_value().encode()

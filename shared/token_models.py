"""Request and response models of the authorization plugin's `/tokens` API (plugin 0.5+).

Orthanc Explorer 2 0.7+ asks the plugin (`PUT /auth/tokens/{type}`), which forwards to
`PUT /tokens/{type}`; OE2's token landing page and the plugin's `/tools/find` override
call `POST /tokens/decode`. The shapes are those of orthanc-auth-service (protocol.md
§4.4, §4.5, §6.4). Both APIs mint the same token: a creation request becomes a
`ShareRequest`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from shared.errors import ShareRefusedError
from shared.models import MAX_STUDIES, ShareRequest, ShareType, StudyGrant, StudyRef, blank_to_none

__all__ = [
    "MAX_VALIDITY_DURATION",
    "DecoderErrorCode",
    "OrthancResource",
    "ResourceLevel",
    "TokenCreationRequest",
    "TokenCreationResponse",
    "TokenDecoderRequest",
    "TokenDecoderResponse",
]

# The longest `validity-duration` accepted: 10 years. The plugin may send an
# uninitialised value when OE2 gave none (protocol.md §4.5); anything longer is refused
# rather than read as a share that practically never expires.
MAX_VALIDITY_DURATION = 10 * 365 * 24 * 3600


class ResourceLevel(StrEnum):
    """Level of a resource named in a token request (the successor's `Levels`)."""

    PATIENT = "patient"
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"
    SYSTEM = "system"


class OrthancResource(BaseModel):
    """A resource of the `/tokens` API: ids, an optional URL and its level."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    dicom_uid: str | None = Field(default=None, alias="dicom-uid", max_length=128)
    orthanc_id: str | None = Field(default=None, alias="orthanc-id", max_length=128)
    url: str | None = Field(default=None, max_length=2048)
    level: ResourceLevel

    @field_validator("dicom_uid", "orthanc_id", "url", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return blank_to_none(value)

    @field_validator("level", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _has_an_id(self) -> OrthancResource:
        if self.dicom_uid is None and self.orthanc_id is None:
            raise ValueError("each resource needs a dicom-uid or an orthanc-id")
        return self

    @classmethod
    def of_study(cls, study: StudyGrant) -> OrthancResource:
        """A study of a verified token, as decode lists it (no URL: tokens carry none)."""
        return cls(
            dicom_uid=study.dicom_uid, orthanc_id=study.orthanc_id, level=ResourceLevel.STUDY
        )


class TokenCreationRequest(BaseModel):
    """Body of `PUT /tokens/{type}`, as the authorization plugin 0.5-0.11 sends it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    id: str | None = Field(default=None, max_length=256)
    resources: list[OrthancResource] = Field(min_length=1, max_length=MAX_STUDIES)
    type: str | None = Field(default=None, max_length=64)
    expiration_date: datetime | None = Field(default=None, alias="expiration-date")
    validity_duration: int | None = Field(default=None, alias="validity-duration")
    server_id: str | None = Field(default=None, alias="server-id", max_length=256)

    @field_validator("type", "expiration_date", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return blank_to_none(value)

    @field_validator("expiration_date")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # As for `PUT /shares`: a date without a zone is UTC.
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("validity_duration")
    @classmethod
    def _duration(cls, value: int | None) -> int | None:
        if value is None or value <= 0:
            # The plugin omits the field for "no duration"; 0 and below mean the same.
            return None
        if value > MAX_VALIDITY_DURATION:
            raise ValueError(
                f"validity-duration must be at most {MAX_VALIDITY_DURATION} seconds (10 years)"
            )
        return value

    @field_serializer("expiration_date")
    def _iso(self, value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    def expires(self, now: datetime) -> datetime | None:
        """When the token expires: the earlier of `expiration-date` and now + duration."""
        limits = [self.expiration_date] if self.expiration_date is not None else []
        if self.validity_duration is not None:
            limits.append(now + timedelta(seconds=self.validity_duration))
        return min(limits, default=None)

    def share_request(self, kind: ShareType, now: datetime) -> ShareRequest:
        """The share this request creates; ShareRefusedError for resources not studies.

        Every token type opens whole studies: Orthanc Explorer 2 resolves a series or an
        instance to its parent study before asking, so another level is a client error,
        refused rather than stored as an id that no validation would ever match.
        """
        for number, resource in enumerate(self.resources, start=1):
            if resource.level is not ResourceLevel.STUDY:
                raise ShareRefusedError(
                    f"{kind.value} tokens open whole studies: resource {number} has level "
                    f"{resource.level.value}; send its study instead"
                )
        return ShareRequest(
            id=self.id,
            studies=[
                StudyRef(dicom_uid=r.dicom_uid, orthanc_id=r.orthanc_id) for r in self.resources
            ],
            anonymized=False,
            type=kind,
            expiration_date=self.expires(now),
        )


class TokenCreationResponse(BaseModel):
    """Answer of `PUT /tokens/{type}`: the plugin reads `token` and `url` (null allowed)."""

    request: TokenCreationRequest
    token: str
    url: str | None


class TokenDecoderRequest(BaseModel):
    """Body of `POST /tokens/decode`; a value that is not a string counts as no token."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    token_key: str | None = Field(default=None, alias="token-key")
    token_value: str | None = Field(default=None, alias="token-value")

    @field_validator("token_key", "token_value", mode="before")
    @classmethod
    def _strings_only(cls, value: object) -> object:
        return value if isinstance(value, str) else None


class DecoderErrorCode(StrEnum):
    """Why a decoded token opens nothing (OE2's token landing shows its error page)."""

    EXPIRED = "expired"
    INVALID = "invalid"  # malformed, tampered, unknown key, revoked
    UNKNOWN = "unknown"  # a valid token the landing cannot send anywhere now


class TokenDecoderResponse(BaseModel):
    """Answer of `POST /tokens/decode`; every field is always present, null when unknown."""

    model_config = ConfigDict(populate_by_name=True)

    token_type: ShareType | None = Field(default=None, alias="token-type")
    error_code: DecoderErrorCode | None = Field(default=None, alias="error-code")
    redirect_url: str | None = Field(default=None, alias="redirect-url")
    resources: list[OrthancResource] = []

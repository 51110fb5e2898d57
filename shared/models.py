"""Request and response models of the share API, and the decoded form of a share token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

__all__ = [
    "CALLER_LINKED_TYPES",
    "MAX_STUDIES",
    "ORTHANC_VIEWER_TYPES",
    "Share",
    "ShareRequest",
    "ShareResponse",
    "ShareType",
    "StudyGrant",
    "StudyRef",
    "ValidationRequest",
    "ValidationResponse",
    "blank_to_none",
]

MAX_STUDIES = 1000


class ShareType(StrEnum):
    """Kinds of share; the value is what clients send and what tokens carry."""

    OSIMIS_VIEWER_PUBLICATION = "osimis-viewer-publication"
    STONE_VIEWER_PUBLICATION = "stone-viewer-publication"
    MEDDREAM_INSTANT_LINK = "meddream-instant-link"
    MEDDREAM_VIEWER_PUBLICATION = "meddream-viewer-publication"
    # Types of the plugin's /tokens API (orthanc-auth-service 23.3+, OE2 0.7+).
    OHIF_VIEWER_PUBLICATION = "ohif-viewer-publication"
    VOLVIEW_VIEWER_PUBLICATION = "volview-viewer-publication"
    VIEWER_INSTANT_LINK = "viewer-instant-link"
    DOWNLOAD_INSTANT_LINK = "download-instant-link"


# Types whose token is presented to Orthanc by a viewer (or a download): only these can
# be granted on validation. A MedDream publication is turned into a MedDream token by
# the landing and never reaches Orthanc's authorization plugin itself; a MedDream instant
# link is MedDream's own token.
ORTHANC_VIEWER_TYPES = frozenset(
    {
        ShareType.OSIMIS_VIEWER_PUBLICATION,
        ShareType.STONE_VIEWER_PUBLICATION,
        ShareType.OHIF_VIEWER_PUBLICATION,
        ShareType.VOLVIEW_VIEWER_PUBLICATION,
        ShareType.VIEWER_INSTANT_LINK,
        ShareType.DOWNLOAD_INSTANT_LINK,
    }
)

# Types whose link the caller builds itself (Orthanc Explorer 2 appends `?token=` to its
# own viewer or download link): creating one answers `url: null`.
CALLER_LINKED_TYPES = frozenset({ShareType.VIEWER_INSTANT_LINK, ShareType.DOWNLOAD_INSTANT_LINK})


def blank_to_none(value: object) -> object:
    """Read an empty or blank string as absent, as the plugin and OE2 send them."""
    return None if isinstance(value, str) and not value.strip() else value


class StudyRef(BaseModel):
    """One shared study, named by its DICOM StudyInstanceUID, its Orthanc id, or both."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    dicom_uid: str | None = Field(default=None, alias="dicom-uid", max_length=128)
    orthanc_id: str | None = Field(default=None, alias="orthanc-id", max_length=128)

    @field_validator("dicom_uid", "orthanc_id", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return blank_to_none(value)

    @model_validator(mode="after")
    def _has_an_id(self) -> StudyRef:
        if self.dicom_uid is None and self.orthanc_id is None:
            raise ValueError("each study needs a dicom-uid or an orthanc-id")
        return self


class ShareRequest(BaseModel):
    """Body of `PUT /shares` (OE2 0.4.3-0.6, scripts); `PUT /tokens/{type}` is turned into one."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: str | None = Field(default=None, max_length=256)
    studies: list[StudyRef] = Field(min_length=1, max_length=MAX_STUDIES)
    anonymized: bool = False
    type: ShareType
    expiration_date: datetime | None = Field(default=None, alias="expiration-date")

    @field_validator("expiration_date")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # A date without a zone is read as UTC (the original compared it with local time).
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    @field_serializer("expiration_date")
    def _iso(self, value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None


class ShareResponse(BaseModel):
    """Answer of `PUT /shares`: the echoed request, the token and the link to send."""

    request: ShareRequest
    token: str
    url: str | None


class ValidationRequest(BaseModel):
    """Body the Orthanc authorization plugin posts to the validation routes (0.2 to 0.11)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    dicom_uid: str | None = Field(default=None, alias="dicom-uid")
    orthanc_id: str | None = Field(default=None, alias="orthanc-id")
    level: str | None = None
    method: str | None = None
    uri: str | None = None
    token_key: str | None = Field(default=None, alias="token-key")
    token_value: str | None = Field(default=None, alias="token-value")
    identifier: str | None = None
    server_id: str | None = Field(default=None, alias="server-id")


class ValidationResponse(BaseModel):
    """What the plugin expects back: a grant and how many seconds it may cache it."""

    granted: bool
    validity: int = Field(ge=0)


@dataclass(frozen=True, slots=True)
class StudyGrant:
    """A study named in a verified token."""

    dicom_uid: str | None
    orthanc_id: str | None


@dataclass(frozen=True, slots=True)
class Share:
    """The verified content of a share token, whatever generation minted it."""

    type: ShareType
    studies: tuple[StudyGrant, ...]
    anonymized: bool
    expires_at: float | None
    share_id: str | None
    label: str | None
    revocation_key: str
    generation: str
    # Whether the real studies came sealed: the link then names pseudonyms only.
    sealed: bool = False

    def expired(self, now: float) -> bool:
        """Whether the share's expiry has passed at `now` (epoch seconds)."""
        return self.expires_at is not None and now >= self.expires_at

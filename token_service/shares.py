"""Creating shares: admission rules, token minting and the link returned to the client.

Both creation APIs end here: `PUT /shares` (v23.1, OE2 0.4.3-0.6) and `PUT /tokens/{type}`
(authorization plugin 0.5+, OE2 0.7+) admit the same `ShareRequest` and mint the same
token, so either API's tokens open on every route.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from shared.errors import ShareRefusedError
from shared.models import CALLER_LINKED_TYPES, Share, ShareRequest, ShareResponse, ShareType
from shared.urls import OhifDataSource, landing_url, meddream_url
from token_service.deps import Services
from token_service.settings import Settings

__all__ = ["Issued", "check_allowed", "create_share", "issue"]

logger = logging.getLogger(__name__)

_MEDDREAM_TYPES = (ShareType.MEDDREAM_INSTANT_LINK, ShareType.MEDDREAM_VIEWER_PUBLICATION)
# Types the anonymizer serves: what their viewers read is rewritten (anonymizer.routes).
_ANONYMIZED_TYPES = (
    ShareType.OSIMIS_VIEWER_PUBLICATION,
    ShareType.STONE_VIEWER_PUBLICATION,
    ShareType.OHIF_VIEWER_PUBLICATION,
)
# Types served by PUBLIC_ORTHANC_ROOT when not anonymized.
_ORTHANC_ROOT_TYPES = (
    ShareType.OSIMIS_VIEWER_PUBLICATION,
    ShareType.STONE_VIEWER_PUBLICATION,
    ShareType.VOLVIEW_VIEWER_PUBLICATION,
)


@dataclass(frozen=True, slots=True)
class Issued:
    """A minted share: its token, its link (None when the caller builds it) and its id."""

    token: str
    url: str | None
    share_id: str | None


def _needs_orthanc_ids(request: ShareRequest, settings: Settings) -> bool:
    """Whether the share's viewer opens studies by Orthanc id (else by StudyInstanceUID)."""
    kind = request.type
    if kind is ShareType.OHIF_VIEWER_PUBLICATION:
        # The anonymizer serves OHIF's DICOMweb data source only (not the OHIF plugin's
        # dicom-json route): anonymized OHIF shares open by StudyInstanceUID.
        dicom_json = settings.ohif_data_source is OhifDataSource.DICOM_JSON
        return dicom_json and not request.anonymized
    return kind in (ShareType.OSIMIS_VIEWER_PUBLICATION, ShareType.VOLVIEW_VIEWER_PUBLICATION)


def _check_anonymized_enabled(kind: ShareType, settings: Settings) -> None:
    if kind not in _ANONYMIZED_TYPES:
        raise ShareRefusedError(
            f"{kind.value} shares cannot be anonymized "
            "(anonymized shares open in the Stone viewer, OHIF or the Osimis viewer)"
        )
    if kind is ShareType.OHIF_VIEWER_PUBLICATION:
        root = ("PUBLIC_ANONYMIZED_OHIF_ROOT", settings.public_anonymized_ohif_root)
    else:
        root = ("PUBLIC_ANONYMIZED_ORTHANC_ROOT", settings.public_anonymized_orthanc_root)
    required = (
        root,
        ("ANONYMIZED_SERVER_IDENTIFIER", settings.anonymized_server_identifier),
        ("ANONYMIZATION_KEY", settings.anonymization_key),
    )
    for name, value in required:
        if value is None:
            raise ShareRefusedError(
                f"anonymized {kind.value} shares are not enabled ({name} is not set)"
            )


def _check_enabled(request: ShareRequest, settings: Settings) -> None:
    kind = request.type
    if request.anonymized:
        _check_anonymized_enabled(kind, settings)
    elif kind in _ORTHANC_ROOT_TYPES and settings.public_orthanc_root is None:
        raise ShareRefusedError(
            f"{kind.value} shares are not enabled (PUBLIC_ORTHANC_ROOT is not set)"
        )
    elif kind is ShareType.OHIF_VIEWER_PUBLICATION and settings.public_ohif_root is None:
        raise ShareRefusedError(
            f"{kind.value} shares are not enabled (PUBLIC_OHIF_ROOT is not set)"
        )


def check_allowed(request: ShareRequest, settings: Settings, now: float) -> None:
    """Raise ShareRefusedError, with a message for the client, if the share cannot work."""
    kind = request.type
    expires = request.expiration_date
    if expires is not None and kind is not ShareType.MEDDREAM_INSTANT_LINK:
        if expires.timestamp() <= now:
            raise ShareRefusedError("expiration-date is in the past")
    _check_enabled(request, settings)
    if kind in CALLER_LINKED_TYPES:
        # No link of ours: validation matches either id, and every study has one.
        return
    if _needs_orthanc_ids(request, settings):
        if any(s.orthanc_id is None for s in request.studies):
            raise ShareRefusedError(f"{kind.value} needs an orthanc-id for every study")
        if kind is ShareType.OHIF_VIEWER_PUBLICATION and len(request.studies) != 1:
            raise ShareRefusedError(
                f"{kind.value} opens one study with OHIF_DATA_SOURCE=dicom-json: share each "
                "study on its own, or use dicom-web"
            )
        return
    if any(s.dicom_uid is None for s in request.studies):
        raise ShareRefusedError(f"{kind.value} needs a dicom-uid for every study")
    if kind in _MEDDREAM_TYPES and not settings.meddream_enabled:
        raise ShareRefusedError(
            f"{kind.value} shares are not enabled "
            "(MEDDREAM_TOKEN_SERVICE_URL and PUBLIC_MEDDREAM_ROOT are not both set)"
        )
    if kind is ShareType.MEDDREAM_VIEWER_PUBLICATION and settings.public_landing_root is None:
        raise ShareRefusedError(
            "meddream-viewer-publication shares are not enabled (PUBLIC_LANDING_ROOT is not set)"
        )


def _link(share: Share, token: str, settings: Settings) -> str | None:
    if share.type in CALLER_LINKED_TYPES:
        return None
    if settings.public_landing_root is not None:
        return landing_url(settings.public_landing_root, token)
    return settings.viewer_link(share, token)


async def issue(request: ShareRequest, services: Services) -> Issued:
    """Admit a share request, mint its token and build its link."""
    settings = services.settings
    check_allowed(request, settings, time.time())
    if request.type is ShareType.MEDDREAM_INSTANT_LINK:
        # A MedDream token, minted by MedDream and valid as long as MedDream keeps it.
        assert services.meddream is not None and settings.public_meddream_root is not None
        uids = [s.dicom_uid or "" for s in request.studies]
        token = await services.meddream.create_token(uids)
        issued = Issued(token, meddream_url(settings.public_meddream_root, uids, token), None)
    else:
        token, share = services.codec.encode(request)
        issued = Issued(token, _link(share, token, settings), share.share_id)
    logger.info(
        "share created: id=%s type=%s studies=%d anonymized=%s expires=%s",
        issued.share_id or "-",
        request.type.value,
        len(request.studies),
        request.anonymized,
        request.expiration_date.isoformat() if request.expiration_date else "never",
    )
    return issued


async def create_share(request: ShareRequest, services: Services) -> ShareResponse:
    """Admit a `PUT /shares` request and return its token and link."""
    issued = await issue(request, services)
    return ShareResponse(request=request, token=issued.token, url=issued.url)

"""Creating shares: admission rules, token minting and the link returned to the client."""

from __future__ import annotations

import logging
import time

from shared.errors import ShareRefusedError
from shared.models import Share, ShareRequest, ShareResponse, ShareType
from shared.urls import landing_url, meddream_url, viewer_url
from token_service.deps import Services
from token_service.settings import Settings

__all__ = ["check_allowed", "create_share"]

logger = logging.getLogger(__name__)


def check_allowed(request: ShareRequest, settings: Settings, now: float) -> None:
    """Raise ShareRefusedError, with a message for the client, if the share cannot work."""
    kind = request.type
    expires = request.expiration_date
    if expires is not None and kind is not ShareType.MEDDREAM_INSTANT_LINK:
        if expires.timestamp() <= now:
            raise ShareRefusedError("expiration-date is in the past")
    if request.anonymized:
        if kind is not ShareType.OSIMIS_VIEWER_PUBLICATION:
            raise ShareRefusedError(f"{kind.value} shares cannot be anonymized")
        if settings.public_anonymized_orthanc_root is None:
            raise ShareRefusedError(
                "anonymized shares are not enabled (PUBLIC_ANONYMIZED_ORTHANC_ROOT is not set)"
            )
        if settings.anonymized_server_identifier is None:
            raise ShareRefusedError(
                "anonymized shares are not enabled (ANONYMIZED_SERVER_IDENTIFIER is not set)"
            )
    elif kind in (ShareType.OSIMIS_VIEWER_PUBLICATION, ShareType.STONE_VIEWER_PUBLICATION):
        if settings.public_orthanc_root is None:
            raise ShareRefusedError(
                f"{kind.value} shares are not enabled (PUBLIC_ORTHANC_ROOT is not set)"
            )
    if kind is ShareType.OSIMIS_VIEWER_PUBLICATION:
        if any(s.orthanc_id is None for s in request.studies):
            raise ShareRefusedError("osimis-viewer-publication needs an orthanc-id for every study")
        return
    if any(s.dicom_uid is None for s in request.studies):
        raise ShareRefusedError(f"{kind.value} needs a dicom-uid for every study")
    if kind in (ShareType.MEDDREAM_INSTANT_LINK, ShareType.MEDDREAM_VIEWER_PUBLICATION):
        if not settings.meddream_enabled:
            raise ShareRefusedError(
                f"{kind.value} shares are not enabled "
                "(MEDDREAM_TOKEN_SERVICE_URL and PUBLIC_MEDDREAM_ROOT are not both set)"
            )
    if kind is ShareType.MEDDREAM_VIEWER_PUBLICATION and settings.public_landing_root is None:
        raise ShareRefusedError(
            "meddream-viewer-publication shares are not enabled (PUBLIC_LANDING_ROOT is not set)"
        )


def _link(share: Share, token: str, settings: Settings) -> str | None:
    if settings.public_landing_root is not None:
        return landing_url(settings.public_landing_root, token)
    return viewer_url(share, token, settings.orthanc_root(share.anonymized))


async def create_share(request: ShareRequest, services: Services) -> ShareResponse:
    """Admit a share request and return its token and link."""
    settings = services.settings
    check_allowed(request, settings, time.time())
    if request.type is ShareType.MEDDREAM_INSTANT_LINK:
        # A MedDream token, minted by MedDream and valid as long as MedDream keeps it.
        assert services.meddream is not None and settings.public_meddream_root is not None
        uids = [s.dicom_uid or "" for s in request.studies]
        token = await services.meddream.create_token(uids)
        url: str | None = meddream_url(settings.public_meddream_root, uids, token)
        share_id = None
    else:
        token, share = services.codec.encode(request)
        url = _link(share, token, settings)
        share_id = share.share_id
    logger.info(
        "share created: id=%s type=%s studies=%d anonymized=%s expires=%s",
        share_id or "-",
        request.type.value,
        len(request.studies),
        request.anonymized,
        request.expiration_date.isoformat() if request.expiration_date else "never",
    )
    return ShareResponse(request=request, token=token, url=url)

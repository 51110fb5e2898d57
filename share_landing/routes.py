"""Routes of the landing: open a share link, or explain why it cannot be opened."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from share_landing.pages import PageText, PageTexts
from share_landing.settings import Settings
from shared.errors import ExpiredTokenError, InvalidTokenError, ViewerUnavailableError
from shared.meddream import MedDreamClient
from shared.models import ORTHANC_VIEWER_TYPES, Share, ShareType
from shared.revocations import RevocationList
from shared.tokens import TokenCodec
from shared.urls import meddream_url

__all__ = ["Landing", "router"]

logger = logging.getLogger(__name__)

router = APIRouter()


@dataclass(frozen=True, slots=True)
class Landing:
    """Everything the landing routes use, built once by `create_app`."""

    settings: Settings
    codec: TokenCodec
    revocations: RevocationList
    meddream: MedDreamClient | None
    templates: Jinja2Templates
    texts: PageTexts


async def get_landing(request: Request) -> Landing:
    """The app's landing objects."""
    landing: Landing = request.app.state.landing
    return landing


LandingDep = Annotated[Landing, Depends(get_landing)]


def _page(request: Request, landing: Landing, name: str, text: PageText, status: int) -> Response:
    return landing.templates.TemplateResponse(
        request,
        name,
        {"title": text.title, "page_title": text.page_title, "message": text.message},
        status_code=status,
    )


async def _viewer_url(share: Share, token: str, landing: Landing) -> str | None:
    """Where the share opens; for MedDream, after minting a fresh MedDream token."""
    settings = landing.settings
    if share.type is ShareType.MEDDREAM_VIEWER_PUBLICATION:
        if landing.meddream is None or settings.public_meddream_root is None:
            raise ViewerUnavailableError("MedDream is not configured on the landing")
        uids = [s.dicom_uid for s in share.studies if s.dicom_uid]
        if not uids:
            return None
        meddream_token = await landing.meddream.create_token(uids)
        return meddream_url(settings.public_meddream_root, uids, meddream_token)
    if share.type in ORTHANC_VIEWER_TYPES:
        if settings.viewer_root(share) is None:
            raise ViewerUnavailableError("no public root for this share's viewer")
        if share.anonymized and settings.anonymization_key is None:
            raise ViewerUnavailableError("ANONYMIZATION_KEY is not set on the landing")
        return settings.viewer_link(share, token)
    return None


@router.get("/health", tags=["health"])
async def health() -> dict[str, str]:
    """Liveness probe."""
    return {"status": "ok"}


@router.get("/", response_class=Response)
@router.get("/share-landing/", response_class=Response)
@router.get("/share-landing", response_class=Response, include_in_schema=False)
async def open_share(
    request: Request,
    landing: LandingDep,
    token: Annotated[str | None, Query()] = None,
) -> Response:
    """Send a valid share link on to its viewer; explain an expired or invalid one."""
    texts = landing.texts
    if not token:
        return _page(request, landing, "invalid-token.html", texts.invalid, 400)
    try:
        share = landing.codec.decode(token)
    except ExpiredTokenError:
        logger.info("share link refused: expired")
        return _page(request, landing, "expired-token.html", texts.expired, 410)
    except InvalidTokenError:
        logger.info("share link refused: invalid token")
        return _page(request, landing, "invalid-token.html", texts.invalid, 403)
    if share.revocation_key in landing.revocations:
        logger.info("share link refused: revoked share %s", share.share_id or "-")
        return _page(request, landing, "invalid-token.html", texts.invalid, 410)
    try:
        url = await _viewer_url(share, token, landing)
    except ViewerUnavailableError as error:
        logger.warning("share %s cannot be opened now: %s", share.share_id or "-", error)
        return _page(request, landing, "unavailable.html", texts.unavailable, 503)
    if url is None:
        logger.info("share link refused: %s share cannot open a viewer", share.type.value)
        return _page(request, landing, "invalid-token.html", texts.invalid, 403)
    logger.info("share opened: id=%s type=%s", share.share_id or "-", share.type.value)
    return RedirectResponse(url, status_code=307)

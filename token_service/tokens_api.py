"""The authorization plugin's `/tokens` routes: creation (`PUT /tokens/{type}`) and decoding.

Validation (`POST /tokens/validate`) is the endpoint of `validation`, shared with
`/shares/validate`. Decoding is not on the hot path: the plugin calls it from OE2's
token landing page and, since 0.9.3, from its `/tools/find` override when a DICOMweb
study query names no StudyInstanceUID (protocol.md §4.4); neither caches the answer.

Who asks decode matters for MedDream publications only. The landing page needs a fresh
MedDream link to redirect to; the `/tools/find` override only wants the studies, and
minting there would create a MedDream token for every such query (the successor's
defect, protocol.md §8 #18). OE2's landing always sends `token-key: "token"`; the
override sends the key under which the request carried the token (`Authorization` with
a `Bearer` value for Stone, OHIF and VolView). A MedDream link is therefore minted only
for the key `token`, exactly. The override uses that key too only for a DICOMweb study
query carrying a `token` header or `?token=` argument, which no viewer opened from a
MedDream link sends: someone would have to present the publication's token to Orthanc by
hand, which costs one MedDream token, as opening the link does. A MedDream publication
lists no study in any case: its token never opens Orthanc.

Error codes: `invalid` (also for revoked shares: OE2 shows its error page for any code),
`expired` (with `token-type`), and `unknown` when the landing's token is valid but there
is nowhere to send it (MedDream failing, a viewer root no longer configured, an instant
link). Studies are listed only for valid tokens of types that open Orthanc.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Response, status

from shared.errors import InvalidTokenError, ViewerUnavailableError
from shared.grants import extract_token
from shared.models import ORTHANC_VIEWER_TYPES, Share, ShareType
from shared.token_models import (
    DecoderErrorCode,
    OrthancResource,
    TokenCreationRequest,
    TokenCreationResponse,
    TokenDecoderRequest,
    TokenDecoderResponse,
)
from shared.urls import meddream_url
from token_service.deps import AdminDep, CredentialsDep, Services, ServicesDep
from token_service.shares import issue

__all__ = ["LANDING_TOKEN_KEY", "decode", "router"]

logger = logging.getLogger(__name__)

router = APIRouter()

# The `token-key` of OE2's token landing page (`TokenKey: "token"`).
LANDING_TOKEN_KEY = "token"

_KNOWN_TYPES = ", ".join(t.value for t in ShareType)


def _json(model: TokenCreationResponse | TokenDecoderResponse) -> Response:
    return Response(model.model_dump_json(by_alias=True), media_type="application/json")


@router.put(
    "/tokens/{token_type}",
    dependencies=[AdminDep],
    response_model=TokenCreationResponse,
    tags=["tokens"],
)
async def put_token(
    token_type: str, body: Annotated[TokenCreationRequest, Body()], services: ServicesDep
) -> Response:
    """Create a token (the plugin's `PUT /auth/tokens/{type}`, used by OE2 0.7+)."""
    try:
        kind = ShareType(token_type)
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"Unknown token type; known types: {_KNOWN_TYPES}"
        ) from None
    if body.type is not None and body.type != kind.value:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "The type in the body differs from the type in the path"
        )
    request = body.share_request(kind, datetime.now(UTC))
    issued = await issue(request, services)
    echo = body.model_copy(update={"type": kind.value, "expiration_date": request.expiration_date})
    return _json(TokenCreationResponse(request=echo, token=issued.token, url=issued.url))


@router.post(
    "/tokens/decode",
    dependencies=[CredentialsDep],
    response_model=TokenDecoderResponse,
    tags=["tokens"],
)
async def post_decode(
    body: Annotated[TokenDecoderRequest, Body()], services: ServicesDep
) -> Response:
    """Decode a token for OE2's token landing page and the plugin's `/tools/find` override."""
    return _json(await decode(body, services))


def _failure(code: DecoderErrorCode, share: Share | None = None) -> TokenDecoderResponse:
    return TokenDecoderResponse(token_type=share.type if share else None, error_code=code)


async def decode(body: TokenDecoderRequest, services: Services) -> TokenDecoderResponse:
    """What a token opens: its type, studies and viewer URL, or why it opens nothing."""
    token = extract_token(None, None, body.token_value)
    if token is None:
        return _failure(DecoderErrorCode.INVALID)
    try:
        share = services.codec.decode(token, verify_expiry=False)
    except InvalidTokenError:
        return _failure(DecoderErrorCode.INVALID)
    if share.revocation_key in services.revocations:
        logger.info("decode refused: revoked share %s", share.share_id or "-")
        return _failure(DecoderErrorCode.INVALID)
    if share.expired(time.time()):
        return _failure(DecoderErrorCode.EXPIRED, share)
    for_landing = body.token_key == LANDING_TOKEN_KEY
    resources: list[OrthancResource] = []
    redirect: str | None = None
    if share.type in ORTHANC_VIEWER_TYPES:
        resources = [OrthancResource.of_study(s) for s in share.studies]
        redirect = services.settings.viewer_link(share, token)
    elif share.type is ShareType.MEDDREAM_VIEWER_PUBLICATION and for_landing:
        redirect = await _meddream_link(share, services)
    error = DecoderErrorCode.UNKNOWN if for_landing and redirect is None else None
    logger.debug(
        "decoded a %s token for %s: %s",
        share.type.value,
        "the landing" if for_landing else "a query filter",
        error.value if error else "ok",
    )
    return TokenDecoderResponse(
        token_type=share.type, error_code=error, redirect_url=redirect, resources=resources
    )


async def _meddream_link(share: Share, services: Services) -> str | None:
    """A fresh MedDream link on the share's studies, or None if MedDream cannot give one."""
    settings = services.settings
    uids = [s.dicom_uid for s in share.studies if s.dicom_uid]
    if services.meddream is None or settings.public_meddream_root is None or not uids:
        logger.warning("share %s: MedDream is not configured", share.share_id or "-")
        return None
    try:
        meddream_token = await services.meddream.create_token(uids)
    except ViewerUnavailableError as error:
        logger.warning("share %s cannot be opened now: %s", share.share_id or "-", error)
        return None
    logger.info("share opened: id=%s type=%s", share.share_id or "-", share.type.value)
    return meddream_url(settings.public_meddream_root, uids, meddream_token)

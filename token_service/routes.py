"""HTTP routes of the token service (the validation endpoint lives in `validation`)."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Body, HTTPException, Request, Response, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ExpiredTokenError, InvalidTokenError
from shared.models import ShareRequest, ShareResponse
from token_service.deps import AdminDep, Services, ServicesDep, require_admin
from token_service.shares import create_share

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter()


class RevokeRequest(BaseModel):
    """Body of `POST /shares/revoke`: a share's token, or the link that carries it."""

    model_config = ConfigDict(frozen=True)

    token: str = Field(min_length=1, max_length=20000)


class RevokeResponse(BaseModel):
    """What was revoked."""

    model_config = ConfigDict(populate_by_name=True)

    share_id: str | None = Field(alias="share-id")
    revoked: bool


@router.get("/openapi.json", include_in_schema=False, dependencies=[AdminDep])
async def openapi(request: Request) -> JSONResponse:
    """The OpenAPI description, for credentials that may create shares."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False, dependencies=[AdminDep])
async def docs() -> HTMLResponse:
    """Interactive API documentation."""
    return get_swagger_ui_html(openapi_url="openapi.json", title="orthanc-share token service")


@router.get("/health", tags=["health"])
async def health() -> dict[str, str]:
    """Liveness probe; needs no credentials."""
    return {"status": "ok"}


@router.put("/shares", response_model=ShareResponse, tags=["shares"])
async def put_share(request: Request, share: Annotated[ShareRequest, Body()]) -> Response:
    """Create a share and return its token and link (the v23.1 API, used by OE2 0.4.3-0.6)."""
    # The app answers this route with `creation.ShareCreationEndpoint` before FastAPI's
    # router; this declaration describes it in the API and answers the same way.
    services: Services = request.app.state.services
    await require_admin(request, services)
    created = await create_share(share, services)
    return Response(created.model_dump_json(by_alias=True), media_type="application/json")


def _revocations_enabled(services: Services) -> None:
    if not services.revocations.enabled:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "Revocation needs a database: set DATABASE_URL"
        )


@router.delete(
    "/shares/{share_id}",
    dependencies=[AdminDep],
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["shares"],
)
async def delete_share(share_id: str, services: ServicesDep) -> Response:
    """Revoke a share by its id (the `jti` of its token, logged when it was created)."""
    _revocations_enabled(services)
    if not share_id or len(share_id) > 64:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Not a share id")
    await services.revocations.revoke(f"jti:{share_id}", None)
    logger.info("share revoked: id=%s", share_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _token_of(value: str) -> str:
    """Accept a bare token or a link whose query carries `token=`."""
    if "token=" in value:
        tokens = parse_qs(urlsplit(value.strip()).query).get("token")
        if tokens:
            return tokens[0]
    return value.strip()


@router.post(
    "/shares/revoke",
    dependencies=[AdminDep],
    response_model_by_alias=True,
    tags=["shares"],
)
async def revoke_share(request: RevokeRequest, services: ServicesDep) -> RevokeResponse:
    """Revoke the share of a token or link, including links minted by the original service."""
    _revocations_enabled(services)
    try:
        share = services.codec.decode(_token_of(request.token))
    except ExpiredTokenError:
        raise HTTPException(status.HTTP_409_CONFLICT, "This share has already expired") from None
    except InvalidTokenError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Not a valid share token") from None
    await services.revocations.revoke(share.revocation_key, share.expires_at)
    logger.info("share revoked: id=%s", share.share_id or "(original service token)")
    return RevokeResponse(share_id=share.share_id, revoked=True)

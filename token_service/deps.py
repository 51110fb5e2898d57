"""Long-lived objects of the token service and the dependencies that hand them to routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, HTTPException, Request, status

from shared.auth import BasicAuth, Role
from shared.grants import GrantPolicy
from shared.meddream import MedDreamClient
from shared.profiles import AnonymousProfile
from shared.revocations import RevocationList
from shared.tokens import TokenCodec, VerifiedTokenCache
from token_service.settings import Settings

__all__ = ["UNAUTHORIZED", "AdminDep", "CredentialsDep", "Services", "ServicesDep"]


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the routes use, built once by `create_app`."""

    settings: Settings
    codec: TokenCodec
    tokens: VerifiedTokenCache
    revocations: RevocationList
    auth: BasicAuth
    policy: GrantPolicy
    http: httpx.AsyncClient
    meddream: MedDreamClient | None
    anonymous_profile: AnonymousProfile


UNAUTHORIZED = HTTPException(
    status_code=status.HTTP_401_UNAUTHORIZED,
    detail="Not authenticated",
    headers={"WWW-Authenticate": 'Basic realm="orthanc-share"'},
)


async def get_services(request: Request) -> Services:
    """The app's services."""
    # Dependencies are `async def`: FastAPI runs plain `def` ones in a thread pool.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def require_admin(request: Request, services: ServicesDep) -> None:
    """Let through only USERS credentials (or anyone when no credentials are configured)."""
    if not services.auth.enabled:
        return
    role = services.auth.role(request.headers.get("authorization"))
    if role is None:
        raise UNAUTHORIZED
    if role is not Role.ADMIN:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "These credentials may only validate and decode tokens"
        )


AdminDep = Depends(require_admin)


async def require_credentials(request: Request, services: ServicesDep) -> None:
    """Let through USERS or VALIDATION_USERS credentials (what the plugins hold)."""
    if services.auth.enabled and services.auth.role(request.headers.get("authorization")) is None:
        raise UNAUTHORIZED


CredentialsDep = Depends(require_credentials)

"""The token service application: `create_app()` and the ASGI `app` uvicorn runs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.asgi import LazyApp
from shared.errors import ShareRefusedError, ViewerUnavailableError
from shared.logs import install_redaction
from shared.meddream import MedDreamClient
from shared.revocations import RevocationList, open_configured_store
from shared.settings import load_settings
from shared.tokens import VerifiedTokenCache
from token_service import profile, tokens_api
from token_service.creation import ShareCreationEndpoint, validation_errors
from token_service.deps import Services
from token_service.routes import router
from token_service.settings import Settings
from token_service.validation import ValidationEndpoint

__all__ = ["app", "create_app"]

logger = logging.getLogger(__name__)

VALIDATION_PATHS = ("/shares/validate", "/tokens/validate")


def _log_summary(settings: Settings, auth_enabled: bool, profile_name: str) -> None:
    enabled = []
    if settings.public_orthanc_root:
        enabled += [
            "stone-viewer-publication",
            "osimis-viewer-publication",
            "volview-viewer-publication",
        ]
    if settings.public_ohif_root:
        enabled.append(f"ohif-viewer-publication ({settings.ohif_data_source.value})")
    if settings.anonymized_server_identifier and settings.anonymization_key:
        if settings.public_anonymized_orthanc_root:
            enabled += [
                "anonymized stone-viewer-publication",
                "anonymized osimis-viewer-publication",
            ]
        if settings.public_anonymized_ohif_root:
            enabled.append("anonymized ohif-viewer-publication")
    if settings.meddream_enabled:
        enabled.append("meddream-instant-link")
        if settings.public_landing_root:
            enabled.append("meddream-viewer-publication")
    enabled += ["viewer-instant-link", "download-instant-link"]
    logger.info("token service: share types enabled: %s", ", ".join(enabled))
    logger.info(
        "token service: /user/get-profile answers the anonymous profile %r (%s), "
        "which grants nothing",
        profile_name,
        settings.anonymous_profile_file or "built in",
    )
    if not auth_enabled:
        logger.warning(
            "USERS is not set: anyone who can reach the token service can create shares; "
            "set USERS (and VALIDATION_USERS for the Orthanc plugins)"
        )
    if settings.database_url is None:
        logger.warning("DATABASE_URL is not set: shares cannot be revoked")


def _add_error_handlers(app: FastAPI) -> None:
    async def refused(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "The viewer's token service is unavailable"}, status_code=502
        )

    async def invalid_body(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        body = validation_errors(exc.errors())
        return Response(body, status_code=422, media_type="application/json")

    async def internal(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error", exc_info=exc)
        return JSONResponse({"detail": "Internal server error"}, status_code=500)

    app.add_exception_handler(ShareRefusedError, refused)
    app.add_exception_handler(ViewerUnavailableError, unavailable)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(Exception, internal)


class TokenServiceApp(FastAPI):
    """FastAPI, with the hot routes answered before the middleware stack.

    Validation is called for every viewer request and scripts create shares in bulk;
    routing them through FastAPI's middleware and router costs more than the work itself.
    Those endpoints handle their own errors, so skipping the error middleware loses nothing.
    """

    fast_paths: dict[tuple[str, str], ASGIApp]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.fast_paths.get((scope["method"], scope["path"]))
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the token service from explicit settings, or from the environment."""
    settings = settings or load_settings(Settings)
    install_redaction()
    settings.warn_about_weak_settings()
    anonymous_profile = settings.anonymous_profile()
    codec = settings.token_codec()
    http = httpx.AsyncClient(timeout=httpx.Timeout(settings.meddream_timeout_seconds))
    meddream = None
    if settings.meddream_token_service_url:
        meddream = MedDreamClient(
            settings.meddream_token_service_url, settings.meddream_storage, http
        )
    auth = settings.basic_auth()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        revocations = services.revocations
        await revocations.start()
        try:
            yield
        finally:
            await revocations.stop()
            await http.aclose()

    revocations = RevocationList(
        open_configured_store(settings), settings.revocation_refresh_seconds
    )
    services = Services(
        settings=settings,
        codec=codec,
        tokens=VerifiedTokenCache(codec),
        revocations=revocations,
        auth=auth,
        policy=settings.grant_policy(),
        http=http,
        meddream=meddream,
        anonymous_profile=anonymous_profile,
    )
    app = TokenServiceApp(
        # The API description is served by `routes` behind the same credentials.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        title="orthanc-share token service",
        summary="Creates share tokens and answers the Orthanc authorization plugin.",
        lifespan=lifespan,
    )
    app.state.services = services
    _add_error_handlers(app)
    endpoint = ValidationEndpoint(services)
    app.fast_paths = {("POST", path): endpoint for path in VALIDATION_PATHS}
    app.fast_paths[("PUT", "/shares")] = ShareCreationEndpoint(services)
    for path in VALIDATION_PATHS:
        # Reached only for other methods (405), and listed for completeness.
        app.router.routes.append(Route(path, endpoint, methods=["POST"]))
    app.include_router(router)
    app.include_router(tokens_api.router)
    app.include_router(profile.router)
    _log_summary(settings, auth.enabled, anonymous_profile.name)
    return app


app = LazyApp(create_app)

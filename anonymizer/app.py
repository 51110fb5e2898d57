"""The anonymizer application: `create_app()` and the ASGI `app` uvicorn runs.

A reverse proxy in front of the anonymized-share Orthanc (see `anonymizer.routes` for
what it serves and `anonymizer.profile` for what it removes).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from anonymizer.deps import ProxyDep
from anonymizer.errors import (
    RefusedError,
    TooLargeError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from anonymizer.index import IndexCache
from anonymizer.proxy import AnonymizingProxy, Limits
from anonymizer.settings import Settings
from anonymizer.upstream import SECURITY_HEADERS, Upstream
from shared.asgi import LazyApp
from shared.logs import install_redaction
from shared.settings import load_settings
from shared.tokens import TokenCodec, VerifiedTokenCache

__all__ = ["app", "create_app"]

logger = logging.getLogger(__name__)

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
ERROR_HEADERS = {"Cache-Control": "no-store", **SECURITY_HEADERS}
STATUS_TEXT = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found"}

router = APIRouter()


@router.get("/health", tags=["health"])
async def health() -> dict[str, str]:
    """Liveness of the anonymizer (Orthanc is not asked)."""
    return {"status": "ok"}


@router.api_route("/{path:path}", methods=ALL_METHODS, include_in_schema=False)
async def proxied(request: Request, proxy: ProxyDep) -> Response:
    """Every other request: served if the anonymizer knows how to anonymize it."""
    return await proxy.handle(
        request.method, request.url.path, request.headers, request.query_params
    )


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=ERROR_HEADERS)


def _add_error_handlers(app: FastAPI) -> None:
    async def refused(request: Request, exc: Exception) -> Response:
        # One line, no query string (it may hold the token), no header.
        logger.info("refused %s request: %s", request.method, exc)
        return _error(403, "Forbidden")

    async def upstream_status(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, UpstreamStatusError)
        # Orthanc's own error body may name real UIDs: only the status is passed on.
        status = exc.status if 400 <= exc.status < 600 else 502
        return _error(status, STATUS_TEXT.get(status, "Upstream error"))

    async def upstream_failed(_: Request, exc: Exception) -> Response:
        if isinstance(exc, UpstreamTimeoutError):
            logger.warning("anonymized-share Orthanc timed out")
            return _error(504, "Upstream timeout")
        if isinstance(exc, TooLargeError):
            logger.warning("answer too large to anonymize (MAX_REWRITE_BYTES/MAX_ARCHIVE_BYTES)")
        else:
            logger.warning("anonymized-share Orthanc failed: %s", exc)
        return _error(502, "Bad gateway")

    async def internal(_: Request, exc: Exception) -> Response:
        logger.exception("unexpected error", exc_info=exc)
        return _error(500, "Internal server error")

    app.add_exception_handler(RefusedError, refused)
    app.add_exception_handler(UpstreamStatusError, upstream_status)
    app.add_exception_handler(UpstreamError, upstream_failed)
    app.add_exception_handler(Exception, internal)


def create_app(
    settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the anonymizer from explicit settings, or from the environment.

    `transport` replaces the network for tests (an `httpx.MockTransport`).
    """
    settings = settings or load_settings(Settings)
    install_redaction()
    settings.warn_about_weak_settings()
    codec = TokenCodec(settings.signing_keys())
    timeout = httpx.Timeout(
        settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = httpx.AsyncClient(
            base_url=settings.upstream_root(),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )
        app.state.proxy = AnonymizingProxy(
            Upstream(client),
            VerifiedTokenCache(codec),
            IndexCache(settings.key_bytes(), settings.resource_cache_seconds),
            Limits(settings.max_rewrite_bytes, settings.max_archive_bytes),
        )
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(
        title="orthanc-share anonymizer",
        summary="Serves anonymized shares from the anonymized-share Orthanc.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    _add_error_handlers(app)
    app.include_router(router)
    logger.info("anonymizer: forwarding to the anonymized-share Orthanc")
    return app


app = LazyApp(create_app)

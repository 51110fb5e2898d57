"""The share landing application: `create_app()` and the ASGI `app` uvicorn runs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import jinja2
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from share_landing.pages import PageTexts
from share_landing.routes import Landing, router
from share_landing.settings import Settings
from shared.asgi import LazyApp
from shared.logs import install_redaction
from shared.meddream import MedDreamClient
from shared.revocations import RevocationList, open_configured_store
from shared.settings import load_settings

__all__ = ["app", "create_app"]

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"

SECURITY_HEADERS = {
    # The token is in this page's URL: never send it on as a referrer, never cache it.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


async def _security_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
    response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    return response


def _templates(settings: Settings) -> Jinja2Templates:
    # Operator pages are searched first, then ours: same names, same context.
    search = [str(settings.landing_pages_dir)] if settings.landing_pages_dir else []
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*search, str(TEMPLATES_DIR)]),
        autoescape=True,
        undefined=jinja2.Undefined,
    )
    return Jinja2Templates(env=env)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the landing from explicit settings, or from the environment."""
    settings = settings or load_settings(Settings)
    install_redaction()
    settings.warn_about_weak_settings()
    http = httpx.AsyncClient(timeout=httpx.Timeout(settings.meddream_timeout_seconds))
    meddream = None
    if settings.meddream_token_service_url:
        meddream = MedDreamClient(
            settings.meddream_token_service_url, settings.meddream_storage, http
        )
    revocations = RevocationList(
        open_configured_store(settings), settings.revocation_refresh_seconds
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await revocations.start()
        try:
            yield
        finally:
            await revocations.stop()
            await http.aclose()

    app = FastAPI(
        title="orthanc-share landing",
        summary="The page a share link opens.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.landing = Landing(
        settings=settings,
        codec=settings.token_codec(),
        revocations=revocations,
        meddream=meddream,
        templates=_templates(settings),
        texts=PageTexts.from_settings(settings),
    )
    app.add_middleware(BaseHTTPMiddleware, dispatch=_security_headers)

    async def internal(request: Request, exc: Exception) -> Response:
        logger.exception("unexpected error", exc_info=exc)
        if request.url.path.endswith("/health"):
            return JSONResponse({"detail": "Internal server error"}, status_code=500)
        return HTMLResponse("<!doctype html><title>Error</title><p>Something went wrong.", 500)

    app.add_exception_handler(Exception, internal)
    app.include_router(router)
    return app


app = LazyApp(create_app)

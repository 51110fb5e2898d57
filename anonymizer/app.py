"""The anonymizer application: `create_app()` and the ASGI `app` uvicorn runs.

A reverse proxy in front of the anonymized-share Orthanc (see `anonymizer.routes` for
what it serves and `anonymizer.profile` for what it removes).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI
from starlette.types import Receive, Scope, Send

from anonymizer.endpoint import serve
from anonymizer.index import IndexCache
from anonymizer.proxy import AnonymizingProxy
from anonymizer.settings import Settings
from anonymizer.transport import POOL_LIMITS, UpstreamTransport
from anonymizer.upstream import Limits, Upstream
from shared.asgi import LazyApp
from shared.logs import install_redaction
from shared.settings import load_settings
from shared.tokens import VerifiedTokenCache

__all__ = ["AnonymizerApp", "app", "create_app"]

logger = logging.getLogger(__name__)

HEALTH_PATH = "/health"

router = APIRouter()


@router.get(HEALTH_PATH, tags=["health"])
async def health() -> dict[str, str]:
    """Liveness of the anonymizer (Orthanc is not asked)."""
    return {"status": "ok"}


class AnonymizerApp(FastAPI):
    """FastAPI for `/health` and the lifespan; every other HTTP request goes to the proxy.

    Proxied requests skip FastAPI's middleware and router (see `anonymizer.endpoint`):
    the viewer makes one per frame, and that machinery cost more than the checks.
    """

    proxy: AnonymizingProxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != HEALTH_PATH:
            await serve(self.proxy, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> AnonymizerApp:
    """Build the anonymizer from explicit settings, or from the environment.

    `transport` replaces the network for tests (an `httpx.MockTransport`).
    """
    settings = settings or load_settings(Settings)
    install_redaction()
    settings.warn_about_weak_settings()
    codec = settings.token_codec()
    timeout = httpx.Timeout(
        settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
    )

    @asynccontextmanager
    async def lifespan(started: FastAPI) -> AsyncIterator[None]:
        assert isinstance(started, AnonymizerApp)
        client = httpx.AsyncClient(
            base_url=settings.upstream_root(),
            timeout=timeout,
            transport=transport or UpstreamTransport(POOL_LIMITS),
            follow_redirects=False,
            trust_env=False,
        )
        started.proxy = AnonymizingProxy(
            Upstream(client),
            VerifiedTokenCache(codec),
            IndexCache(settings.key_bytes(), settings.resource_cache_seconds),
            Limits(settings.max_rewrite_bytes, settings.max_archive_bytes),
        )
        try:
            yield
        finally:
            await client.aclose()

    app = AnonymizerApp(
        title="orthanc-share anonymizer",
        summary="Serves anonymized shares from the anonymized-share Orthanc.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(router)
    logger.info("anonymizer: forwarding to the anonymized-share Orthanc")
    return app


app = LazyApp(create_app)

"""An ASGI app built on first use, so that importing a service module reads no settings."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import ConfigurationError

__all__ = ["LazyApp"]

logger = logging.getLogger(__name__)


class LazyApp:
    """Calls `factory` at the first ASGI event (uvicorn's lifespan startup).

    A configuration error is reported as a failed startup with one readable line, so
    uvicorn exits with it instead of a traceback.
    """

    def __init__(self, factory: Callable[[], ASGIApp]) -> None:
        self._factory = factory
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            try:
                self._app = self._factory()
            except ConfigurationError as error:
                if scope["type"] == "lifespan":
                    # The server logs this message and exits.
                    await receive()
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                logger.error("%s", error)
                raise
        await self._app(scope, receive, send)

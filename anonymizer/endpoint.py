"""The proxied routes as one plain ASGI endpoint, and the table of their error answers.

Every viewer request goes through here (a study opens with hundreds of frame requests):
FastAPI's middleware, router and dependency machinery cost more than the anonymizer's
own checks, so the app hands these requests straight to `serve`, which answers its own
errors with the same fixed bodies the exception handlers of a FastAPI app would.
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers, QueryParams
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from anonymizer.errors import (
    AnonymizerError,
    RefusedError,
    TooLargeError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from anonymizer.proxy import AnonymizingProxy
from anonymizer.streams import SECURITY_HEADERS

__all__ = ["ERROR_HEADERS", "error_response", "serve"]

logger = logging.getLogger(__name__)

ERROR_HEADERS = {"Cache-Control": "no-store", **SECURITY_HEADERS}
STATUS_TEXT = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found"}


def _error(status: int, detail: str) -> Response:
    return JSONResponse({"detail": detail}, status_code=status, headers=ERROR_HEADERS)


def error_response(error: AnonymizerError, method: str) -> Response:
    """The answer to a request that failed with `error` (the reason is logged only)."""
    if isinstance(error, RefusedError):
        # One line, no query string (it may hold the token), no header.
        logger.info("refused %s request: %s", method, error)
        return _error(403, "Forbidden")
    if isinstance(error, UpstreamStatusError):
        # Orthanc's own error body may name real UIDs: only the status is passed on.
        status = error.status if 400 <= error.status < 600 else 502
        return _error(status, STATUS_TEXT.get(status, "Upstream error"))
    if isinstance(error, UpstreamTimeoutError):
        logger.warning("anonymized-share Orthanc timed out")
        return _error(504, "Upstream timeout")
    if isinstance(error, TooLargeError):
        logger.warning("answer too large to anonymize (MAX_REWRITE_BYTES/MAX_ARCHIVE_BYTES)")
        return _error(502, "Bad gateway")
    if isinstance(error, UpstreamError):
        logger.warning("anonymized-share Orthanc failed: %s", error)
        return _error(502, "Bad gateway")
    logger.error("unexpected anonymizer error: %s", error)
    return _error(500, "Internal server error")


async def serve(proxy: AnonymizingProxy, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one HTTP request through `proxy`.

    A failure once the answer has started (Orthanc cut a stream short) propagates to the
    server, which closes the connection: the client must not take a truncated body for
    a whole one.
    """
    method: str = scope["method"]
    try:
        response = await proxy.handle(
            method, scope["path"], Headers(scope=scope), QueryParams(scope["query_string"])
        )
    except AnonymizerError as error:
        response = error_response(error, method)
    except Exception:  # noqa: BLE001 - no middleware catches it: log, answer a generic 500
        logger.exception("unexpected error")
        response = _error(500, "Internal server error")
    await response(scope, receive, send)

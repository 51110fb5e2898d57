"""The validation endpoint the Orthanc authorization plugin calls on every uncached request.

It is a plain ASGI endpoint rather than a FastAPI route: it runs for every viewer
request, and FastAPI's dependency and body machinery cost more than the decision itself.
It does no I/O besides the request: tokens come from the verified-token cache and
revocations from the in-memory list.
"""

from __future__ import annotations

import json
import logging
import time

from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from shared.grants import Decision, decide, extract_token
from shared.models import Share, ValidationRequest
from token_service.deps import Services

__all__ = ["ValidationEndpoint"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


def _answer(
    status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return status, body, _JSON + (extra or [])


_UNAUTHORIZED = _answer(
    401, b'{"detail":"Not authenticated"}', [(b"www-authenticate", b'Basic realm="orthanc-share"')]
)
_TOO_LARGE = _answer(413, b'{"detail":"Request body too large"}')
_FAILED = _answer(500, b'{"detail":"Internal server error"}')
_BAD_BODY = _answer(400, b'{"detail":"The body must be a JSON object of the authorization plugin"}')


class ValidationEndpoint:
    """`POST /shares/validate` and `POST /tokens/validate`: `{granted, validity}` always."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body, headers = await self._handle(scope, receive)
        except Exception:  # noqa: BLE001 - outside the error middleware: fail closed, log
            logger.exception("validation failed unexpectedly")
            status, body, headers = _FAILED
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        token_header: str | None = None
        authorization: str | None = None
        for name, value in scope["headers"]:
            if name == b"token":
                token_header = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
        services = self._services
        if services.auth.enabled and services.auth.role(authorization) is None:
            return _UNAUTHORIZED
        raw = await _read_body(receive)
        if raw is None:
            return _TOO_LARGE
        try:
            request = ValidationRequest.model_validate_json(raw)
        except ValidationError:
            return _BAD_BODY
        decision = self.decide(request, token_header, authorization)
        body = json.dumps({"granted": decision.granted, "validity": decision.validity}).encode()
        return 200, body, _JSON

    def decide(
        self, request: ValidationRequest, token_header: str | None, authorization: str | None
    ) -> Decision:
        """Decide a parsed validation request."""
        services = self._services
        token = extract_token(token_header, authorization, request.token_value)
        share = services.tokens.lookup(token) if token is not None else None
        revoked = isinstance(share, Share) and share.revocation_key in services.revocations
        decision = decide(
            share,
            revoked=revoked,
            method=request.method,
            level=request.level,
            dicom_uid=request.dicom_uid,
            orthanc_id=request.orthanc_id,
            server_id=request.server_id if request.server_id is not None else request.identifier,
            policy=services.policy,
            now=time.time(),
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "validation %s (%s): method=%s level=%s orthanc-id=%s",
                "granted" if decision.granted else "denied",
                decision.reason.value,
                request.method,
                request.level,
                request.orthanc_id,
            )
        return decision


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)

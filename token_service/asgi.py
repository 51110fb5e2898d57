"""Plain-ASGI answers for the routes the token service serves before FastAPI's stack."""

from __future__ import annotations

import logging

from starlette.types import Receive, Scope, Send

from shared.auth import Role
from token_service.deps import Services

__all__ = [
    "FAILED",
    "PlainEndpoint",
    "TOO_LARGE",
    "UNAUTHORIZED",
    "Answer",
    "credentials_problem",
    "json_answer",
    "read_body",
    "request_headers",
]

logger = logging.getLogger(__name__)

Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]
_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


def json_answer(status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> Answer:
    """A JSON answer with its length, not to be cached."""
    length = [(b"content-length", str(len(body)).encode())]
    return status, body, _JSON + length + (extra or [])


UNAUTHORIZED = json_answer(
    401, b'{"detail":"Not authenticated"}', [(b"www-authenticate", b'Basic realm="orthanc-share"')]
)
FORBIDDEN = json_answer(403, b'{"detail":"These credentials may only validate and decode tokens"}')
TOO_LARGE = json_answer(413, b'{"detail":"Request body too large"}')
FAILED = json_answer(500, b'{"detail":"Internal server error"}')


def request_headers(scope: Scope) -> tuple[str | None, str | None]:
    """The `token` and `Authorization` headers of a request."""
    token: str | None = None
    authorization: str | None = None
    for name, value in scope["headers"]:
        if name == b"token":
            token = value.decode("latin-1")
        elif name == b"authorization":
            authorization = value.decode("latin-1")
    return token, authorization


def credentials_problem(services: Services, authorization: str | None, role: Role) -> Answer | None:
    """The refusal for credentials that lack `role`, or None when they may go on."""
    if not services.auth.enabled:
        return None
    found = services.auth.role(authorization)
    if found is None:
        return UNAUTHORIZED
    if role is Role.ADMIN and found is not Role.ADMIN:
        return FORBIDDEN
    return None


async def read_body(receive: Receive, cap: int) -> bytes | None:
    """The request body, or None when it is larger than `cap` bytes."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class PlainEndpoint:
    """An endpoint outside FastAPI's error middleware: it answers its own failures."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body, headers = await self.answer(scope, receive)
        except Exception:  # noqa: BLE001 - no middleware catches it: log, answer 500 (deny)
            logger.exception("%s failed unexpectedly", type(self).__name__)
            status, body, headers = FAILED
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def answer(self, scope: Scope, receive: Receive) -> Answer:
        """Status, body and headers of the answer to one request."""
        raise NotImplementedError

"""The HTTP limit of the machine: an ASGI app with no framework that answers a fixed JSON."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

BODY = b'{"granted": true, "validity": 60, "token": "fixed"}'
HEADERS = [(b"content-type", b"application/json")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the request, answer the same bytes every time."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})

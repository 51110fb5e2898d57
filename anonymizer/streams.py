"""Orthanc's answers streamed to the viewer as they arrive.

Answers keep only whitelisted headers: `Set-Cookie`, `Server` and whatever else Orthanc
or a plugin adds are dropped, and so are length and encoding headers when the body
changes (a multipart answer whose part headers are rewritten).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import IO

import anyio
import httpx
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from anonymizer.multipart import PartHeaderFilter

__all__ = [
    "SECURITY_HEADERS",
    "STREAMED_RESPONSE_HEADERS",
    "UNWATCHED_BYTES",
    "ProxiedStream",
    "iterate_file",
    "passed_headers",
    "stream_through",
]

# Answer headers kept when the body is passed through unchanged.
STREAMED_RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "content-range",
        "accept-ranges",
        "cache-control",
        "etag",
        "last-modified",
        "expires",
    }
)
# Kept when only part headers change (the length and encoding do change).
FILTERED_RESPONSE_HEADERS = frozenset({"content-type", "cache-control"})
# Added to every answer of the anonymizer.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
CHUNK = 64 * 1024
# Answers up to this size are streamed without watching for the client going away.
UNWATCHED_BYTES = 1024 * 1024


def passed_headers(response: httpx.Response, kept: frozenset[str]) -> dict[str, str]:
    """The answer's headers that may reach the browser, plus our security headers."""
    headers = {k: v for k, v in response.headers.items() if k.lower() in kept}
    headers.update(SECURITY_HEADERS)
    return headers


def stream_through(
    response: httpx.Response, part_filter: PartHeaderFilter | None = None
) -> ProxiedStream:
    """Stream an answer's bytes as they arrive; upstream closed once sent (or on failure).

    Without `part_filter` the raw (still encoded) bytes pass with their headers; with
    one, the decoded bytes go through it and length/encoding headers are dropped.
    """
    if part_filter is None and response.is_stream_consumed:
        # An answer already read (a test transport's) has only its decoded content left.
        body: AsyncIterator[bytes] = _once(response.content)
        headers = passed_headers(response, FILTERED_RESPONSE_HEADERS)
    elif part_filter is None:
        body = response.aiter_raw()
        headers = passed_headers(response, STREAMED_RESPONSE_HEADERS)
    else:
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        plain = encoding == "identity" and not response.is_stream_consumed
        # Without an encoding the raw bytes are the decoded ones: skip httpx's decoder.
        chunks = response.aiter_raw() if plain else response.aiter_bytes()
        body = _filtered(chunks, part_filter)
        headers = passed_headers(response, FILTERED_RESPONSE_HEADERS)
    return ProxiedStream(body, response, headers)


def _small(response: httpx.Response) -> bool:
    if response.is_stream_consumed:
        return True
    length = response.headers.get("content-length", "")
    return length.isdigit() and int(length) <= UNWATCHED_BYTES


class ProxiedStream(StreamingResponse):
    """An upstream answer streamed to the client; the upstream is closed in every case.

    Starlette watches for the client going away in a second task while it streams, so
    that a large body stops being read when nobody wants it any more. That watch costs
    about as much as the rest of streaming a frame: answers Orthanc announces as at most
    UNWATCHED_BYTES are sent without it (if the client has left, the rest of such an
    answer is read and dropped).
    """

    def __init__(
        self, body: AsyncIterator[bytes], upstream: httpx.Response, headers: dict[str, str]
    ) -> None:
        super().__init__(body, status_code=upstream.status_code, headers=headers)
        self.upstream = upstream
        self.watch_client = not _small(upstream)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if self.watch_client:
                await super().__call__(scope, receive, send)
            else:
                await self.stream_response(send)
        finally:
            await self.upstream.aclose()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _filtered(
    chunks: AsyncIterator[bytes], part_filter: PartHeaderFilter
) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        out = part_filter.feed(chunk)
        if out:
            yield out
    tail = part_filter.close()
    if tail:
        yield tail


async def iterate_file(handle: IO[bytes]) -> AsyncIterator[bytes]:
    """A file's content in chunks, read in a worker thread."""
    while True:
        chunk = await anyio.to_thread.run_sync(handle.read, CHUNK)
        if not chunk:
            return
        yield chunk

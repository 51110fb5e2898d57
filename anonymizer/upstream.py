"""The anonymized-share Orthanc seen from the anonymizer: requests, streams, capped reads.

Only whitelisted request headers are forwarded (the token headers as received, `Accept`
and, where the body is passed through, `Range` and caching headers); never `Cookie`.
Answers keep only whitelisted headers: `Set-Cookie`, `Server` and whatever else Orthanc
or a plugin adds are dropped, and so are length and encoding headers when the body
changes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import anyio
import httpx
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from anonymizer.errors import (
    TooLargeError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from anonymizer.multipart import PartHeaderFilter

__all__ = [
    "SECURITY_HEADERS",
    "STREAMED_RESPONSE_HEADERS",
    "TOKEN_HEADERS",
    "TokenCarrier",
    "Upstream",
    "iterate_file",
    "passed_headers",
    "stream_through",
]

# Request headers that carry the share token, forwarded untouched.
TOKEN_HEADERS = ("authorization", "token")
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
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class TokenCarrier:
    """How the viewer presented its token: the same headers and argument go upstream."""

    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]


class Upstream:
    """Requests to the anonymized-share Orthanc through one long-lived client."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def open(
        self,
        path: str,
        params: Iterable[tuple[str, str]],
        headers: Mapping[str, str],
    ) -> httpx.Response:
        """Send a GET and return the answer with its body not yet read."""
        request = self._client.build_request(
            "GET", path, params=list(params), headers=dict(headers)
        )
        try:
            return await self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise UpstreamTimeoutError("upstream timed out") from None
        except httpx.HTTPError as error:
            raise UpstreamError(f"upstream unreachable: {type(error).__name__}") from None

    @staticmethod
    async def check(response: httpx.Response) -> None:
        """Raise UpstreamStatusError (closing the answer) unless the status is 2xx."""
        if not 200 <= response.status_code < 300:
            await response.aclose()
            raise UpstreamStatusError(response.status_code)

    @staticmethod
    async def read(response: httpx.Response, cap: int) -> bytes:
        """The decoded body, at most `cap` bytes (TooLargeError beyond), answer closed."""
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > cap:
                    raise TooLargeError("answer larger than the rewrite cap")
        except httpx.TimeoutException:
            raise UpstreamTimeoutError("upstream timed out while answering") from None
        except httpx.HTTPError as error:
            raise UpstreamError(
                f"upstream failed while answering: {type(error).__name__}"
            ) from None
        finally:
            await response.aclose()
        return bytes(body)

    @staticmethod
    async def spool(response: httpx.Response, cap: int) -> IO[bytes]:
        """The decoded body in a temporary file (rewound), at most `cap` bytes."""
        spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise TooLargeError("archive larger than the cap")
                await anyio.to_thread.run_sync(spooled.write, chunk)
        except BaseException:
            spooled.close()
            raise
        finally:
            await response.aclose()
        spooled.seek(0)
        return spooled

    async def fetch_json(self, carrier: TokenCarrier, path: str, accept: str, cap: int) -> Any:
        """GET a JSON document with the viewer's token; UpstreamStatusError if not 2xx."""
        headers = {**dict(carrier.headers), "Accept": accept}
        response = await self.open(path, carrier.query, headers)
        await self.check(response)
        body = await self.read(response, cap)
        try:
            return json.loads(body)
        except ValueError:
            raise UpstreamError("upstream answered invalid JSON") from None


def passed_headers(response: httpx.Response, kept: frozenset[str]) -> dict[str, str]:
    """The answer's headers that may reach the browser, plus our security headers."""
    headers = {k: v for k, v in response.headers.items() if k.lower() in kept}
    headers.update(SECURITY_HEADERS)
    return headers


def stream_through(
    response: httpx.Response, part_filter: PartHeaderFilter | None = None
) -> StreamingResponse:
    """Stream an answer's bytes as they arrive; upstream closed in a background task.

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
        body = _filtered(response.aiter_bytes(), part_filter)
        headers = passed_headers(response, FILTERED_RESPONSE_HEADERS)
    return StreamingResponse(
        body,
        status_code=response.status_code,
        headers=headers,
        background=BackgroundTask(response.aclose),
    )


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

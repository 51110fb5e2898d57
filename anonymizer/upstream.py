"""The anonymized-share Orthanc seen from the anonymizer: requests and capped reads.

Only whitelisted request headers are forwarded (the token headers as received, `Accept`
and, where the body is passed through, `Range` and caching headers); never `Cookie`.
What comes back is streamed by `streams` or read here, up to a cap, to be rewritten.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import anyio
import httpx

from anonymizer.errors import (
    TooLargeError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)

__all__ = ["SPOOL_MEMORY_BYTES", "TOKEN_HEADERS", "Limits", "TokenCarrier", "Upstream"]

# Request headers that carry the share token, forwarded untouched.
TOKEN_HEADERS = ("authorization", "token")
# What a spooled answer keeps in memory before it moves to disk.
SPOOL_MEMORY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what is read to be rewritten."""

    rewrite_bytes: int
    archive_bytes: int


@dataclass(frozen=True, slots=True)
class TokenCarrier:
    """How the viewer presented its token: the same headers and argument go upstream."""

    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]


class Upstream:
    """Requests to the anonymized-share Orthanc through one long-lived client."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        # Paths are absolute: joined to the root here, the URL is parsed once per request
        # instead of three times (httpx validates every character of each parse).
        self._root = str(client.base_url).rstrip("/")

    async def open(
        self,
        path: str,
        params: Iterable[tuple[str, str]],
        headers: Mapping[str, str],
    ) -> httpx.Response:
        """Send a GET and return the answer with its body not yet read."""
        query = list(params)
        url = httpx.URL(self._root + path, params=query) if query else httpx.URL(self._root + path)
        request = self._client.build_request("GET", url, headers=dict(headers))
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
        spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
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

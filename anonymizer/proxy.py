"""One request through the anonymizer: route, token, pseudonyms back to real ids, answer.

Order matters and fails closed: the route and its query arguments are checked, then the
token (a valid anonymized Orthanc-viewer share, else 403 before Orthanc is touched), then
every id in the path and the query is mapped back within the share (403 for any id the
share does not grant, see `resolution`), and only then is Orthanc asked. Its answer is
streamed (`stream`, `parts`), rewritten whole (`answers`) or rebuilt (`archives`).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response

from anonymizer.answers import accept_for, parse_json, rewrite, system_answer
from anonymizer.archives import archive_answer
from anonymizer.errors import RefusedError, UpstreamError
from anonymizer.index import Fetch, IndexCache
from anonymizer.multipart import PartHeaderFilter, boundary_of
from anonymizer.resolution import Resolved, resolve
from anonymizer.routes import TOKEN_ARG, Kind, RouteMatch, check_query, match_route
from anonymizer.streams import SECURITY_HEADERS, stream_through
from anonymizer.upstream import TOKEN_HEADERS, Limits, TokenCarrier, Upstream
from shared.grants import extract_token
from shared.models import ORTHANC_VIEWER_TYPES, Share
from shared.tokens import VerifiedTokenCache

__all__ = ["AnonymizingProxy"]

JSON = "application/json"
# Request headers a static file request forwards (conditional requests keep working).
STATIC_HEADERS = ("accept", "accept-encoding", "range", "if-none-match", "if-modified-since")


def _carrier(headers: Headers, query: QueryParams) -> TokenCarrier:
    forwarded = tuple((name, headers[name]) for name in TOKEN_HEADERS if name in headers)
    token_arg = tuple((k, v) for k, v in query.multi_items() if k.lower() == TOKEN_ARG)
    return TokenCarrier(forwarded, token_arg)


class AnonymizingProxy:
    """Serves the routes of `anonymizer.routes` for anonymized shares."""

    def __init__(
        self, upstream: Upstream, tokens: VerifiedTokenCache, indexes: IndexCache, limits: Limits
    ) -> None:
        self._upstream = upstream
        self._tokens = tokens
        self._indexes = indexes
        self._limits = limits

    async def handle(
        self, method: str, path: str, headers: Headers, query: QueryParams
    ) -> Response:
        """Answer one request; RefusedError and upstream errors go to the caller."""
        if any(segment in (".", "..") for segment in path.split("/")):
            raise RefusedError("dot segment in path")
        match = match_route(method, path)
        if match.kind is Kind.STATIC:
            return await self._static(match, headers)
        if match.kind is Kind.SYSTEM:
            return await self._system()
        args = check_query(match, query.multi_items())
        share = self._share(headers, query)
        carrier = _carrier(headers, query)
        index = self._indexes.get(share)
        resolved = await resolve(match, args, index, self._fetcher(carrier))
        query_out = [*resolved.query, *carrier.query]
        upstream_headers = dict(carrier.headers)
        if match.kind in (Kind.STREAM, Kind.PARTS):
            return await self._stream(match.kind, resolved, query_out, headers, upstream_headers)
        if match.kind is Kind.ARCHIVE:
            response = await self._upstream.open(resolved.path, query_out, upstream_headers)
            await self._upstream.check(response)
            name = "study" if "study_id" in match.groups else "series"
            return await archive_answer(response, index.pseudo, self._limits.archive_bytes, name)
        upstream_headers["Accept"] = accept_for(match.kind, headers)
        response = await self._upstream.open(resolved.path, query_out, upstream_headers)
        await self._upstream.check(response)
        content_type = response.headers.get("content-type", "")
        body = await self._upstream.read(response, self._limits.rewrite_bytes)
        return await rewrite(match.kind, resolved, content_type, body, index.pseudo)

    def _share(self, headers: Headers, query: QueryParams) -> Share:
        token = extract_token(
            headers.get("token"), headers.get("authorization"), query.get(TOKEN_ARG)
        )
        if token is None:
            raise RefusedError("no token")
        share = self._tokens.lookup(token)
        if not isinstance(share, Share):
            raise RefusedError(f"token {share.reason}")
        if not share.anonymized:
            raise RefusedError("share is not anonymized")
        if share.type not in ORTHANC_VIEWER_TYPES:
            raise RefusedError("share type does not open Orthanc")
        return share

    def _fetcher(self, carrier: TokenCarrier) -> Fetch:
        async def fetch(path: str, headers: Any) -> Any:
            accept = headers.get("Accept", JSON) if headers else JSON
            return await self._upstream.fetch_json(
                carrier, path, accept, self._limits.rewrite_bytes
            )

        return fetch

    async def _stream(
        self,
        kind: Kind,
        resolved: Resolved,
        query: list[tuple[str, str]],
        headers: Headers,
        upstream_headers: dict[str, str],
    ) -> Response:
        """Pixel data and images: streamed as they arrive (part headers rewritten)."""
        if "accept" in headers:
            upstream_headers["Accept"] = headers["accept"]
        if kind is Kind.STREAM:
            upstream_headers["Accept-Encoding"] = headers.get("accept-encoding", "identity")
            if "range" in headers:
                upstream_headers["Range"] = headers["range"]
        else:
            upstream_headers["Accept-Encoding"] = "identity"
        response = await self._upstream.open(resolved.path, query, upstream_headers)
        await self._upstream.check(response)
        if kind is Kind.PARTS:
            boundary = boundary_of(response.headers.get("content-type", ""))
            if boundary is not None:
                return stream_through(response, PartHeaderFilter(boundary))
            if "content-location" in response.headers:
                await response.aclose()
                raise UpstreamError("unexpected Content-Location on a single-part answer")
        return stream_through(response)

    async def _static(self, match: RouteMatch, headers: Headers) -> Response:
        forwarded = {name: headers[name] for name in STATIC_HEADERS if name in headers}
        forwarded.setdefault("accept-encoding", "identity")
        response = await self._upstream.open(match.path(), (), forwarded)
        if response.status_code == 304:
            await response.aclose()
            return Response(status_code=304, headers=SECURITY_HEADERS)
        await self._upstream.check(response)
        return stream_through(response)

    async def _system(self) -> Response:
        response = await self._upstream.open("/system", (), {"Accept": JSON})
        await self._upstream.check(response)
        body = await self._upstream.read(response, self._limits.rewrite_bytes)
        return system_answer(parse_json(body))

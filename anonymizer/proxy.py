"""One request through the anonymizer: route, token, pseudonyms back to real ids, answer.

Order matters and fails closed: the route and its query arguments are checked, then the
token (a valid anonymized Orthanc-viewer share, else 403 before Orthanc is touched), then
every id in the path and the query is mapped back within the share (403 for any id the
share does not grant), and only then is Orthanc asked.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import anyio
from starlette.background import BackgroundTask
from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response, StreamingResponse

from anonymizer.dicom_files import (
    ArchiveTooLargeError,
    NotDicomError,
    anonymize_archive,
    anonymize_dicom_multipart,
    anonymize_part10,
)
from anonymizer.dicom_json import STUDY_INSTANCE_UID, anonymize_dicom_json, uid_of
from anonymizer.errors import RefusedError, TooLargeError, UpstreamError
from anonymizer.index import Fetch, IndexCache, ShareIndex
from anonymizer.multipart import MultipartError, PartHeaderFilter, boundary_of
from anonymizer.orthanc_json import (
    anonymize_full_tags,
    anonymize_osimis_series,
    anonymize_resources,
    anonymize_simplified_tags,
)
from anonymizer.routes import Kind, RouteMatch, check_query, match_route
from anonymizer.upstream import (
    SECURITY_HEADERS,
    TOKEN_HEADERS,
    TokenCarrier,
    Upstream,
    iterate_file,
    stream_through,
)
from shared.grants import extract_token
from shared.models import ORTHANC_VIEWER_TYPES, Share
from shared.pseudonyms import Pseudonymizer
from shared.tokens import VerifiedTokenCache

__all__ = ["AnonymizingProxy", "Limits"]

logger = logging.getLogger(__name__)

STUDY_KEYS = ("studyinstanceuid", "0020000d")
SERIES_KEYS = ("seriesinstanceuid", "0020000e")
INSTANCE_KEYS = ("sopinstanceuid", "00080018")
DICOM_JSON = "application/dicom+json"
JSON = "application/json"
DICOM_MULTIPART = 'multipart/related; type="application/dicom"'
NO_STORE = {"Cache-Control": "no-store", **SECURITY_HEADERS}


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what is read to be rewritten."""

    rewrite_bytes: int
    archive_bytes: int


@dataclass(slots=True)
class Resolved:
    """A request mapped back to real ids: upstream path and query, granted studies."""

    path: str
    query: list[tuple[str, str]]
    studies: set[str]


def _split(value: str) -> tuple[list[str], str]:
    separator = "\\" if "\\" in value else ","
    return [v.strip() for v in value.split(separator) if v.strip()], separator


def _carrier(headers: Headers, query: QueryParams) -> TokenCarrier:
    forwarded = tuple((name, headers[name]) for name in TOKEN_HEADERS if name in headers)
    token_arg = tuple((k, v) for k, v in query.multi_items() if k.lower() == "token")
    return TokenCarrier(forwarded, token_arg)


# Keys of Orthanc's `/system` that describe the software, not the site.
SYSTEM_KEYS = frozenset(
    {
        "ApiVersion",
        "Version",
        "DatabaseVersion",
        "PluginsEnabled",
        "StorageAreaPlugin",
        "DatabaseBackendPlugin",
        "HasLabels",
        "Capabilities",
        "CheckRevisions",
        "IsHttpServerSecure",
    }
)


def _json_response(document: Any, media_type: str) -> Response:
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, media_type=media_type, headers=NO_STORE)


class AnonymizingProxy:
    """Serves the routes of `anonymizer.routes` for anonymized shares."""

    def __init__(
        self, upstream: Upstream, tokens: VerifiedTokenCache, indexes: IndexCache, limits: Limits
    ) -> None:
        self._upstream = upstream
        self._tokens = tokens
        self._indexes = indexes
        self._limits = limits

    # ------------------------------------------------------------------ entry point

    async def handle(
        self, method: str, path: str, headers: Headers, query: QueryParams
    ) -> Response:
        """Answer one request; RefusedError and upstream errors go to the app's handlers."""
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
        fetch = self._fetcher(carrier)
        resolved = await self._resolve(match, args, index, fetch)
        query_out = [*resolved.query, *carrier.query]
        return await self._dispatch(match, resolved, query_out, headers, carrier, index.pseudo)

    def _share(self, headers: Headers, query: QueryParams) -> Share:
        token = extract_token(
            headers.get("token"), headers.get("authorization"), query.get("token")
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

    # ------------------------------------------------------------------ ids

    async def _resolve(
        self, match: RouteMatch, args: list[tuple[str, str]], index: ShareIndex, fetch: Fetch
    ) -> Resolved:
        groups = match.groups
        real: dict[str, str] = {}
        studies: set[str] = set()
        study_index: int | None = None
        series_uid: str | None = None
        if "study" in groups:
            study_index = await index.study_by_uid(groups["study"], fetch)
            study_uid = index.study_uid(study_index) if study_index is not None else None
            if study_index is None or study_uid is None:
                raise RefusedError("study not in the share")
            real["study"] = study_uid
            studies.add(study_uid)
        if "series" in groups:
            assert study_index is not None
            series_uid = await index.series_uid(study_index, groups["series"], fetch)
            if series_uid is None:
                raise RefusedError("series not in the share")
            real["series"] = series_uid
        if "instance" in groups:
            assert study_index is not None and series_uid is not None
            found = await index.instance_uid(study_index, series_uid, groups["instance"], fetch)
            if found is None:
                raise RefusedError("instance not in the share")
            real["instance"] = found
        if "study_id" in groups:
            found_index = index.study_by_id(groups["study_id"])
            study_id = index.study_id(found_index) if found_index is not None else None
            if study_id is None:
                raise RefusedError("study not in the share")
            real["study_id"] = study_id
        if "series_id" in groups:
            found = await index.series_id(groups["series_id"], fetch)
            if found is None:
                raise RefusedError("series not in the share")
            real["series_id"] = found
        if "instance_id" in groups:
            found = await index.instance_id(groups["instance_id"], fetch)
            if found is None:
                raise RefusedError("instance not in the share")
            real["instance_id"] = found
        query: list[tuple[str, str]] = []
        if match.kind is Kind.QIDO:
            query = await self._qido_query(match, args, index, fetch, study_index, series_uid)
            studies.update(self._qido_studies(query))
            if not studies:
                raise RefusedError("QIDO without a study of the share")
        else:
            query = [(k, v) for k, v in args if k.lower() != "token"]
        return Resolved(match.path(**real), query, studies)

    @staticmethod
    def _qido_studies(query: list[tuple[str, str]]) -> set[str]:
        found: set[str] = set()
        for key, value in query:
            if key.lower() in STUDY_KEYS:
                found.update(_split(value)[0])
        return found

    async def _qido_query(
        self,
        match: RouteMatch,
        args: list[tuple[str, str]],
        index: ShareIndex,
        fetch: Fetch,
        study_index: int | None,
        series_uid: str | None,
    ) -> list[tuple[str, str]]:
        """QIDO arguments with real UIDs; filters on any other attribute are refused."""
        by_key = {k.lower(): (k, v) for k, v in args if k.lower() != "token"}
        out: list[tuple[str, str]] = []
        for key in STUDY_KEYS:
            if key in by_key:
                name, value = by_key[key]
                values, separator = _split(value)
                reals = []
                for item in values:
                    found = await index.study_by_uid(item, fetch)
                    uid = index.study_uid(found) if found is not None else None
                    if found is None or uid is None:
                        raise RefusedError("QIDO study not in the share")
                    reals.append(uid)
                    study_index = found if len(values) == 1 and study_index is None else study_index
                if not reals:
                    raise RefusedError("empty QIDO study filter")
                out.append((name, separator.join(reals)))
        for key in SERIES_KEYS:
            if key in by_key:
                if study_index is None:
                    raise RefusedError("QIDO series filter without one study")
                name, value = by_key[key]
                values, separator = _split(value)
                reals = []
                for item in values:
                    found_series = await index.series_uid(study_index, item, fetch)
                    if found_series is None:
                        raise RefusedError("QIDO series not in the share")
                    reals.append(found_series)
                series_uid = reals[0] if len(reals) == 1 and series_uid is None else series_uid
                out.append((name, separator.join(reals)))
        for key in INSTANCE_KEYS:
            if key in by_key:
                if study_index is None or series_uid is None:
                    raise RefusedError("QIDO instance filter without one series")
                name, value = by_key[key]
                values, separator = _split(value)
                reals = []
                for item in values:
                    found_instance = await index.instance_uid(study_index, series_uid, item, fetch)
                    if found_instance is None:
                        raise RefusedError("QIDO instance not in the share")
                    reals.append(found_instance)
                out.append((name, separator.join(reals)))
        for key, (name, value) in by_key.items():
            if key not in (*STUDY_KEYS, *SERIES_KEYS, *INSTANCE_KEYS):
                out.append((name, value))
        return out

    # ------------------------------------------------------------------ answers

    async def _static(self, match: RouteMatch, headers: Headers) -> Response:
        forwarded = {
            name: headers[name]
            for name in ("accept", "accept-encoding", "range", "if-none-match", "if-modified-since")
            if name in headers
        }
        forwarded.setdefault("accept-encoding", "identity")
        response = await self._upstream.open(match.path(), (), forwarded)
        if response.status_code == 304:
            await response.aclose()
            return Response(status_code=304, headers=SECURITY_HEADERS)
        await self._upstream.check(response)
        return stream_through(response)

    async def _system(self) -> Response:
        # Orthanc's `/system` also names the server and its DICOM identity (AET, port,
        # often the hospital's name): only what describes the software gets through.
        response = await self._upstream.open("/system", (), {"Accept": "application/json"})
        await self._upstream.check(response)
        body = await self._upstream.read(response, self._limits.rewrite_bytes)
        try:
            document = json.loads(body)
        except ValueError:
            raise UpstreamError("upstream answered invalid JSON") from None
        kept = {
            key: value
            for key, value in (document.items() if isinstance(document, dict) else ())
            if key in SYSTEM_KEYS
        }
        return _json_response(kept, "application/json")

    async def _dispatch(
        self,
        match: RouteMatch,
        resolved: Resolved,
        query: list[tuple[str, str]],
        headers: Headers,
        carrier: TokenCarrier,
        pseudo: Pseudonymizer,
    ) -> Response:
        kind = match.kind
        upstream_headers = dict(carrier.headers)
        if kind in (Kind.STREAM, Kind.PARTS):
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
        if kind is Kind.ARCHIVE:
            return await self._archive(match, resolved, query, upstream_headers, pseudo)
        accept = {
            Kind.QIDO: DICOM_JSON,
            Kind.METADATA: DICOM_JSON,
            Kind.DICOM_MULTIPART: self._dicom_accept(headers),
            Kind.DICOM_FILE: "application/dicom",
        }.get(kind, JSON)
        upstream_headers["Accept"] = accept
        response = await self._upstream.open(resolved.path, query, upstream_headers)
        await self._upstream.check(response)
        content_type = response.headers.get("content-type", "")
        body = await self._upstream.read(response, self._limits.rewrite_bytes)
        if kind is Kind.DICOM_MULTIPART:
            if not content_type.lower().startswith("multipart/related"):
                raise UpstreamError("WADO-RS answer is not multipart")
            anonymized, media = await self._run(
                anonymize_dicom_multipart, body, content_type, pseudo
            )
            return Response(anonymized, headers={**NO_STORE, "Content-Type": media})
        if kind is Kind.DICOM_FILE:
            anonymized = await self._run(anonymize_part10, body, pseudo)
            return Response(anonymized, media_type="application/dicom", headers=NO_STORE)
        try:
            document = json.loads(body)
        except ValueError:
            raise UpstreamError("upstream answered invalid JSON") from None
        return await self._json(kind, match, resolved, document, pseudo)

    async def _json(
        self,
        kind: Kind,
        match: RouteMatch,
        resolved: Resolved,
        document: Any,
        pseudo: Pseudonymizer,
    ) -> Response:
        if kind is Kind.QIDO:
            items = document if isinstance(document, list) else []
            granted = [
                item
                for item in items
                if uid_of(item, STUDY_INSTANCE_UID) in (None, *resolved.studies)
            ]
            result = await self._run(anonymize_dicom_json, granted, pseudo)
            return _json_response(result, DICOM_JSON)
        if kind is Kind.METADATA:
            result = await self._run(lambda: anonymize_dicom_json(document, pseudo, markers=True))
            return _json_response(result, DICOM_JSON)
        if kind is Kind.RESOURCE:
            return _json_response(await self._run(anonymize_resources, document, pseudo), JSON)
        if kind is Kind.OSIMIS_SERIES:
            return _json_response(await self._run(anonymize_osimis_series, document, pseudo), JSON)
        simplified = kind is Kind.SIMPLIFIED_TAGS or any(
            k.lower() == "simplify" for k, _ in resolved.query
        )
        transform = anonymize_simplified_tags if simplified else anonymize_full_tags
        result = await self._run(lambda: transform(document, pseudo, markers=True))
        return _json_response(result, JSON)

    @staticmethod
    def _dicom_accept(headers: Headers) -> str:
        accept = headers.get("accept", "")
        lowered = accept.lower()
        if lowered.startswith("multipart/related") and "application/dicom" in lowered:
            return accept
        return DICOM_MULTIPART

    async def _archive(
        self,
        match: RouteMatch,
        resolved: Resolved,
        query: list[tuple[str, str]],
        upstream_headers: dict[str, str],
        pseudo: Pseudonymizer,
    ) -> Response:
        response = await self._upstream.open(resolved.path, query, upstream_headers)
        await self._upstream.check(response)
        source = await self._upstream.spool(response, self._limits.archive_bytes)
        target: IO[bytes] | None = None
        try:
            target = await self._run(self._new_spool)
            await self._run(anonymize_archive, source, target, pseudo, self._limits.archive_bytes)
            target.seek(0)
        except ArchiveTooLargeError:
            if target is not None:
                target.close()
            raise TooLargeError("archive larger than the cap") from None
        except BaseException:
            if target is not None:
                target.close()
            raise
        finally:
            source.close()
        name = "study" if "study_id" in match.groups else "series"
        headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{name}.zip"'}
        return StreamingResponse(
            iterate_file(target),
            media_type="application/zip",
            headers=headers,
            background=BackgroundTask(target.close),
        )

    @staticmethod
    def _new_spool() -> IO[bytes]:
        return tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115

    @staticmethod
    async def _run(function: Callable[..., Any], *args: Any) -> Any:
        """Run a CPU-bound rewrite in a worker thread, mapping parse failures to 502."""
        try:
            return await anyio.to_thread.run_sync(function, *args)
        except (NotDicomError, MultipartError) as error:
            raise UpstreamError(f"cannot anonymize the answer: {error}") from None

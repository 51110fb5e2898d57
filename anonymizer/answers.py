"""Answers read whole and rewritten: DICOM JSON, Orthanc REST JSON, DICOM files, WADO-RS
multipart and Orthanc's `/system`.

The transforms are the pure functions of `dicom_json`, `orthanc_json` and `dicom_files`;
they run in a worker thread (a study's metadata takes a while), and what they cannot
parse is a 502, never passed on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
from starlette.datastructures import Headers
from starlette.responses import Response

from anonymizer.dicom_files import NotDicomError, anonymize_dicom_multipart, anonymize_part10
from anonymizer.dicom_json import STUDY_INSTANCE_UID, anonymize_dicom_json, uid_of
from anonymizer.errors import UpstreamError
from anonymizer.multipart import MultipartError
from anonymizer.orthanc_json import (
    anonymize_full_tags,
    anonymize_osimis_series,
    anonymize_resources,
    anonymize_simplified_tags,
)
from anonymizer.resolution import Resolved
from anonymizer.routes import Kind
from anonymizer.streams import SECURITY_HEADERS
from shared.pseudonyms import Pseudonymizer

__all__ = [
    "NO_STORE",
    "SYSTEM_KEYS",
    "accept_for",
    "json_response",
    "parse_json",
    "rewrite",
    "run_rewrite",
    "system_answer",
]

DICOM_JSON = "application/dicom+json"
JSON = "application/json"
DICOM_MULTIPART = 'multipart/related; type="application/dicom"'
NO_STORE = {"Cache-Control": "no-store", **SECURITY_HEADERS}

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


def json_response(document: Any, media_type: str) -> Response:
    """A compact JSON answer, not to be cached."""
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, media_type=media_type, headers=NO_STORE)


def parse_json(body: bytes) -> Any:
    """The decoded body; UpstreamError if it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        raise UpstreamError("upstream answered invalid JSON") from None


async def run_rewrite(function: Callable[..., Any], *args: Any) -> Any:
    """Run a CPU-bound rewrite in a worker thread, mapping parse failures to 502."""
    try:
        return await anyio.to_thread.run_sync(function, *args)
    except (NotDicomError, MultipartError) as error:
        raise UpstreamError(f"cannot anonymize the answer: {error}") from None


def accept_for(kind: Kind, headers: Headers) -> str:
    """The `Accept` asked of Orthanc for an answer of `kind` that is rewritten."""
    if kind in (Kind.QIDO, Kind.METADATA):
        return DICOM_JSON
    if kind is Kind.DICOM_FILE:
        return "application/dicom"
    if kind is Kind.DICOM_MULTIPART:
        accept = headers.get("accept", "")
        lowered = accept.lower()
        if lowered.startswith("multipart/related") and "application/dicom" in lowered:
            return accept
        return DICOM_MULTIPART
    return JSON


def system_answer(document: Any) -> Response:
    """Orthanc's `/system` with only the keys that describe the software.

    It also names the server and its DICOM identity (AET, port, often the hospital's
    name): none of that gets through.
    """
    kept = {
        key: value
        for key, value in (document.items() if isinstance(document, dict) else ())
        if key in SYSTEM_KEYS
    }
    return json_response(kept, JSON)


async def rewrite(
    kind: Kind, resolved: Resolved, content_type: str, body: bytes, pseudo: Pseudonymizer
) -> Response:
    """The de-identified answer of a rewritten route, from Orthanc's body."""
    if kind is Kind.DICOM_MULTIPART:
        if not content_type.lower().startswith("multipart/related"):
            raise UpstreamError("WADO-RS answer is not multipart")
        anonymized, media = await run_rewrite(anonymize_dicom_multipart, body, content_type, pseudo)
        return Response(anonymized, headers={**NO_STORE, "Content-Type": media})
    if kind is Kind.DICOM_FILE:
        anonymized = await run_rewrite(anonymize_part10, body, pseudo)
        return Response(anonymized, media_type="application/dicom", headers=NO_STORE)
    document = parse_json(body)
    if kind is Kind.QIDO:
        items = document if isinstance(document, list) else []
        granted = [
            item for item in items if uid_of(item, STUDY_INSTANCE_UID) in (None, *resolved.studies)
        ]
        return json_response(await run_rewrite(anonymize_dicom_json, granted, pseudo), DICOM_JSON)
    if kind is Kind.METADATA:
        result = await run_rewrite(lambda: anonymize_dicom_json(document, pseudo, markers=True))
        return json_response(result, DICOM_JSON)
    if kind is Kind.RESOURCE:
        return json_response(await run_rewrite(anonymize_resources, document, pseudo), JSON)
    if kind is Kind.OSIMIS_SERIES:
        return json_response(await run_rewrite(anonymize_osimis_series, document, pseudo), JSON)
    simplified = kind is Kind.SIMPLIFIED_TAGS or any(
        k.lower() == "simplify" for k, _ in resolved.query
    )
    transform = anonymize_simplified_tags if simplified else anonymize_full_tags
    result = await run_rewrite(lambda: transform(document, pseudo, markers=True))
    return json_response(result, JSON)

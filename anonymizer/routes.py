"""The routes the anonymizer serves, and what happens to each; everything else is refused.

Decided from what the Stone Web Viewer, OHIF and the Osimis viewer request. `stream`
passes the bytes through as they arrive; `parts` streams a multipart answer rewriting only
its part headers (Orthanc names the real UIDs in each part's Content-Location); the other
kinds read the answer (up to MAX_REWRITE_BYTES) and rewrite it.

| route (GET only)                                                    | kind            |
|---------------------------------------------------------------------|-----------------|
| /health                                                             | local           |
| /system (Stone reads it; its preset leaves it unchecked)            | system (keys    |
|                                                                     | kept: versions, |
|                                                                     | capabilities)   |
| /stone-webviewer/{file}, /osimis-viewer/app/{file},                 | static (stream, |
| /osimis-viewer/config.js, /ohif/{file} (not /ohif/dicom-json...),   | no token)       |
| /volview/{file}                                                     |                 |
| /dicom-web/{studies,series,instances}?StudyInstanceUID=... (QIDO)   | qido            |
| /dicom-web/studies/{s}/{series,instances}                            | qido            |
| /dicom-web/studies/{s}/series/{se}/instances                         | qido            |
| /dicom-web/studies/{s}[/series/{se}[/instances/{i}]]/metadata        | metadata        |
| /dicom-web/studies/{s}[/series/{se}[/instances/{i}]] (WADO-RS)       | dicom-multipart |
| /dicom-web/studies/{s}/series/{se}/instances/{i}/frames/{n[,m...]}   | parts           |
| /dicom-web/.../instances/{i}/bulk/{tag} (pixel-like tags only)       | parts           |
| /dicom-web/studies/{s}[/series/{se}[/instances/{i}[/frames/{n}]]]/   | stream          |
|   {rendered,thumbnail}                                              |                 |
| /studies/{id}, /studies/{id}/{series,instances}, /series/{id},      | resource        |
| /series/{id}/{instances,study}, /instances/{id},                    |                 |
| /instances/{id}/{study,series}                                      |                 |
| /instances/{id}/tags[?simplify], /instances/{id}/simplified-tags    | tags            |
| /instances/{id}/file                                                | dicom-file      |
| /instances/{id}/preview, /instances/{id}/rendered,                  | stream          |
| /instances/{id}/frames/{n}/{preview,rendered}                       |                 |
| /studies/{id}/archive, /series/{id}/archive                         | archive (zip)   |
| /osimis-viewer/series/{id}                                          | osimis-series   |
| /osimis-viewer/images/{id}/{frame}/{quality}                        | stream          |
| anything else, any other method, any unlisted query argument        | 403             |

Refused on purpose: `/patients/...` and study lists (other studies of the patient),
`/instances/{id}/pdf` and encapsulated documents (free text that cannot be anonymized),
`/studies/{id}/media` (DICOMDIR), `/osimis-viewer/studies/{id}/annotations` (free text),
`/studies/{id}/ohif-dicom-json` (OHIF's JSON data source: use its DICOMweb one),
every write, `/tools/...` and the rest of Orthanc's API.

`{id}` is an Orthanc id (the keyed pseudonym, or the real id of a study the token names);
`{s}`, `{se}`, `{i}` are UIDs (likewise).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from anonymizer.errors import RefusedError
from anonymizer.profile import BINARY_VRS, Action, action_for, base_vr

__all__ = ["TOKEN_ARG", "Kind", "RouteMatch", "check_query", "match_route"]


class Kind(StrEnum):
    """What the anonymizer does with a route's answer."""

    STATIC = "static"
    SYSTEM = "system"
    STREAM = "stream"
    PARTS = "parts"
    QIDO = "qido"
    METADATA = "metadata"
    DICOM_MULTIPART = "dicom-multipart"
    DICOM_FILE = "dicom-file"
    RESOURCE = "resource"
    TAGS = "tags"
    SIMPLIFIED_TAGS = "simplified-tags"
    ARCHIVE = "archive"
    OSIMIS_SERIES = "osimis-series"


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """A matched route: its kind, the ids in its path and the query arguments it accepts."""

    kind: Kind
    groups: dict[str, str]
    allowed_args: frozenset[str]
    template: str

    def path(self, **real: str) -> str:
        """The upstream path, with real ids in place of the path's."""
        values = {**self.groups, **real}
        return self.template.format(**values)


_UID = r"[0-9][0-9.]{0,63}"
_OID = r"[0-9a-f]{8}(?:-[0-9a-f]{8}){4}"
_FILE = r"(?:[A-Za-z0-9_~+-][A-Za-z0-9._~+-]*/){0,8}[A-Za-z0-9_~+-][A-Za-z0-9._~+-]*"
_DW = "/dicom-web"
_S = rf"/studies/(?P<study>{_UID})"
_SE = rf"/series/(?P<series>{_UID})"
_I = rf"/instances/(?P<instance>{_UID})"

TOKEN_ARG = "token"
QIDO_ARGS = frozenset(
    {
        "studyinstanceuid",
        "0020000d",
        "seriesinstanceuid",
        "0020000e",
        "sopinstanceuid",
        "00080018",
        "includefield",
        "limit",
        "offset",
        "fuzzymatching",
    }
)
RENDER_ARGS = frozenset({"viewport", "quality", "window"})
PREVIEW_ARGS = frozenset({"quality", "smooth", "returnunsupportedimage"})
NONE: frozenset[str] = frozenset()


def _route(
    pattern: str, kind: Kind, template: str, args: frozenset[str] = NONE
) -> tuple[re.Pattern[str], Kind, str, frozenset[str]]:
    return re.compile(pattern), kind, template, args


_ROUTES: tuple[tuple[re.Pattern[str], Kind, str, frozenset[str]], ...] = (
    # Viewers' own files: no patient data, no token (a browser loads them without one).
    _route(rf"^/stone-webviewer/(?P<file>{_FILE})$", Kind.STATIC, "/stone-webviewer/{file}"),
    _route(rf"^/osimis-viewer/app/(?P<file>{_FILE})$", Kind.STATIC, "/osimis-viewer/app/{file}"),
    _route(r"^/osimis-viewer/config\.js$", Kind.STATIC, "/osimis-viewer/config.js"),
    _route(rf"^/ohif/(?!dicom-json)(?P<file>{_FILE})$", Kind.STATIC, "/ohif/{file}"),
    _route(rf"^/volview/(?P<file>{_FILE})$", Kind.STATIC, "/volview/{file}"),
    # What the viewer checks of the server: only version and capability keys get through.
    _route(r"^/system$", Kind.SYSTEM, "/system"),
    # DICOMweb: QIDO-RS.
    _route(
        rf"^{_DW}/(?P<level>studies|series|instances)$", Kind.QIDO, f"{_DW}/{{level}}", QIDO_ARGS
    ),
    _route(
        rf"^{_DW}{_S}/(?P<level>series|instances)$",
        Kind.QIDO,
        f"{_DW}/studies/{{study}}/{{level}}",
        QIDO_ARGS,
    ),
    _route(
        rf"^{_DW}{_S}{_SE}/instances$",
        Kind.QIDO,
        f"{_DW}/studies/{{study}}/series/{{series}}/instances",
        QIDO_ARGS,
    ),
    # DICOMweb: WADO-RS metadata, instances, frames, bulk data, rendered.
    _route(rf"^{_DW}{_S}/metadata$", Kind.METADATA, f"{_DW}/studies/{{study}}/metadata"),
    _route(
        rf"^{_DW}{_S}{_SE}/metadata$",
        Kind.METADATA,
        f"{_DW}/studies/{{study}}/series/{{series}}/metadata",
    ),
    _route(
        rf"^{_DW}{_S}{_SE}{_I}/metadata$",
        Kind.METADATA,
        f"{_DW}/studies/{{study}}/series/{{series}}/instances/{{instance}}/metadata",
    ),
    _route(rf"^{_DW}{_S}$", Kind.DICOM_MULTIPART, f"{_DW}/studies/{{study}}"),
    _route(
        rf"^{_DW}{_S}{_SE}$", Kind.DICOM_MULTIPART, f"{_DW}/studies/{{study}}/series/{{series}}"
    ),
    _route(
        rf"^{_DW}{_S}{_SE}{_I}$",
        Kind.DICOM_MULTIPART,
        f"{_DW}/studies/{{study}}/series/{{series}}/instances/{{instance}}",
    ),
    _route(
        rf"^{_DW}{_S}{_SE}{_I}/frames/(?P<frames>[0-9]{{1,6}}(?:,[0-9]{{1,6}}){{0,255}})$",
        Kind.PARTS,
        f"{_DW}/studies/{{study}}/series/{{series}}/instances/{{instance}}/frames/{{frames}}",
    ),
    _route(
        rf"^{_DW}{_S}{_SE}{_I}/bulk/(?P<bulk>[0-9A-Fa-f]{{8}}(?:/[0-9]{{1,6}}/[0-9A-Fa-f]{{8}}){{0,8}})$",
        Kind.PARTS,
        f"{_DW}/studies/{{study}}/series/{{series}}/instances/{{instance}}/bulk/{{bulk}}",
    ),
    _route(
        rf"^{_DW}{_S}/(?P<render>rendered|thumbnail)$",
        Kind.STREAM,
        f"{_DW}/studies/{{study}}/{{render}}",
        RENDER_ARGS,
    ),
    _route(
        rf"^{_DW}{_S}{_SE}/(?P<render>rendered|thumbnail)$",
        Kind.STREAM,
        f"{_DW}/studies/{{study}}/series/{{series}}/{{render}}",
        RENDER_ARGS,
    ),
    _route(
        rf"^{_DW}{_S}{_SE}{_I}/(?P<render>rendered|thumbnail)$",
        Kind.STREAM,
        f"{_DW}/studies/{{study}}/series/{{series}}/instances/{{instance}}/{{render}}",
        RENDER_ARGS,
    ),
    _route(
        rf"^{_DW}{_S}{_SE}{_I}/frames/(?P<frame>[0-9]{{1,6}})/(?P<render>rendered|thumbnail)$",
        Kind.STREAM,
        f"{_DW}/studies/{{study}}/series/{{series}}/instances/{{instance}}/frames/{{frame}}/{{render}}",
        RENDER_ARGS,
    ),
    # Orthanc's REST API, as the Osimis viewer (and Stone in Orthanc mode) use it.
    _route(rf"^/studies/(?P<study_id>{_OID})$", Kind.RESOURCE, "/studies/{study_id}"),
    _route(
        rf"^/studies/(?P<study_id>{_OID})/(?P<child>series|instances)$",
        Kind.RESOURCE,
        "/studies/{study_id}/{child}",
    ),
    _route(rf"^/series/(?P<series_id>{_OID})$", Kind.RESOURCE, "/series/{series_id}"),
    _route(
        rf"^/series/(?P<series_id>{_OID})/(?P<child>instances|study)$",
        Kind.RESOURCE,
        "/series/{series_id}/{child}",
    ),
    _route(rf"^/instances/(?P<instance_id>{_OID})$", Kind.RESOURCE, "/instances/{instance_id}"),
    _route(
        rf"^/instances/(?P<instance_id>{_OID})/(?P<child>study|series)$",
        Kind.RESOURCE,
        "/instances/{instance_id}/{child}",
    ),
    _route(
        rf"^/instances/(?P<instance_id>{_OID})/tags$",
        Kind.TAGS,
        "/instances/{instance_id}/tags",
        frozenset({"simplify"}),
    ),
    _route(
        rf"^/instances/(?P<instance_id>{_OID})/simplified-tags$",
        Kind.SIMPLIFIED_TAGS,
        "/instances/{instance_id}/simplified-tags",
    ),
    _route(
        rf"^/instances/(?P<instance_id>{_OID})/file$",
        Kind.DICOM_FILE,
        "/instances/{instance_id}/file",
    ),
    _route(
        rf"^/instances/(?P<instance_id>{_OID})/(?P<image>preview|rendered)$",
        Kind.STREAM,
        "/instances/{instance_id}/{image}",
        PREVIEW_ARGS,
    ),
    _route(
        rf"^/instances/(?P<instance_id>{_OID})/frames/(?P<frame>[0-9]{{1,6}})/(?P<image>preview|rendered)$",
        Kind.STREAM,
        "/instances/{instance_id}/frames/{frame}/{image}",
        PREVIEW_ARGS,
    ),
    _route(
        rf"^/studies/(?P<study_id>{_OID})/archive$", Kind.ARCHIVE, "/studies/{study_id}/archive"
    ),
    _route(
        rf"^/series/(?P<series_id>{_OID})/archive$", Kind.ARCHIVE, "/series/{series_id}/archive"
    ),
    # The Osimis viewer's own routes.
    _route(
        rf"^/osimis-viewer/series/(?P<series_id>{_OID})$",
        Kind.OSIMIS_SERIES,
        "/osimis-viewer/series/{series_id}",
    ),
    _route(
        rf"^/osimis-viewer/images/(?P<instance_id>{_OID})/(?P<frame>[0-9]{{1,6}})/"
        r"(?P<quality>low|medium|high|pixeldata)-quality$",
        Kind.STREAM,
        "/osimis-viewer/images/{instance_id}/{frame}/{quality}-quality",
    ),
)


def _bulk_allowed(bulk: str) -> bool:
    """Bulk data may be fetched only for binary attributes that the profile keeps."""
    for part in bulk.split("/")[::2]:
        tag = int(part, 16)
        vr = base_vr(None, tag)
        if vr not in BINARY_VRS or action_for(tag, vr) is not Action.KEEP:
            return False
    return True


def match_route(method: str, path: str) -> RouteMatch:
    """The route a request takes; RefusedError if the anonymizer does not serve it."""
    if method != "GET":
        raise RefusedError("method not allowed")
    for pattern, kind, template, args in _ROUTES:
        found = pattern.match(path)
        if found is None:
            continue
        groups = {k: v for k, v in found.groupdict().items() if v is not None}
        if "bulk" in groups and not _bulk_allowed(groups["bulk"]):
            raise RefusedError("bulk data of an attribute that is not kept")
        return RouteMatch(kind, groups, args, template)
    raise RefusedError("unknown route")


def check_query(match: RouteMatch, items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The query arguments to forward; RefusedError for any the route does not accept."""
    seen: set[str] = set()
    checked = []
    for name, value in items:
        key = name.lower()
        if key != TOKEN_ARG and key not in match.allowed_args:
            raise RefusedError("query argument not accepted")
        if key in seen:
            raise RefusedError("repeated query argument")
        seen.add(key)
        checked.append((name, value))
    return checked

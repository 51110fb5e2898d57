"""The route table: what is served, with which arguments; everything else is refused."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from anonymizer.errors import RefusedError
from anonymizer.routes import Kind, check_query, match_route

S = "1.2.3"
SE = "1.2.4"
I = "1.2.5"  # noqa: E741
OID = "0195f13e-4afe6822-8b494cc4-5162c50d-0daf66aa"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/stone-webviewer/index.html", Kind.STATIC),
        ("/stone-webviewer/img/logo.png", Kind.STATIC),
        ("/osimis-viewer/app/index.html", Kind.STATIC),
        ("/osimis-viewer/config.js", Kind.STATIC),
        ("/ohif/viewer/index.html", Kind.STATIC),
        ("/volview/index.html", Kind.STATIC),
        ("/dicom-web/studies", Kind.QIDO),
        ("/dicom-web/series", Kind.QIDO),
        (f"/dicom-web/studies/{S}/series", Kind.QIDO),
        (f"/dicom-web/studies/{S}/series/{SE}/instances", Kind.QIDO),
        (f"/dicom-web/studies/{S}/metadata", Kind.METADATA),
        (f"/dicom-web/studies/{S}/series/{SE}/metadata", Kind.METADATA),
        (f"/dicom-web/studies/{S}/series/{SE}/instances/{I}/metadata", Kind.METADATA),
        (f"/dicom-web/studies/{S}/series/{SE}/instances/{I}", Kind.DICOM_MULTIPART),
        (f"/dicom-web/studies/{S}", Kind.DICOM_MULTIPART),
        (f"/dicom-web/studies/{S}/series/{SE}/instances/{I}/frames/1", Kind.PARTS),
        (f"/dicom-web/studies/{S}/series/{SE}/instances/{I}/frames/1,2,3", Kind.PARTS),
        (f"/dicom-web/studies/{S}/series/{SE}/instances/{I}/bulk/7fe00010", Kind.PARTS),
        (f"/dicom-web/studies/{S}/series/{SE}/instances/{I}/rendered", Kind.STREAM),
        (f"/dicom-web/studies/{S}/series/{SE}/rendered", Kind.STREAM),
        (f"/dicom-web/studies/{S}/series/{SE}/thumbnail", Kind.STREAM),
        (f"/dicom-web/studies/{S}/series/{SE}/instances/{I}/frames/2/rendered", Kind.STREAM),
        (f"/studies/{OID}", Kind.RESOURCE),
        (f"/studies/{OID}/series", Kind.RESOURCE),
        (f"/series/{OID}/study", Kind.RESOURCE),
        (f"/instances/{OID}/study", Kind.RESOURCE),
        (f"/instances/{OID}/tags", Kind.TAGS),
        (f"/instances/{OID}/simplified-tags", Kind.SIMPLIFIED_TAGS),
        (f"/instances/{OID}/file", Kind.DICOM_FILE),
        (f"/instances/{OID}/preview", Kind.STREAM),
        (f"/instances/{OID}/frames/0/preview", Kind.STREAM),
        (f"/studies/{OID}/archive", Kind.ARCHIVE),
        (f"/osimis-viewer/series/{OID}", Kind.OSIMIS_SERIES),
        (f"/osimis-viewer/images/{OID}/0/high-quality", Kind.STREAM),
    ],
)
def test_served_routes(path: str, kind: Kind) -> None:
    assert match_route("GET", path).kind is kind


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/system/",
        "/studies",
        "/studies/",
        "/patients/" + OID,
        "/tools/find",
        f"/instances/{OID}/pdf",
        f"/instances/{OID}/content/0010-0010",
        f"/studies/{OID}/media",
        f"/studies/{OID}/shared-tags",
        f"/osimis-viewer/studies/{OID}/annotations",
        "/ohif/dicom-json/studies",
        f"/studies/{OID}/ohif-dicom-json",
        f"/dicom-web/studies/{S}/series/{SE}/instances/{I}/bulk/00100010",
        f"/dicom-web/studies/{S}/series/{SE}/instances/{I}/bulk/00420011",
        f"/dicom-web/studies/{S}/series/{SE}/instances/{I}/frames/x",
        "/dicom-web/studies/not-a-uid/metadata",
        "/dicom-web/servers",
        "/stone-webviewer/",
        "/stone-webviewer/a b.html",
        "/wado",
        f"/STUDIES/{OID}",
    ],
)
def test_refused_routes(path: str) -> None:
    with pytest.raises(RefusedError):
        match_route("GET", path)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])
def test_only_get_is_served(method: str) -> None:
    with pytest.raises(RefusedError):
        match_route(method, f"/dicom-web/studies/{S}/metadata")


def test_query_whitelist_per_route() -> None:
    qido = match_route("GET", "/dicom-web/studies")
    metadata = match_route("GET", f"/dicom-web/studies/{S}/metadata")

    assert check_query(qido, [("0020000D", S), ("includefield", "00081030"), ("token", "t")]) == [
        ("0020000D", S),
        ("includefield", "00081030"),
        ("token", "t"),
    ]
    assert check_query(metadata, [("token", "t")]) == [("token", "t")]
    for args in (
        [("PatientName", "DOE*")],
        [("00100010", "DOE*")],
        [("StudyDate", "20240101")],
        [("format", "xml")],
        [("0020000D", S), ("0020000D", S)],
    ):
        with pytest.raises(RefusedError):
            check_query(qido, args)
    for args in ([("includefield", "all")], [("accept", "application/dicom+xml")]):
        with pytest.raises(RefusedError):
            check_query(metadata, args)
    with pytest.raises(RefusedError):
        check_query(match_route("GET", f"/instances/{OID}/tags"), [("short", "")])


def test_upstream_path_takes_the_real_ids() -> None:
    match = match_route("GET", "/dicom-web/studies/2.25.1/series/2.25.2/instances/2.25.3/frames/1")

    assert match.path(study=S, series=SE, instance=I) == (
        f"/dicom-web/studies/{S}/series/{SE}/instances/{I}/frames/1"
    )


# What OHIF 3.12 sends to open a study (tests/e2e/test_ohif.py observes it for real).
OHIF_REQUESTS = [
    (
        "/dicom-web/studies",
        "limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060"
        f"&StudyInstanceUID={S}",
        Kind.QIDO,
    ),
    (
        f"/dicom-web/studies/{S}/series",
        "includefield=00080021,00080031,0008103E,00200011",
        Kind.QIDO,
    ),
    (f"/dicom-web/studies/{S}/series/{SE}/metadata", "", Kind.METADATA),
    (f"/dicom-web/studies/{S}/series/{SE}/instances/{I}/frames/1", "", Kind.PARTS),
]


@pytest.mark.parametrize(("path", "query", "kind"), OHIF_REQUESTS)
def test_ohif_requests_are_served(path: str, query: str, kind: Kind) -> None:
    match = match_route("GET", path)
    args = parse_qsl(query)
    assert match.kind is kind
    assert check_query(match, args) == args


def test_ohif_lookup_of_the_patients_other_studies_is_refused() -> None:
    # Sent when the study has a PatientID, which the anonymizer empties; refused anyway.
    qido = match_route("GET", "/dicom-web/studies")
    with pytest.raises(RefusedError):
        check_query(qido, [("00100020", "PID"), ("limit", "101"), ("offset", "0")])

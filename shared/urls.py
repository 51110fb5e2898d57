"""Building the links a share opens: the landing link and the viewers' own URLs.

Roots come from settings, which guarantee an absolute URL ending with `/` and without a
query string; joining is then plain concatenation (what `urljoin` would give, for less).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from urllib.parse import quote

from shared.models import Share, ShareType

__all__ = ["OhifDataSource", "landing_url", "meddream_url", "query", "viewer_url"]


class OhifDataSource(StrEnum):
    """How the OHIF viewer reads a study from Orthanc (setting `OHIF_DATA_SOURCE`)."""

    DICOM_WEB = "dicom-web"  # DICOMweb, by StudyInstanceUID
    DICOM_JSON = "dicom-json"  # the OHIF plugin's `/studies/{id}/ohif-dicom-json`, one study


def query(**params: str) -> str:
    """A query string whose values are percent-encoded, commas kept for id lists."""
    return "&".join(f"{name}={quote(value, safe=',')}" for name, value in params.items())


def _joined(values: Iterable[str | None]) -> str | None:
    items = list(values)
    if not items or any(not v for v in items):
        return None
    return ",".join(v for v in items if v)


def landing_url(landing_root: str, token: str) -> str:
    """The link sent to a patient: the landing page with the token."""
    return landing_root + "?" + query(token=token)


def meddream_url(meddream_root: str, study_uids: Iterable[str], meddream_token: str) -> str:
    """MedDream's viewer opening the studies with a short-lived MedDream token."""
    return meddream_root + "?" + query(study=",".join(study_uids), token=meddream_token)


def viewer_url(
    share: Share,
    token: str,
    root: str | None,
    *,
    ohif_data_source: OhifDataSource = OhifDataSource.DICOM_WEB,
) -> str | None:
    """The viewer URL that opens an Orthanc-viewer share, or None if it cannot be built.

    `root` is the public root of the viewer: for OHIF shares OHIF's own root, otherwise
    the Orthanc that serves the share (the anonymized one for anonymized shares).
    Instant links have no URL of their own: their caller builds it.
    """
    if root is None:
        return None
    if share.type is ShareType.STONE_VIEWER_PUBLICATION:
        uids = _joined(s.dicom_uid for s in share.studies)
        if uids is None:
            return None
        path = "stone-webviewer/index.html?"
        return root + path + query(study=uids, selectedStudies=uids, token=token)
    if share.type is ShareType.OSIMIS_VIEWER_PUBLICATION:
        ids = _joined(s.orthanc_id for s in share.studies)
        if ids is None:
            return None
        path = "osimis-viewer/app/index.html?"
        return root + path + query(pickableStudyIds=ids, selectedStudyIds=ids, token=token)
    if share.type is ShareType.OHIF_VIEWER_PUBLICATION:
        return _ohif_url(share, token, root, ohif_data_source)
    if share.type is ShareType.VOLVIEW_VIEWER_PUBLICATION:
        return _volview_url(share, token, root)
    return None


def _volview_url(share: Share, token: str, orthanc_root: str) -> str | None:
    ids = [s.orthanc_id for s in share.studies]
    if any(i is None for i in ids):
        return None
    # VolView's own list syntax, one archive per study, written as Orthanc Explorer 2
    # writes it (brackets and slashes literal); only the ids and the token are encoded.
    names = ",".join("archive.zip" for _ in ids)
    urls = ",".join(f"../studies/{quote(i or '', safe='')}/archive" for i in ids)
    return f"{orthanc_root}volview/index.html?names=[{names}]&urls=[{urls}]&{query(token=token)}"


def _ohif_url(share: Share, token: str, ohif_root: str, source: OhifDataSource) -> str | None:
    if source is OhifDataSource.DICOM_JSON:
        # The OHIF plugin's JSON describes one study: several cannot be opened this way.
        if len(share.studies) != 1 or share.studies[0].orthanc_id is None:
            return None
        study_json = f"../studies/{share.studies[0].orthanc_id}/ohif-dicom-json"
        return ohif_root + "viewer?" + query(url=study_json, token=token)
    uids = _joined(s.dicom_uid for s in share.studies)
    if uids is None:
        return None
    return ohif_root + "viewer?" + query(StudyInstanceUIDs=uids, token=token)

"""Building the links a share opens: the landing link and the viewers' own URLs.

Roots come from settings, which guarantee an absolute URL ending with `/` and without a
query string; joining is then plain concatenation (what `urljoin` would give, for less).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from shared.models import Share, ShareType

__all__ = ["landing_url", "meddream_url", "query", "viewer_url"]


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


def viewer_url(share: Share, token: str, orthanc_root: str | None) -> str | None:
    """The viewer URL that opens an Orthanc-viewer share, or None if it cannot be built.

    `orthanc_root` is the public root of the Orthanc that serves the share (the
    anonymized one for anonymized shares).
    """
    if orthanc_root is None:
        return None
    if share.type is ShareType.STONE_VIEWER_PUBLICATION:
        uids = _joined(s.dicom_uid for s in share.studies)
        if uids is None:
            return None
        path = "stone-webviewer/index.html?"
        return orthanc_root + path + query(study=uids, selectedStudies=uids, token=token)
    if share.type is ShareType.OSIMIS_VIEWER_PUBLICATION:
        ids = _joined(s.orthanc_id for s in share.studies)
        if ids is None:
            return None
        path = "osimis-viewer/app/index.html?"
        return orthanc_root + path + query(pickableStudyIds=ids, selectedStudyIds=ids, token=token)
    return None

"""The rules that decide whether a share token grants what the authorization plugin asks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.models import ORTHANC_VIEWER_TYPES, Share, StudyGrant
from shared.tokens import TokenProblem

__all__ = ["Decision", "GrantPolicy", "Reason", "decide", "extract_token", "study_matches"]


class Reason(StrEnum):
    """Why a validation was granted or denied (logged, never sent to the plugin)."""

    GRANTED = "granted"
    NO_TOKEN = "no token"
    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    METHOD = "method is not get"
    LEVEL = "level is not study"
    TYPE = "share type does not open Orthanc"
    SERVER = "wrong server"
    STUDY = "study not shared"


@dataclass(frozen=True, slots=True)
class Decision:
    """A validation answer: the grant, its reason, and how long the plugin may cache it."""

    granted: bool
    reason: Reason
    validity: int


@dataclass(frozen=True, slots=True)
class GrantPolicy:
    """The configuration validation needs."""

    server_identifier: str | None
    anonymized_server_identifier: str | None
    max_validity: int


def _strip_bearer(value: str) -> str:
    scheme, _, rest = value.strip().partition(" ")
    if rest and scheme.lower() == "bearer":
        return rest.strip()
    return value.strip()


def extract_token(
    token_header: str | None, authorization: str | None, token_value: str | None
) -> str | None:
    """The token of a validation call: `token` header, then a Bearer `Authorization`, then
    the body's `token-value` (where plugins with Basic credentials put the viewer's header)."""
    if token_header and token_header.strip():
        return _strip_bearer(token_header) or None
    if authorization:
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and rest.strip():
            return rest.strip()
    if token_value and token_value.strip():
        return _strip_bearer(token_value) or None
    return None


def study_matches(study: StudyGrant, dicom_uid: str | None, orthanc_id: str | None) -> bool:
    """True when every id both sides carry is equal and they share at least one."""
    shared = False
    if study.dicom_uid and dicom_uid:
        if study.dicom_uid != dicom_uid:
            return False
        shared = True
    if study.orthanc_id and orthanc_id:
        if study.orthanc_id != orthanc_id:
            return False
        shared = True
    return shared


def _server_allowed(share: Share, server_id: str | None, policy: GrantPolicy) -> bool:
    anonymized_id = policy.anonymized_server_identifier
    if share.anonymized:
        # Without a configured identifier an anonymized token could open the standard
        # server (the original's leak); refuse instead.
        return anonymized_id is not None and server_id == anonymized_id
    if anonymized_id is not None and server_id == anonymized_id:
        return False
    return policy.server_identifier is None or server_id == policy.server_identifier


def decide(
    share: Share | TokenProblem | None,
    *,
    revoked: bool,
    method: str | None,
    level: str | None,
    dicom_uid: str | None,
    orthanc_id: str | None,
    server_id: str | None,
    policy: GrantPolicy,
    now: float,
) -> Decision:
    """Decide one validation call; `share` is None when the call carried no token."""
    deny_validity = policy.max_validity
    if share is None:
        return Decision(False, Reason.NO_TOKEN, deny_validity)
    if isinstance(share, TokenProblem):
        reason = Reason.EXPIRED if share.reason == "expired" else Reason.INVALID
        return Decision(False, reason, deny_validity)
    if revoked:
        return Decision(False, Reason.REVOKED, deny_validity)
    if share.expired(now):
        return Decision(False, Reason.EXPIRED, deny_validity)
    if share.type not in ORTHANC_VIEWER_TYPES:
        return Decision(False, Reason.TYPE, deny_validity)
    # Share tokens are read-only and open studies only: no patient-wide or system access.
    if (method or "").lower() != "get":
        return Decision(False, Reason.METHOD, deny_validity)
    if (level or "").lower() != "study":
        return Decision(False, Reason.LEVEL, deny_validity)
    if not _server_allowed(share, server_id, policy):
        return Decision(False, Reason.SERVER, deny_validity)
    if not any(study_matches(s, dicom_uid or None, orthanc_id or None) for s in share.studies):
        return Decision(False, Reason.STUDY, deny_validity)
    validity = policy.max_validity
    if share.expires_at is not None:
        remaining = share.expires_at - now
        # The plugin must not keep a grant past the share's expiry; under a second
        # means "do not cache at all" (validity 0).
        validity = max(0, min(validity, int(remaining)))
    return Decision(True, Reason.GRANTED, validity)

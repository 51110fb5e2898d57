"""The validation rules: study matching, where the token is found, and the decision."""

from __future__ import annotations

from typing import Any

import pytest

from shared.grants import Decision, GrantPolicy, Reason, decide, extract_token, study_matches
from shared.models import Share, ShareType, StudyGrant
from shared.tokens import TokenProblem
from tests.factories import STUDY_ID, STUDY_UID
from tests.shared.conftest import NOW, make_share

UID_A, ID_A = "1.2.3.1", "aaaaaaaa-aaaaaaaa-aaaaaaaa-aaaaaaaa-aaaaaaaa"
UID_B, ID_B = "1.2.3.2", "bbbbbbbb-bbbbbbbb-bbbbbbbb-bbbbbbbb-bbbbbbbb"

STANDARD = "standard-server-id"
ANONYMIZED = "anonymized-server-id"
POLICY = GrantPolicy(
    server_identifier=STANDARD, anonymized_server_identifier=ANONYMIZED, max_validity=60
)


# --- study_matches ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("study", "dicom_uid", "orthanc_id", "expected"),
    [
        # both sides carry both ids
        (StudyGrant(UID_A, ID_A), UID_A, ID_A, True),
        (StudyGrant(UID_A, ID_A), UID_A, ID_B, False),
        (StudyGrant(UID_A, ID_A), UID_B, ID_A, False),
        (StudyGrant(UID_A, ID_A), UID_B, ID_B, False),
        # the request carries one id
        (StudyGrant(UID_A, ID_A), UID_A, None, True),
        (StudyGrant(UID_A, ID_A), None, ID_A, True),
        (StudyGrant(UID_A, ID_A), UID_B, None, False),
        (StudyGrant(UID_A, ID_A), None, ID_B, False),
        # the token carries one id
        (StudyGrant(UID_A, None), UID_A, ID_A, True),
        (StudyGrant(None, ID_A), UID_A, ID_A, True),
        (StudyGrant(UID_A, None), UID_B, ID_A, False),
        (StudyGrant(None, ID_A), UID_A, ID_B, False),
        # no id in common: nothing is shared
        (StudyGrant(UID_A, None), None, ID_A, False),
        (StudyGrant(None, ID_A), UID_A, None, False),
        (StudyGrant(UID_A, ID_A), None, None, False),
        # exact, case-sensitive comparison
        (StudyGrant(None, ID_A), None, ID_A.upper(), False),
        (StudyGrant(UID_A, None), UID_A + " ", None, False),
    ],
)
def test_study_matches(
    study: StudyGrant, dicom_uid: str | None, orthanc_id: str | None, expected: bool
) -> None:
    assert study_matches(study, dicom_uid, orthanc_id) is expected


# --- extract_token ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_header", "authorization", "token_value", "expected"),
    [
        # the `token` header wins over everything, with or without Bearer
        ("tok-header", "Bearer tok-auth", "tok-value", "tok-header"),
        ("Bearer tok-header", None, None, "tok-header"),
        ("bearer tok-header", None, None, "tok-header"),
        ("  tok-header  ", None, None, "tok-header"),
        # then a Bearer Authorization header, scheme case-insensitive
        (None, "Bearer tok-auth", "tok-value", "tok-auth"),
        (None, "bearer tok-auth", None, "tok-auth"),
        (None, "BEARER tok-auth", None, "tok-auth"),
        (None, "  Bearer   tok-auth  ", None, "tok-auth"),
        ("   ", "Bearer tok-auth", None, "tok-auth"),
        # Basic credentials are the plugin's, never a token
        (None, "Basic c2hhcmUtdXNlcjpzaGFyZS1wYXNzd29yZA==", None, None),
        (None, "Basic c2hhcmUtdXNlcjpzaGFyZS1wYXNzd29yZA==", "Bearer tok-value", "tok-value"),
        (None, "Bearer", "tok-value", "tok-value"),
        (None, "Bearer   ", "tok-value", "tok-value"),
        (None, "tok-auth-without-scheme", None, None),
        # then the body's token-value, with or without Bearer
        (None, None, "tok-value", "tok-value"),
        (None, None, "Bearer tok-value", "tok-value"),
        (None, None, "bEaReR tok-value", "tok-value"),
        (None, None, " tok-value ", "tok-value"),
        # nothing at all
        (None, None, None, None),
        ("", "", "", None),
        ("  ", "  ", "  ", None),
    ],
)
def test_extract_token(
    token_header: str | None,
    authorization: str | None,
    token_value: str | None,
    expected: str | None,
) -> None:
    assert extract_token(token_header, authorization, token_value) == expected


# --- decide -----------------------------------------------------------------------------


def call(share: Share | TokenProblem | None, **overrides: Any) -> Decision:
    """A validation call from the standard server's plugin for STUDY_UID/STUDY_ID."""
    arguments: dict[str, Any] = {
        "revoked": False,
        "method": "get",
        "level": "study",
        "dicom_uid": STUDY_UID,
        "orthanc_id": STUDY_ID,
        "server_id": STANDARD,
        "policy": POLICY,
        "now": NOW,
    }
    arguments.update(overrides)
    return decide(share, **arguments)


def test_decide_grants_a_matching_study() -> None:
    assert call(make_share()) == Decision(True, Reason.GRANTED, 60)


def test_decide_without_token_denies() -> None:
    assert call(None) == Decision(False, Reason.NO_TOKEN, 60)


def test_decide_invalid_token_denies() -> None:
    assert call(TokenProblem("invalid")) == Decision(False, Reason.INVALID, 60)


def test_decide_expired_token_denies() -> None:
    assert call(TokenProblem("expired")) == Decision(False, Reason.EXPIRED, 60)


def test_decide_revoked_share_denies() -> None:
    assert call(make_share(), revoked=True) == Decision(False, Reason.REVOKED, 60)


@pytest.mark.parametrize("method", ["get", "GET", "Get"])
def test_decide_method_get_any_case_is_granted(method: str) -> None:
    assert call(make_share(), method=method).granted


@pytest.mark.parametrize("method", ["post", "put", "delete", "PUT", "head", "", None])
def test_decide_method_other_than_get_denies(method: str | None) -> None:
    assert call(make_share(), method=method) == Decision(False, Reason.METHOD, 60)


@pytest.mark.parametrize("level", ["study", "STUDY", "Study"])
def test_decide_level_study_any_case_is_granted(level: str) -> None:
    assert call(make_share(), level=level).granted


@pytest.mark.parametrize("level", ["patient", "system", "series", "instance", "", None])
def test_decide_level_other_than_study_denies(level: str | None) -> None:
    assert call(make_share(), level=level) == Decision(False, Reason.LEVEL, 60)


@pytest.mark.parametrize(
    "share_type", [ShareType.STONE_VIEWER_PUBLICATION, ShareType.OSIMIS_VIEWER_PUBLICATION]
)
def test_decide_orthanc_viewer_types_are_granted(share_type: ShareType) -> None:
    assert call(make_share(type=share_type)).granted


@pytest.mark.parametrize(
    "share_type", [ShareType.MEDDREAM_INSTANT_LINK, ShareType.MEDDREAM_VIEWER_PUBLICATION]
)
def test_decide_meddream_types_deny(share_type: ShareType) -> None:
    assert call(make_share(type=share_type)) == Decision(False, Reason.TYPE, 60)


def test_decide_study_not_in_the_share_denies() -> None:
    share = make_share(StudyGrant(UID_A, ID_A))

    assert call(share) == Decision(False, Reason.STUDY, 60)


def test_decide_any_study_of_the_share_is_granted() -> None:
    share = make_share(StudyGrant(UID_A, ID_A), StudyGrant(UID_B, ID_B))

    assert call(share, dicom_uid=UID_B, orthanc_id=ID_B).granted
    assert call(share, dicom_uid=UID_A, orthanc_id=ID_A).granted


def test_decide_mixed_pair_of_two_studies_denies() -> None:
    # The original granted A's dicom-uid with B's orthanc-id (protocol.md §8 #8).
    share = make_share(StudyGrant(UID_A, ID_A), StudyGrant(UID_B, ID_B))

    assert call(share, dicom_uid=UID_A, orthanc_id=ID_B) == Decision(False, Reason.STUDY, 60)


def test_decide_token_mixing_studies_with_one_id_each() -> None:
    # The original granted nothing for such a token (protocol.md §8 #8).
    share = make_share(StudyGrant(UID_A, None), StudyGrant(None, ID_B))

    assert call(share, dicom_uid=UID_A, orthanc_id=ID_A).granted
    assert call(share, dicom_uid=UID_B, orthanc_id=ID_B).granted
    assert not call(share, dicom_uid=UID_B, orthanc_id=ID_A).granted


def test_decide_only_dicom_uid_against_only_orthanc_id_denies() -> None:
    share = make_share(StudyGrant(None, ID_A))

    assert call(share, dicom_uid=UID_A, orthanc_id=None).reason is Reason.STUDY
    assert call(share, dicom_uid=UID_A, orthanc_id="").reason is Reason.STUDY


def test_decide_empty_ids_of_the_plugin_are_absent() -> None:
    # The plugin sends "" for a missing DICOM tag.
    share = make_share(StudyGrant(UID_A, ID_A))

    assert call(share, dicom_uid="", orthanc_id=ID_A).granted
    assert not call(share, dicom_uid="", orthanc_id="").granted


# --- server identifiers -----------------------------------------------------------------


def policy(standard: str | None, anonymized: str | None) -> GrantPolicy:
    return GrantPolicy(
        server_identifier=standard, anonymized_server_identifier=anonymized, max_validity=60
    )


def test_server_standard_identifier_is_enforced() -> None:
    share = make_share()

    assert call(share, server_id=STANDARD).granted
    assert call(share, server_id="some-other-orthanc") == Decision(False, Reason.SERVER, 60)
    assert call(share, server_id=None).reason is Reason.SERVER


def test_server_standard_token_without_configured_identifier_is_allowed() -> None:
    share = make_share()
    open_policy = policy(None, None)

    assert call(share, server_id=None, policy=open_policy).granted
    assert call(share, server_id="any-orthanc", policy=open_policy).granted


def test_server_standard_token_never_opens_the_anonymized_server() -> None:
    share = make_share()

    assert call(share, server_id=ANONYMIZED).reason is Reason.SERVER
    assert call(share, server_id=ANONYMIZED, policy=policy(None, ANONYMIZED)).reason is (
        Reason.SERVER
    )


def test_server_anonymized_token_opens_the_anonymized_server() -> None:
    share = make_share(anonymized=True)

    assert call(share, server_id=ANONYMIZED).granted
    assert call(share, server_id=ANONYMIZED, policy=policy(None, ANONYMIZED)).granted


def test_server_anonymized_token_never_opens_the_standard_server() -> None:
    share = make_share(anonymized=True)

    assert call(share, server_id=STANDARD) == Decision(False, Reason.SERVER, 60)
    assert call(share, server_id=None).reason is Reason.SERVER
    assert call(share, server_id="some-other-orthanc").reason is Reason.SERVER


def test_server_anonymized_token_needs_a_configured_identifier() -> None:
    # The original's leak (protocol.md §8 #7): without ANONYMIZED_SERVER_IDENTIFIER an
    # anonymized token opened the standard server with its raw data.
    share = make_share(anonymized=True)

    for configured in (policy(STANDARD, None), policy(None, None)):
        for server_id in (None, STANDARD, ANONYMIZED, ""):
            assert call(share, server_id=server_id, policy=configured).reason is Reason.SERVER


# --- validity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds_left", "validity"),
    [
        (3600.0, 60),
        (60.0, 60),
        (59.99, 59),
        (30.5, 30),
        (1.0, 1),
        (0.999, 0),
        (0.001, 0),
    ],
)
def test_validity_never_outlives_the_share(seconds_left: float, validity: int) -> None:
    share = make_share(expires_at=NOW + seconds_left)

    decision = call(share)

    assert decision == Decision(True, Reason.GRANTED, validity)


def test_validity_is_max_validity_when_the_share_never_expires() -> None:
    share = make_share(expires_at=None)

    assert call(share, policy=policy(STANDARD, None)).validity == 60
    unlimited = GrantPolicy(STANDARD, None, max_validity=3600)
    assert call(share, policy=unlimited).validity == 3600


def test_validity_zero_max_validity_disables_caching() -> None:
    share = make_share(expires_at=NOW + 3600)

    assert call(share, policy=GrantPolicy(STANDARD, None, max_validity=0)).validity == 0


def test_decide_share_expired_at_decision_time_denies() -> None:
    # A share reaching `decide` after its expiry (the clock moved on since the token was
    # looked up) must be denied, not granted "for this one request".
    share = make_share(expires_at=NOW)

    for now in (NOW, NOW + 0.5, NOW + 3600):
        decision = call(share, now=now)
        assert not decision.granted
        assert decision.reason is Reason.EXPIRED

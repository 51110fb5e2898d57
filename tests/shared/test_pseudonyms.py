"""Pseudonyms: deterministic per share, unlinkable across shares, valid, and one-way."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.models import Share, ShareType, StudyGrant
from shared.pseudonyms import (
    MAX_DATE_SHIFT_DAYS,
    MIN_DATE_SHIFT_DAYS,
    Pseudonymizer,
    anonymized_viewer_url,
    pseudonymizer_for,
    pseudonymous_share,
    share_scope,
)
from tests.anonymizer.conftest import ANONYMIZATION_KEY, STUDY_ID, STUDY_UID, mint, pseudonymizer

UID_SYNTAX = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
ORTHANC_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")
REAL_UIDS = [
    STUDY_UID,
    "1.2.826.0.1.3680043.8.498.17097291152804418465751201448542143044",
    "2.25.339468392483429923450237108416155443201",
    "1.3.6.1.4.1.14519.5.2.1.6279.6001.100225287222365663678666836860",
]


@pytest.mark.parametrize("real", REAL_UIDS)
def test_uid_pseudonym_is_a_valid_uid_of_at_most_64_characters(real: str) -> None:
    pseudonym = pseudonymizer().uid(real)

    assert pseudonym.startswith("2.25.")
    assert UID_SYNTAX.match(pseudonym)
    assert len(pseudonym) <= 64
    assert pseudonym != real


def test_same_share_same_pseudonyms() -> None:
    first, second = pseudonymizer("share-1"), pseudonymizer("share-1")

    assert [first.uid(u) for u in REAL_UIDS] == [second.uid(u) for u in REAL_UIDS]
    assert first.orthanc_id(STUDY_ID) == second.orthanc_id(STUDY_ID)
    assert first.date_shift_days == second.date_shift_days


def test_other_share_other_pseudonyms() -> None:
    one, other = pseudonymizer("share-1"), pseudonymizer("share-2")

    assert all(one.uid(u) != other.uid(u) for u in REAL_UIDS)
    assert one.orthanc_id(STUDY_ID) != other.orthanc_id(STUDY_ID)


def test_other_key_other_pseudonyms() -> None:
    one = pseudonymizer("share-1")
    other = Pseudonymizer(b"another-anonymization-key-0123456789abcdef", "share-1")

    assert one.uid(STUDY_UID) != other.uid(STUDY_UID)


def test_distinct_uids_get_distinct_pseudonyms() -> None:
    pseudo = pseudonymizer()
    reals = [f"1.2.3.{n}" for n in range(2000)]

    assert len({pseudo.uid(u) for u in reals}) == len(reals)


def test_orthanc_id_pseudonym_has_orthancs_shape() -> None:
    pseudonym = pseudonymizer().orthanc_id(STUDY_ID)

    assert ORTHANC_ID.match(pseudonym)
    assert pseudonym != STUDY_ID


def test_uid_and_orthanc_id_pseudonyms_are_separate_domains() -> None:
    pseudo = pseudonymizer()

    assert pseudo.uid(STUDY_ID).replace(".", "") != pseudo.orthanc_id(STUDY_ID).replace("-", "")


@pytest.mark.parametrize(
    ("value", "real"),
    [
        ("20240101", date(2024, 1, 1)),
        ("2024.01.01", date(2024, 1, 1)),
        ("19991231", date(1999, 12, 31)),
    ],
)
def test_dates_move_back_by_the_shares_offset(value: str, real: date) -> None:
    pseudo = pseudonymizer()
    shifted = pseudo.shift_date(value)

    assert shifted is not None
    moved = date(int(shifted[:4]), int(shifted[4:6]), int(shifted[6:]))
    assert (real - moved).days == pseudo.date_shift_days
    assert MIN_DATE_SHIFT_DAYS <= pseudo.date_shift_days < MAX_DATE_SHIFT_DAYS


def test_intervals_between_dates_are_kept() -> None:
    pseudo = pseudonymizer()

    assert pseudo.shift_date("20240110") is not None
    first, second = pseudo.shift_date("20240101"), pseudo.shift_date("20240110")
    assert first is not None and second is not None
    assert int(second) - int(first) == 9


@pytest.mark.parametrize("value", ["", "2024", "20241301", "2024-01-01", "abcdefgh", "00000101"])
def test_invalid_dates_give_none(value: str) -> None:
    assert pseudonymizer().shift_date(value) is None


def test_datetime_keeps_time_and_offset() -> None:
    pseudo = pseudonymizer()
    shifted = pseudo.shift_datetime("20240101101500.123456+0100")

    assert shifted is not None
    assert shifted[8:] == "101500.123456+0100"
    assert shifted[:8] == pseudo.shift_date("20240101")


def test_scope_is_the_share_id_or_the_revocation_key_of_old_tokens() -> None:
    _, share = mint()
    old = Share(
        type=ShareType.OSIMIS_VIEWER_PUBLICATION,
        studies=(StudyGrant(STUDY_UID, STUDY_ID),),
        anonymized=True,
        expires_at=None,
        share_id=None,
        label=None,
        revocation_key="sha256:abcdef",
        generation="v23.1",
    )

    assert share.share_id is not None and share_scope(share) == share.share_id
    assert share_scope(old) == "sha256:abcdef"


def test_stone_link_names_pseudonymous_study_uids() -> None:
    token, share = mint()
    url = anonymized_viewer_url(
        share, token, "https://pacs.example.org/anon/", ANONYMIZATION_KEY.encode()
    )

    assert url is not None
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    expected = pseudonymizer_for(share, ANONYMIZATION_KEY.encode()).uid(STUDY_UID)
    assert parts.path == "/anon/stone-webviewer/index.html"
    assert query["study"] == [expected] and query["selectedStudies"] == [expected]
    assert query["token"] == [token]
    assert STUDY_UID not in url.replace(token, "")


def test_osimis_link_names_pseudonymous_orthanc_ids() -> None:
    token, share = mint(type="osimis-viewer-publication")
    url = anonymized_viewer_url(
        share, token, "https://pacs.example.org/anon/", ANONYMIZATION_KEY.encode()
    )

    assert url is not None
    expected = pseudonymizer_for(share, ANONYMIZATION_KEY.encode()).orthanc_id(STUDY_ID)
    assert parse_qs(urlsplit(url).query)["pickableStudyIds"] == [expected]
    assert STUDY_ID not in url.replace(token, "")


def test_pseudonymous_share_keeps_its_scope() -> None:
    _, share = mint()
    pseudonymous = pseudonymous_share(share, ANONYMIZATION_KEY.encode())
    pseudo = pseudonymizer_for(share, ANONYMIZATION_KEY.encode())

    assert pseudonymous.studies[0].dicom_uid == pseudo.uid(STUDY_UID)
    assert pseudonymous.studies[0].orthanc_id == pseudo.orthanc_id(STUDY_ID)
    assert share_scope(pseudonymous) == share_scope(share)
    assert pseudonymous.anonymized and pseudonymous.type is share.type


def test_link_needs_the_ids_its_viewer_uses() -> None:
    token, share = mint(studies=[{"orthanc-id": STUDY_ID}], type="stone-viewer-publication")

    assert anonymized_viewer_url(share, token, "https://x/", ANONYMIZATION_KEY.encode()) is None

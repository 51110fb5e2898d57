"""Sealed studies: anonymized share tokens name pseudonyms and hide the real studies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.errors import InvalidTokenError
from shared.models import StudyGrant
from shared.pseudonyms import pseudonymous_share
from shared.sealing import StudySeal
from shared.tokens import TokenCodec
from tests.factories import ANONYMIZATION_KEY, STUDY_ID, STUDY_UID
from tests.shared.conftest import KEY, FixedClock, b64url, hand_signed, share_request, unb64url

ANON_KEY = ANONYMIZATION_KEY.encode()
OTHER_ANON_KEY = b"another-anonymization-key-0123456789abcdef"
NEW_KEY = b"the-next-signing-key-after-a-rotation-0123456789"
STUDIES = (StudyGrant(STUDY_UID, STUDY_ID), StudyGrant("1.2.3.4", None))
LABEL = "DOE^JANE knee follow-up"


def claims_of(token: str) -> dict[str, Any]:
    """The readable payload of a JWT, as anyone holding the link can read it."""
    claims: dict[str, Any] = json.loads(unb64url(token.split(".")[1]))
    return claims


def anonymized_codec(
    key: bytes | None = ANON_KEY, signing_keys: tuple[bytes, ...] = (KEY,)
) -> TokenCodec:
    return TokenCodec(signing_keys, clock=FixedClock(), anonymization_key=key)


def anonymized_request() -> Any:
    return share_request(
        anonymized=True,
        id=LABEL,
        type="osimis-viewer-publication",
        studies=[{"dicom-uid": STUDY_UID, "orthanc-id": STUDY_ID}, {"dicom-uid": "1.2.3.4"}],
    )


def test_seal_round_trip() -> None:
    seal = StudySeal(KEY)

    opened = seal.open(seal.seal(STUDIES, LABEL, "share-1"), "share-1")

    assert opened.studies == STUDIES
    assert opened.label == LABEL


def test_seal_hides_its_content_and_never_repeats() -> None:
    seal = StudySeal(KEY)

    first = seal.seal(STUDIES, LABEL, "share-1")
    second = seal.seal(STUDIES, LABEL, "share-1")

    assert first != second  # a fresh nonce each time
    for sealed in (first, second):
        raw = unb64url(sealed)
        assert STUDY_UID.encode() not in raw and STUDY_ID.encode() not in raw
        assert LABEL.encode() not in raw


@pytest.mark.parametrize(
    ("key", "share_id"),
    [(NEW_KEY, "share-1"), (KEY, "share-2")],
    ids=["another key", "another share"],
)
def test_seal_opens_only_with_its_key_and_share(key: bytes, share_id: str) -> None:
    sealed = StudySeal(KEY).seal(STUDIES, None, "share-1")

    with pytest.raises(InvalidTokenError, match="does not open"):
        StudySeal(key).open(sealed, share_id)


def test_tampered_seal_does_not_open() -> None:
    seal = StudySeal(KEY)
    raw = bytearray(unb64url(seal.seal(STUDIES, None, "share-1")))
    raw[-1] ^= 1

    with pytest.raises(InvalidTokenError):
        seal.open(b64url(bytes(raw)), "share-1")


@pytest.mark.parametrize(
    "sealed",
    [None, 42, "", "not base64 !", b64url(b"\x02" + bytes(40)), b64url(b"\x01abc"), "A" * 20000],
    ids=["null", "number", "empty", "not base64", "unknown version", "too short", "oversized"],
)
def test_malformed_seal_is_invalid(sealed: object) -> None:
    with pytest.raises(InvalidTokenError):
        StudySeal(KEY).open(sealed, "share-1")


def test_empty_signing_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        StudySeal(b"")


def test_anonymized_token_names_only_pseudonyms() -> None:
    codec = anonymized_codec()

    token, share = codec.encode(anonymized_request())

    claims = claims_of(token)
    readable = json.dumps({k: v for k, v in claims.items() if k != "sealed"})
    assert STUDY_UID not in readable and STUDY_ID not in readable and "1.2.3.4" not in readable
    assert claims["id"] is None and "DOE" not in readable
    assert claims["anonymized"] is True
    public = pseudonymous_share(share, ANON_KEY).studies
    assert claims["studies"] == [
        {"dicom_uid": public[0].dicom_uid, "orthanc_id": public[0].orthanc_id},
        {"dicom_uid": public[1].dicom_uid, "orthanc_id": None},
    ]
    # The service's own reading: the real studies and the label, for grants and Orthanc.
    assert share.studies == STUDIES
    assert share.label == LABEL
    assert codec.decode(token) == share


def test_services_without_the_anonymization_key_still_read_the_real_studies() -> None:
    # The seal follows the signing key: a service that verifies the token opens it, and a
    # new ANONYMIZATION_KEY changes pseudonyms, not what the share grants.
    token, share = anonymized_codec().encode(anonymized_request())

    assert anonymized_codec(None).decode(token).studies == STUDIES
    assert anonymized_codec(OTHER_ANON_KEY).decode(token) == share


def test_sealed_token_still_opens_after_the_signing_key_rotates() -> None:
    token, share = anonymized_codec().encode(anonymized_request())

    assert anonymized_codec(signing_keys=(NEW_KEY, KEY)).decode(token) == share
    with pytest.raises(InvalidTokenError):
        anonymized_codec(signing_keys=(NEW_KEY,)).decode(token)


def test_sealed_claim_under_another_signing_key_does_not_open() -> None:
    # A token re-signed with a key that did not seal it: the signature passes, the seal not.
    token, _ = anonymized_codec(signing_keys=(NEW_KEY,)).encode(anonymized_request())

    with pytest.raises(InvalidTokenError, match="does not open"):
        anonymized_codec().decode(_resigned(token))


def _resigned(token: str, **changes: Any) -> str:
    claims = claims_of(token)
    claims.update(changes)
    return hand_signed({"alg": "HS256", "typ": "JWT"}, claims)


def test_sealed_claim_moved_to_another_share_does_not_open() -> None:
    codec = anonymized_codec()
    token, _ = codec.encode(anonymized_request())

    with pytest.raises(InvalidTokenError, match="does not open"):
        codec.decode(_resigned(token, jti="another-share"))


@pytest.mark.parametrize(
    "changes",
    [{"anonymized": False}, {"jti": None}, {"studies": [{"dicom_uid": "2.25.1"}]}],
    ids=["not anonymized", "no share id", "fewer public studies"],
)
def test_inconsistent_sealed_token_is_invalid(changes: dict[str, Any]) -> None:
    codec = anonymized_codec()
    token, _ = codec.encode(anonymized_request())

    with pytest.raises(InvalidTokenError):
        codec.decode(_resigned(token, **changes))


def test_unsealed_anonymized_token_of_the_original_still_opens() -> None:
    # The original's anonymized (Osimis) links carry real ids and no `sealed` claim.
    legacy = hand_signed(
        {"alg": "HS256", "typ": "JWT"},
        {
            "id": "legacy",
            "studies": [{"dicom_uid": STUDY_UID, "orthanc_id": STUDY_ID}],
            "anonymized": True,
            "type": "osimis-viewer-publication",
            "expiration_date": None,
        },
    )

    share = anonymized_codec().decode(legacy)

    assert share.generation == "v23.1"
    assert share.anonymized is True
    assert share.studies == (StudyGrant(STUDY_UID, STUDY_ID),)

"""The token codec: golden tokens, tokens of the original service, security regressions,
and the cache of verifications."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from shared.errors import ExpiredTokenError, InvalidTokenError
from shared.models import Share, ShareType, StudyGrant
from shared.tokens import MAX_TOKEN_LENGTH, TokenCodec, VerifiedTokenCache
from tests.factories import STUDY_ID, STUDY_UID
from tests.shared.conftest import (
    KEY,
    NOW,
    FixedClock,
    b64url,
    b64url_json,
    hand_signed,
    share_request,
    unb64url,
)

OTHER_KEY = b"another-secret-key-that-is-also-long-enough-42"
SHARE_ID = "golden-share-id"
HS256_HEADER = {"alg": "HS256", "typ": "JWT"}

# --- Golden tokens of this service (KEY, clock NOW, token_urlsafe -> SHARE_ID) -------------

GOLDEN_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpZCI6ImdvbGRlbiIsInN0dWRpZXMiOlt7ImRpY29tX3VpZCI6IjEuMi44NDAuMTEzNjE5LjIuNTUuMy4xIiwib3"
    "J0aGFuY19pZCI6IjAxOTVmMTNlLTRhZmU2ODIyLThiNDk0Y2M0LTUxNjJjNTBkLTBkYWY2NmFhIn1dLCJhbm9ueW1p"
    "emVkIjpmYWxzZSwidHlwZSI6InN0b25lLXZpZXdlci1wdWJsaWNhdGlvbiIsImV4cGlyYXRpb25fZGF0ZSI6IjIwOT"
    "ktMDItMTBUMTQ6MTI6MzMuOTIzMDAwKzAwOjAwIiwiaWF0IjoxNzAwMDAwMDAwLCJqdGkiOiJnb2xkZW4tc2hhcmUt"
    "aWQiLCJleHAiOjQwNzQ0MTU5NTN9."
    "g0QTM4_ZZlWESTQZT6w9kFkT0wjkxL2dkDpaiEufpr0"
)
GOLDEN_PAYLOAD_JSON = (
    '{"id":"golden",'
    '"studies":[{"dicom_uid":"1.2.840.113619.2.55.3.1",'
    '"orthanc_id":"0195f13e-4afe6822-8b494cc4-5162c50d-0daf66aa"}],'
    '"anonymized":false,'
    '"type":"stone-viewer-publication",'
    '"expiration_date":"2099-02-10T14:12:33.923000+00:00",'
    '"iat":1700000000,'
    '"jti":"golden-share-id",'
    '"exp":4074415953}'
)
GOLDEN_NEVER_EXPIRES_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpZCI6bnVsbCwic3R1ZGllcyI6W3siZGljb21fdWlkIjoiMS4yLjg0MC4xMTM2MTkuMi41NS4zLjEiLCJvcnRoYW"
    "5jX2lkIjoiMDE5NWYxM2UtNGFmZTY4MjItOGI0OTRjYzQtNTE2MmM1MGQtMGRhZjY2YWEifV0sImFub255bWl6ZWQi"
    "OmZhbHNlLCJ0eXBlIjoic3RvbmUtdmlld2VyLXB1YmxpY2F0aW9uIiwiZXhwaXJhdGlvbl9kYXRlIjpudWxsLCJpYX"
    "QiOjE3MDAwMDAwMDAsImp0aSI6ImdvbGRlbi1zaGFyZS1pZCJ9."
    "kc-h1Fyf785e3q6tQ2kPSC89AA1dfxsYnwe19usYSgU"
)

# --- Tokens minted by the original orthanc-share: jwt.encode(payload, KEY, "HS256") ----------

# {"id": "legacy-2023", "studies": [{"dicom_uid": STUDY_UID, "orthanc_id": STUDY_ID}],
#  "anonymized": false, "type": "stone-viewer-publication",
#  "expiration_date": "2099-02-10T14:12:33.123000+00:00"}
V23_1_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpZCI6ImxlZ2FjeS0yMDIzIiwic3R1ZGllcyI6W3siZGljb21fdWlkIjoiMS4yLjg0MC4xMTM2MTkuMi41NS4zLj"
    "EiLCJvcnRoYW5jX2lkIjoiMDE5NWYxM2UtNGFmZTY4MjItOGI0OTRjYzQtNTE2MmM1MGQtMGRhZjY2YWEifV0sImFu"
    "b255bWl6ZWQiOmZhbHNlLCJ0eXBlIjoic3RvbmUtdmlld2VyLXB1YmxpY2F0aW9uIiwiZXhwaXJhdGlvbl9kYXRlIj"
    "oiMjA5OS0wMi0xMFQxNDoxMjozMy4xMjMwMDArMDA6MDAifQ."
    "MVi7d9GTbkJtPpxpWiNEvEHXWiPpVhAmV0NaAEcXAd0"
)
# {"id": "toto", "dicom_uid": "1.2", "orthanc_id": STUDY_ID,
#  "type": "osimis-viewer-publication", "expiration_date": "2099-02-10T14:12:33.123000+00:00"}
V22_9_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpZCI6InRvdG8iLCJkaWNvbV91aWQiOiIxLjIiLCJvcnRoYW5jX2lkIjoiMDE5NWYxM2UtNGFmZTY4MjItOGI0OT"
    "RjYzQtNTE2MmM1MGQtMGRhZjY2YWEiLCJ0eXBlIjoib3NpbWlzLXZpZXdlci1wdWJsaWNhdGlvbiIsImV4cGlyYXRp"
    "b25fZGF0ZSI6IjIwOTktMDItMTBUMTQ6MTI6MzMuMTIzMDAwKzAwOjAwIn0."
    "0ymBXIpW5o1fT1Rre0pvRMWd2fGwsBPwhSI9F1kNzmE"
)
# As V23_1_TOKEN with "id": "legacy-expired", "expiration_date": "2023-02-10T14:12:33.123000+00:00"
V23_1_EXPIRED_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpZCI6ImxlZ2FjeS1leHBpcmVkIiwic3R1ZGllcyI6W3siZGljb21fdWlkIjoiMS4yLjg0MC4xMTM2MTkuMi41NS"
    "4zLjEiLCJvcnRoYW5jX2lkIjoiMDE5NWYxM2UtNGFmZTY4MjItOGI0OTRjYzQtNTE2MmM1MGQtMGRhZjY2YWEifV0s"
    "ImFub255bWl6ZWQiOmZhbHNlLCJ0eXBlIjoic3RvbmUtdmlld2VyLXB1YmxpY2F0aW9uIiwiZXhwaXJhdGlvbl9kYX"
    "RlIjoiMjAyMy0wMi0xMFQxNDoxMjozMy4xMjMwMDArMDA6MDAifQ."
    "sgLfW_lDcih8K1TO4Q9_eLRsDUJMKnU41MuCf3RurZw"
)
# As V23_1_TOKEN with "id": "legacy-naive", "expiration_date": "2099-02-10T14:12:33" (no zone)
V23_1_NAIVE_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpZCI6ImxlZ2FjeS1uYWl2ZSIsInN0dWRpZXMiOlt7ImRpY29tX3VpZCI6IjEuMi44NDAuMTEzNjE5LjIuNTUuMy"
    "4xIiwib3J0aGFuY19pZCI6IjAxOTVmMTNlLTRhZmU2ODIyLThiNDk0Y2M0LTUxNjJjNTBkLTBkYWY2NmFhIn1dLCJh"
    "bm9ueW1pemVkIjpmYWxzZSwidHlwZSI6InN0b25lLXZpZXdlci1wdWJsaWNhdGlvbiIsImV4cGlyYXRpb25fZGF0ZS"
    "I6IjIwOTktMDItMTBUMTQ6MTI6MzMifQ."
    "CVrGZQy3oKngLk6j-6arKdLcvyWYGPCZrmTfcxfEToE"
)
# As V23_1_TOKEN with "id": "legacy-never", "expiration_date": null
V23_1_NEVER_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpZCI6ImxlZ2FjeS1uZXZlciIsInN0dWRpZXMiOlt7ImRpY29tX3VpZCI6IjEuMi44NDAuMTEzNjE5LjIuNTUuMy"
    "4xIiwib3J0aGFuY19pZCI6IjAxOTVmMTNlLTRhZmU2ODIyLThiNDk0Y2M0LTUxNjJjNTBkLTBkYWY2NmFhIn1dLCJh"
    "bm9ueW1pemVkIjpmYWxzZSwidHlwZSI6InN0b25lLXZpZXdlci1wdWJsaWNhdGlvbiIsImV4cGlyYXRpb25fZGF0ZS"
    "I6bnVsbH0."
    "k6ZfAg3i_0KcEzwK3O5iqmKW9oVf3-Uk3-bUOSFx3v8"
)
# {"id": "toto", "dicom_uid": "1.2", "orthanc_id": STUDY_ID, "anonymized": false,
#  "type": "osimis-viewer-publication", "expiration_date": "2023-02-10T14:12:33.123000"}
V22_9_EXPIRED_NAIVE_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpZCI6InRvdG8iLCJkaWNvbV91aWQiOiIxLjIiLCJvcnRoYW5jX2lkIjoiMDE5NWYxM2UtNGFmZTY4MjItOGI0OT"
    "RjYzQtNTE2MmM1MGQtMGRhZjY2YWEiLCJhbm9ueW1pemVkIjpmYWxzZSwidHlwZSI6Im9zaW1pcy12aWV3ZXItcHVi"
    "bGljYXRpb24iLCJleHBpcmF0aW9uX2RhdGUiOiIyMDIzLTAyLTEwVDE0OjEyOjMzLjEyMzAwMCJ9."
    "e8ksPrhFPmMafWpebNDq6gkJaoomuWuQhe5-_AhMZCM"
)

FAR_FUTURE = datetime(2099, 2, 10, 14, 12, 33, 123000, tzinfo=UTC).timestamp()
# 2100-01-01T00:00:00Z. PyJWT checks `exp` against the wall clock, so a hand-made `exp`
# must lie in the real future; the codec's and cache's clocks are moved up to it.
EXP = 4_102_444_800


def sha256_key(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def current_payload(**overrides: Any) -> dict[str, Any]:
    """The claims this service mints, in their order, for hand-made tokens."""
    payload: dict[str, Any] = {
        "id": "hand-made",
        "studies": [{"dicom_uid": STUDY_UID, "orthanc_id": STUDY_ID}],
        "anonymized": False,
        "type": "stone-viewer-publication",
        "expiration_date": None,
        "iat": int(NOW),
        "jti": "hand-made-id",
    }
    payload.update(overrides)
    return {name: value for name, value in payload.items() if value is not ...}


@pytest.fixture
def fixed_share_id(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """Make `secrets.token_urlsafe` return SHARE_ID; records the sizes asked for."""
    sizes: list[int | None] = []

    def token_urlsafe(nbytes: int | None = None) -> str:
        sizes.append(nbytes)
        return SHARE_ID

    monkeypatch.setattr("shared.tokens.secrets.token_urlsafe", token_urlsafe)
    return sizes


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec([KEY], clock=FixedClock())


@pytest.fixture
def jwt_decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count signature verifications: every token passed to `jwt.decode`."""
    calls: list[str] = []
    real_decode: Callable[..., Any] = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    return calls


@pytest.fixture
def east_of_utc() -> Iterator[None]:
    """Run in a local time zone 5 hours ahead of UTC (no tzdata needed)."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "XXX-05"
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()


# --- Golden tokens ----------------------------------------------------------------------


def test_golden_token_bytes(codec: TokenCodec, fixed_share_id: list[int | None]) -> None:
    request = share_request(id="golden", **{"expiration-date": "2099-02-10T14:12:33.923Z"})

    token, _ = codec.encode(request)

    assert token == GOLDEN_TOKEN
    assert fixed_share_id == [16]  # 128 random bits per share id


def test_golden_token_segments_are_hs256_over_the_documented_payload() -> None:
    header, payload, signature = GOLDEN_TOKEN.split(".")

    assert unb64url(header) == b'{"alg":"HS256","typ":"JWT"}'
    assert unb64url(payload).decode() == GOLDEN_PAYLOAD_JSON
    expected = hmac.new(KEY, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert unb64url(signature) == expected


def test_golden_token_claims_in_contract_order() -> None:
    claims = json.loads(unb64url(GOLDEN_TOKEN.split(".")[1]))

    # v23.1 fields first and unchanged, registered claims after (tokens.py NOTE).
    assert list(claims) == [
        "id",
        "studies",
        "anonymized",
        "type",
        "expiration_date",
        "iat",
        "jti",
        "exp",
    ]
    assert claims["studies"] == [{"dicom_uid": STUDY_UID, "orthanc_id": STUDY_ID}]
    assert list(claims["studies"][0]) == ["dicom_uid", "orthanc_id"]
    assert claims["iat"] == 1_700_000_000
    # floor(2099-02-10T14:12:33.923Z): the share never outlives the chosen date.
    assert claims["exp"] == 4_074_415_953
    assert claims["exp"] == int(datetime(2099, 2, 10, 14, 12, 33, tzinfo=UTC).timestamp())


def test_golden_token_decodes_to_its_share(codec: TokenCodec) -> None:
    share = codec.decode(GOLDEN_TOKEN)

    assert share.type is ShareType.STONE_VIEWER_PUBLICATION
    assert share.studies == (StudyGrant(STUDY_UID, STUDY_ID),)
    assert share.anonymized is False
    assert share.expires_at == 4_074_415_953
    assert share.share_id == SHARE_ID
    assert share.label == "golden"
    assert share.revocation_key == f"jti:{SHARE_ID}"
    assert share.generation == "current"


def test_encode_returns_the_share_that_decode_reads(
    codec: TokenCodec, fixed_share_id: list[int | None]
) -> None:
    request = share_request(id="golden", **{"expiration-date": "2099-02-10T14:12:33.923Z"})

    token, share = codec.encode(request)

    assert share == codec.decode(token)


def test_golden_token_that_never_expires_has_no_exp(
    codec: TokenCodec, fixed_share_id: list[int | None]
) -> None:
    token, share = codec.encode(share_request(**{"expiration-date": None}))

    assert token == GOLDEN_NEVER_EXPIRES_TOKEN
    claims = json.loads(unb64url(token.split(".")[1]))
    assert list(claims) == [
        "id",
        "studies",
        "anonymized",
        "type",
        "expiration_date",
        "iat",
        "jti",
    ]
    assert claims["expiration_date"] is None
    assert claims["id"] is None
    assert share.expires_at is None
    # Still valid long after any reasonable date.
    far_clock = TokenCodec([KEY], clock=FixedClock(FAR_FUTURE * 2))
    assert far_clock.decode(token).expires_at is None


def test_encode_keeps_every_study(codec: TokenCodec, fixed_share_id: list[int | None]) -> None:
    request = share_request(
        type="osimis-viewer-publication",
        studies=[{"orthanc-id": "a"}, {"dicom-uid": "1.2", "orthanc-id": "b"}],
    )

    token, share = codec.encode(request)

    claims = json.loads(unb64url(token.split(".")[1]))
    assert claims["studies"] == [
        {"dicom_uid": None, "orthanc_id": "a"},
        {"dicom_uid": "1.2", "orthanc_id": "b"},
    ]
    assert claims["anonymized"] is False
    assert claims["type"] == "osimis-viewer-publication"
    assert "sealed" not in claims
    assert share.studies == (StudyGrant(None, "a"), StudyGrant("1.2", "b"))
    assert share.anonymized is False


def test_anonymized_share_needs_the_anonymization_key(codec: TokenCodec) -> None:
    with pytest.raises(ValueError, match="anonymization key"):
        codec.encode(share_request(anonymized=True))


def test_each_share_gets_a_fresh_id() -> None:
    codec = TokenCodec([KEY])
    request = share_request()

    ids = {codec.encode(request)[1].share_id for _ in range(20)}

    assert len(ids) == 20
    assert all(share_id and len(share_id) >= 22 for share_id in ids)


def test_codec_needs_a_non_empty_key() -> None:
    with pytest.raises(ValueError):
        TokenCodec([])
    with pytest.raises(ValueError):
        TokenCodec([KEY, b""])


# --- Tokens minted by the original orthanc-share -----------------------------------------


def test_v23_1_token_still_opens(codec: TokenCodec) -> None:
    share = codec.decode(V23_1_TOKEN)

    assert share.generation == "v23.1"
    assert share.type is ShareType.STONE_VIEWER_PUBLICATION
    assert share.studies == (StudyGrant(STUDY_UID, STUDY_ID),)
    assert share.anonymized is False
    assert share.expires_at == FAR_FUTURE
    assert share.label == "legacy-2023"
    assert share.share_id is None
    assert share.revocation_key == sha256_key(V23_1_TOKEN)


def test_v22_9_token_with_top_level_ids_still_opens(codec: TokenCodec) -> None:
    share = codec.decode(V22_9_TOKEN)

    assert share.generation == "v22.9"
    assert share.type is ShareType.OSIMIS_VIEWER_PUBLICATION
    assert share.studies == (StudyGrant("1.2", STUDY_ID),)
    assert share.anonymized is False  # absent in v22.9 tokens
    assert share.expires_at == FAR_FUTURE
    assert share.label == "toto"
    assert share.share_id is None
    assert share.revocation_key == sha256_key(V22_9_TOKEN)


def test_legacy_revocation_keys_differ_per_token(codec: TokenCodec) -> None:
    keys = {codec.decode(token).revocation_key for token in (V23_1_TOKEN, V22_9_TOKEN)}

    assert len(keys) == 2


def test_expired_legacy_token_is_refused(codec: TokenCodec) -> None:
    with pytest.raises(ExpiredTokenError):
        codec.decode(V23_1_EXPIRED_TOKEN)


def test_legacy_token_expires_when_the_clock_passes_its_date() -> None:
    clock = FixedClock(FAR_FUTURE - 1)
    codec = TokenCodec([KEY], clock=clock)
    assert codec.decode(V23_1_TOKEN).expires_at == FAR_FUTURE

    clock.now = FAR_FUTURE  # expired means now >= expiration_date

    with pytest.raises(ExpiredTokenError):
        codec.decode(V23_1_TOKEN)


@pytest.mark.usefixtures("east_of_utc")
def test_legacy_naive_expiration_date_is_utc(codec: TokenCodec) -> None:
    share = codec.decode(V23_1_NAIVE_TOKEN)

    assert share.expires_at == datetime(2099, 2, 10, 14, 12, 33, tzinfo=UTC).timestamp()


@pytest.mark.usefixtures("east_of_utc")
def test_legacy_naive_expiration_date_is_compared_in_utc() -> None:
    # 2023-02-10T14:12:33.123 read as UTC has not passed at 12:00 UTC; read as the local
    # time of UTC+5 it would have passed at 09:12 UTC.
    noon = datetime(2023, 2, 10, 12, 0, tzinfo=UTC).timestamp()
    codec = TokenCodec([KEY], clock=FixedClock(noon))

    assert codec.decode(V22_9_EXPIRED_NAIVE_TOKEN).generation == "v22.9"

    late = TokenCodec([KEY], clock=FixedClock(noon + 3 * 3600))
    with pytest.raises(ExpiredTokenError):
        late.decode(V22_9_EXPIRED_NAIVE_TOKEN)


def test_legacy_null_expiration_date_never_expires() -> None:
    codec = TokenCodec([KEY], clock=FixedClock(FAR_FUTURE * 2))

    share = codec.decode(V23_1_NEVER_TOKEN)

    assert share.expires_at is None
    assert share.label == "legacy-never"


def test_legacy_token_under_a_previous_key() -> None:
    codec = TokenCodec([OTHER_KEY, KEY], clock=FixedClock())

    assert codec.decode(V23_1_TOKEN).generation == "v23.1"


# --- Security regressions ---------------------------------------------------------------


def test_security_alg_none_is_refused(codec: TokenCodec) -> None:
    header = b64url_json({"alg": "none", "typ": "JWT"})
    payload = b64url_json(current_payload())
    for signature in ("", GOLDEN_TOKEN.split(".")[2]):
        with pytest.raises(InvalidTokenError):
            codec.decode(f"{header}.{payload}.{signature}")


def test_security_alg_none_variants_are_refused(codec: TokenCodec) -> None:
    payload = b64url_json(current_payload())
    for alg in ("None", "NONE", "nOnE", ""):
        header = b64url_json({"alg": alg, "typ": "JWT"})
        with pytest.raises(InvalidTokenError):
            codec.decode(f"{header}.{payload}.")


@pytest.mark.parametrize(("alg", "digest"), [("HS512", "sha512"), ("HS384", "sha384")])
def test_security_algorithm_switch_to_other_hmac_is_refused(
    codec: TokenCodec, alg: str, digest: str
) -> None:
    token = hand_signed({"alg": alg, "typ": "JWT"}, current_payload(), KEY, digest)

    with pytest.raises(InvalidTokenError):
        codec.decode(token)


def test_security_hand_signed_hs256_control_is_accepted(codec: TokenCodec) -> None:
    # The control of the hand-made attacks: the same construction with HS256 verifies,
    # so the refusals above are about the algorithm, not the construction.
    token = hand_signed(HS256_HEADER, current_payload())

    assert codec.decode(token).share_id == "hand-made-id"


def test_security_rs256_header_signed_with_the_hmac_key_is_refused(codec: TokenCodec) -> None:
    # Key confusion: an RS256 header whose "signature" is an HMAC under the shared secret.
    token = hand_signed({"alg": "RS256", "typ": "JWT"}, current_payload())

    with pytest.raises(InvalidTokenError):
        codec.decode(token)


def test_security_tampered_header_is_refused(codec: TokenCodec) -> None:
    _, payload, signature = GOLDEN_TOKEN.split(".")
    header = b64url_json({"alg": "HS256", "typ": "JWT", "kid": "other"})

    with pytest.raises(InvalidTokenError):
        codec.decode(f"{header}.{payload}.{signature}")


@pytest.mark.parametrize(
    "change",
    [
        {"anonymized": True},
        {"studies": [{"dicom_uid": "9.9.9", "orthanc_id": STUDY_ID}]},
        {"exp": 4_200_000_000},
        {"jti": "someone-else"},
    ],
    ids=["anonymized", "studies", "exp", "jti"],
)
def test_security_tampered_payload_is_refused(codec: TokenCodec, change: dict[str, Any]) -> None:
    header, payload, signature = GOLDEN_TOKEN.split(".")
    claims = json.loads(unb64url(payload))
    claims.update(change)

    with pytest.raises(InvalidTokenError):
        codec.decode(f"{header}.{b64url_json(claims)}.{signature}")


def test_security_tampered_signature_is_refused(codec: TokenCodec) -> None:
    header, payload, signature = GOLDEN_TOKEN.split(".")
    raw = bytearray(unb64url(signature))
    raw[5] ^= 0x01
    for forged in (b64url(bytes(raw)), signature[:-4], signature + "AAAA", ""):
        with pytest.raises(InvalidTokenError):
            codec.decode(f"{header}.{payload}.{forged}")


def test_security_wrong_key_is_refused() -> None:
    codec = TokenCodec([OTHER_KEY], clock=FixedClock())

    for token in (GOLDEN_TOKEN, V23_1_TOKEN, V22_9_TOKEN):
        with pytest.raises(InvalidTokenError):
            codec.decode(token)


def test_security_expired_exp_is_refused(codec: TokenCodec) -> None:
    # expiration_date says "never", exp says "over": the registered claim wins.
    token = hand_signed(HS256_HEADER, current_payload(exp=int(time.time()) - 60))

    with pytest.raises(ExpiredTokenError):
        codec.decode(token)


def test_security_expired_exp_under_the_codec_clock_is_refused() -> None:
    clock = FixedClock(EXP - 10)
    codec = TokenCodec([KEY], clock=clock)
    token = hand_signed(HS256_HEADER, current_payload(exp=EXP))
    assert codec.decode(token).expires_at == EXP

    clock.advance(10)

    with pytest.raises(ExpiredTokenError):
        codec.decode(token)


def test_security_expired_token_under_an_unknown_key_is_invalid_not_expired() -> None:
    # A forged token must not learn anything, not even that its claims say "expired".
    token = hand_signed(HS256_HEADER, current_payload(exp=1_000), OTHER_KEY)
    codec = TokenCodec([KEY], clock=FixedClock())

    with pytest.raises(InvalidTokenError):
        codec.decode(token)


def test_security_not_yet_valid_nbf_is_refused(codec: TokenCodec) -> None:
    token = hand_signed(HS256_HEADER, current_payload(nbf=int(time.time()) + 3600))

    with pytest.raises(InvalidTokenError):
        codec.decode(token)


def test_security_oversized_token_is_refused_even_when_well_signed(
    codec: TokenCodec, jwt_decode_calls: list[str]
) -> None:
    token = hand_signed(HS256_HEADER, current_payload(id="x" * MAX_TOKEN_LENGTH))
    assert len(token) > MAX_TOKEN_LENGTH

    with pytest.raises(InvalidTokenError):
        codec.decode(token)
    assert jwt_decode_calls == []  # refused before any parsing


def test_security_token_at_the_size_limit_is_accepted(codec: TokenCodec) -> None:
    base = hand_signed(HS256_HEADER, current_payload(id=""))
    # Each 3 characters of id add 4 characters to the token.
    padding = (MAX_TOKEN_LENGTH - len(base)) // 4 * 3
    token = hand_signed(HS256_HEADER, current_payload(id="x" * padding))
    assert MAX_TOKEN_LENGTH - 4 < len(token) <= MAX_TOKEN_LENGTH

    assert codec.decode(token).label == "x" * padding


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        " ",
        "null",
        "not-a-token",
        "a.b.c",
        "...",
        "a.b.c.d",
        "eyJ.eyJ.",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..",
        "Bearer " + GOLDEN_TOKEN,
        GOLDEN_TOKEN + ".",
        GOLDEN_TOKEN.replace(".", "", 1),
        "%00%ff",
        "é.é.é",
        "\x00\x01\x02",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.!!!!.!!!!",
    ],
)
def test_security_garbage_is_invalid(codec: TokenCodec, garbage: str) -> None:
    with pytest.raises(InvalidTokenError):
        codec.decode(garbage)


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"", b"[1, 2]", b'"a string"', b"42", b"{", b"\xff\xfe"],
    ids=["text", "empty", "array", "string", "number", "truncated", "not-utf8"],
)
def test_security_non_json_or_non_object_payload_is_invalid(
    codec: TokenCodec, payload: bytes
) -> None:
    with pytest.raises(InvalidTokenError):
        codec.decode(hand_signed(HS256_HEADER, payload))


@pytest.mark.parametrize(
    "change",
    [
        {"studies": {"dicom_uid": STUDY_UID}},
        {"studies": "1.2.3"},
        {"studies": []},
        {"studies": None},
        {"studies": ["1.2.3"]},
        {"studies": [{}]},
        {"studies": [{"dicom_uid": None, "orthanc_id": None}]},
        {"studies": [{"dicom_uid": "", "orthanc_id": ""}]},
        {"studies": [{"dicom_uid": STUDY_UID}, {"note": "no ids"}]},
        {"studies": [{"dicom_uid": 1.2}]},
        {"studies": [{"orthanc_id": ["a"]}]},
        {"anonymized": "false"},
        {"anonymized": 0},
        {"anonymized": None},
        {"type": "meddream-something"},
        {"type": "STONE-VIEWER-PUBLICATION"},
        {"type": None},
        {"type": ...},
        {"expiration_date": 4_200_000_000},
        {"expiration_date": "next tuesday"},
        {"exp": "in a while"},
    ],
    ids=[
        "studies-object",
        "studies-string",
        "studies-empty",
        "studies-null",
        "study-not-object",
        "study-empty",
        "study-null-ids",
        "study-blank-ids",
        "one-study-without-ids",
        "dicom-uid-number",
        "orthanc-id-list",
        "anonymized-string",
        "anonymized-int",
        "anonymized-null",
        "type-unknown",
        "type-upper-case",
        "type-null",
        "type-missing",
        "expiration-date-number",
        "expiration-date-text",
        "exp-not-a-number",
    ],
)
def test_security_wrong_claim_types_are_invalid(codec: TokenCodec, change: dict[str, Any]) -> None:
    token = hand_signed(HS256_HEADER, current_payload(**change))

    with pytest.raises(InvalidTokenError):
        codec.decode(token)


@pytest.mark.parametrize(
    "change",
    [
        {"studies": ...},
        {"studies": ..., "dicom_uid": None, "orthanc_id": None},
        {"studies": ..., "dicom_uid": 12},
    ],
    ids=["no-ids", "null-ids", "number-id"],
)
def test_security_legacy_top_level_ids_are_checked(
    codec: TokenCodec, change: dict[str, Any]
) -> None:
    token = hand_signed(HS256_HEADER, current_payload(**change))

    with pytest.raises(InvalidTokenError):
        codec.decode(token)


def test_security_previous_keys_verify_but_never_sign(fixed_share_id: list[int | None]) -> None:
    new, old = OTHER_KEY, KEY
    old_token, _ = TokenCodec([old], clock=FixedClock()).encode(share_request())
    rotated = TokenCodec([new, old], clock=FixedClock())

    assert rotated.decode(old_token).share_id == SHARE_ID
    new_token, _ = rotated.encode(share_request())
    assert TokenCodec([new], clock=FixedClock()).decode(new_token).share_id == SHARE_ID
    with pytest.raises(InvalidTokenError):
        TokenCodec([old], clock=FixedClock()).decode(new_token)


def test_security_dropped_previous_key_stops_its_tokens(codec: TokenCodec) -> None:
    old_token = hand_signed(HS256_HEADER, current_payload(), OTHER_KEY)
    assert TokenCodec([KEY, OTHER_KEY], clock=FixedClock()).decode(old_token)

    with pytest.raises(InvalidTokenError):
        codec.decode(old_token)


# --- VerifiedTokenCache -----------------------------------------------------------------


def test_cache_verifies_a_token_once(codec: TokenCodec, jwt_decode_calls: list[str]) -> None:
    cache = VerifiedTokenCache(codec, clock=FixedClock())

    first = cache.lookup(GOLDEN_TOKEN)
    for _ in range(5):
        assert cache.lookup(GOLDEN_TOKEN) is first

    assert jwt_decode_calls == [GOLDEN_TOKEN]
    assert first == codec.decode(GOLDEN_TOKEN)


def test_cache_rechecks_expiry_on_each_lookup(
    codec: TokenCodec, jwt_decode_calls: list[str]
) -> None:
    token = hand_signed(HS256_HEADER, current_payload(exp=EXP))
    clock = FixedClock(EXP - 30)
    cache = VerifiedTokenCache(codec, clock=clock)

    share = cache.lookup(token)
    assert isinstance(share, Share)
    assert share.expires_at == EXP

    clock.advance(29.9)
    assert cache.lookup(token) is share

    clock.advance(0.1)  # now == exp: expired
    expired = cache.lookup(token)
    assert getattr(expired, "reason", None) == "expired"
    clock.advance(3600)
    assert getattr(cache.lookup(token), "reason", None) == "expired"

    assert jwt_decode_calls.count(token) == 1


def test_cache_remembers_invalid_tokens(codec: TokenCodec, jwt_decode_calls: list[str]) -> None:
    cache = VerifiedTokenCache(codec, clock=FixedClock())
    forged = hand_signed(HS256_HEADER, current_payload(), OTHER_KEY)

    for _ in range(3):
        assert getattr(cache.lookup(forged), "reason", None) == "invalid"
        assert getattr(cache.lookup("garbage"), "reason", None) == "invalid"

    assert jwt_decode_calls == [forged, "garbage"]


def test_cache_remembers_expired_tokens(codec: TokenCodec, jwt_decode_calls: list[str]) -> None:
    cache = VerifiedTokenCache(codec, clock=FixedClock())

    for _ in range(3):
        assert getattr(cache.lookup(V23_1_EXPIRED_TOKEN), "reason", None) == "expired"

    assert jwt_decode_calls == [V23_1_EXPIRED_TOKEN]


def test_cache_does_not_store_oversized_tokens(codec: TokenCodec) -> None:
    cache = VerifiedTokenCache(codec, clock=FixedClock())

    assert getattr(cache.lookup("x" * (MAX_TOKEN_LENGTH + 1)), "reason", None) == "invalid"
    assert len(cache) == 0


def test_cache_is_bounded_and_evicts_the_oldest(
    codec: TokenCodec, jwt_decode_calls: list[str]
) -> None:
    cache = VerifiedTokenCache(codec, max_entries=3, clock=FixedClock())
    tokens = [hand_signed(HS256_HEADER, current_payload(jti=f"share-{n}")) for n in range(4)]

    for token in tokens:
        cache.lookup(token)
    assert len(cache) == 3
    jwt_decode_calls.clear()

    for token in tokens[1:]:
        assert getattr(cache.lookup(token), "share_id", None) == token_id(token)
    assert jwt_decode_calls == []  # the three newest are still cached

    assert getattr(cache.lookup(tokens[0]), "share_id", None) == "share-0"
    assert jwt_decode_calls == [tokens[0]]  # the oldest was evicted, so verified again
    assert len(cache) == 3


def token_id(token: str) -> str:
    jti: str = json.loads(unb64url(token.split(".")[1]))["jti"]
    return jti

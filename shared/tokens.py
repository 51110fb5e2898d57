"""The share-token codec: the only code in orthanc-share that calls PyJWT.

NOTE (token format contract). A token is an HS256 JWT whose payload keeps, first and
unchanged, the fields of orthanc-share v23.1 so that the original service can still
read our tokens: `id`, `studies` (a list of `{dicom_uid, orthanc_id}`), `anonymized`,
`type`, `expiration_date` (ISO 8601 or null). Registered claims follow: `iat`, `jti`
(the share id, used for revocation) and `exp` when the share expires. Fields may be
added after these; none of them may be renamed, removed or change meaning. Tokens
minted by the original (v23.1 with `studies`; v22.9 with one study's `dicom_uid` and
`orthanc_id` at the top level) carry no registered claims and are still accepted.

One deliberate exception: a link must not identify the patient of an anonymized share,
and anyone can read a JWT. So an anonymized share's `studies` name the pseudonyms its
viewer shows, `id` is null, and the real studies and label travel encrypted in `sealed`
(`shared.sealing`) under a key derived from the signing key, which the key that verifies
the token opens. The original service would compare the pseudonyms with real UIDs, so it
grants such a token nothing.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import jwt

from shared.errors import ExpiredTokenError, InvalidTokenError
from shared.models import Share, ShareRequest, ShareType, StudyGrant
from shared.pseudonyms import Pseudonymizer, pseudonymous_studies
from shared.sealing import StudySeal

__all__ = ["ALGORITHM", "MAX_TOKEN_LENGTH", "TokenCodec", "TokenProblem", "VerifiedTokenCache"]

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
MAX_TOKEN_LENGTH = 16384
_DECODE_OPTIONS: Any = {"verify_iat": False}
_DECODE_EXPIRED_OPTIONS: Any = {"verify_iat": False, "verify_exp": False}


def _parse_expiration(value: object) -> float | None:
    """Read the legacy `expiration_date` claim; a date without a zone is UTC."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidTokenError("expiration_date is not a string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidTokenError("expiration_date is not an ISO date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _optional_str(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidTokenError("an id claim is not a string")
    return value


def _studies(claims: dict[str, Any]) -> tuple[tuple[StudyGrant, ...], str]:
    """The studies a token names, and the payload generation they were found in."""
    if "studies" in claims:
        raw = claims["studies"]
        if not isinstance(raw, list) or not raw:
            raise InvalidTokenError("studies is not a non-empty list")
        found = []
        for item in raw:
            if not isinstance(item, dict):
                raise InvalidTokenError("a study is not an object")
            found.append(
                StudyGrant(
                    _optional_str(item.get("dicom_uid")), _optional_str(item.get("orthanc_id"))
                )
            )
        generation = "current" if "jti" in claims else "v23.1"
    else:
        found = [
            StudyGrant(
                _optional_str(claims.get("dicom_uid")), _optional_str(claims.get("orthanc_id"))
            )
        ]
        generation = "v22.9"
    if any(s.dicom_uid is None and s.orthanc_id is None for s in found):
        raise InvalidTokenError("a study has no id")
    return tuple(found), generation


class TokenCodec:
    """Mints share tokens with the current key and verifies them against every known key."""

    def __init__(
        self,
        keys: Sequence[bytes],
        clock: Callable[[], float] = time.time,
        *,
        anonymization_key: bytes | None = None,
    ) -> None:
        if not keys or not all(keys):
            raise ValueError("at least one non-empty signing key is required")
        self._keys = tuple(keys)
        self._clock = clock
        self._anonymization_key = anonymization_key
        self._seals = tuple(StudySeal(key) for key in self._keys)

    def encode(self, request: ShareRequest) -> tuple[str, Share]:
        """Mint the token of a new share and return it with its decoded form."""
        now = self._clock()
        share_id = secrets.token_urlsafe(16)
        expires = request.expiration_date
        label = request.id
        studies = tuple(StudyGrant(s.dicom_uid, s.orthanc_id) for s in request.studies)
        sealed = None
        if request.anonymized:
            studies, sealed = self._anonymize(studies, label, share_id)
            label = None
        payload: dict[str, Any] = {
            "id": label,
            "studies": [{"dicom_uid": s.dicom_uid, "orthanc_id": s.orthanc_id} for s in studies],
            "anonymized": request.anonymized,
            "type": request.type.value,
            "expiration_date": expires.isoformat() if expires is not None else None,
            "iat": int(now),
            "jti": share_id,
        }
        if expires is not None:
            # Rounded down: a share never outlives the date its creator chose.
            payload["exp"] = math.floor(expires.timestamp())
        if sealed is not None:
            payload["sealed"] = sealed
        token = jwt.encode(payload, self._keys[0], algorithm=ALGORITHM)
        return token, self._share(payload, token, self._seals[0])

    def _anonymize(
        self, studies: tuple[StudyGrant, ...], label: str | None, share_id: str
    ) -> tuple[tuple[StudyGrant, ...], str]:
        """An anonymized share's public studies (their pseudonyms) and its sealed claim."""
        if self._anonymization_key is None:
            raise ValueError("anonymized shares need the anonymization key")
        public = pseudonymous_studies(studies, Pseudonymizer(self._anonymization_key, share_id))
        return public, self._seals[0].seal(studies, label, share_id)

    def decode(self, token: str, *, verify_expiry: bool = True) -> Share:
        """Verify a token and return its share; raise InvalidTokenError or ExpiredTokenError.

        With `verify_expiry=False` an expired share is returned too (its signature is
        still verified), for callers that must say what expired; they check `expired()`.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError("empty or oversized token")
        options = _DECODE_OPTIONS if verify_expiry else _DECODE_EXPIRED_OPTIONS
        for key, seal in zip(self._keys, self._seals, strict=True):
            try:
                claims = jwt.decode(token, key, algorithms=[ALGORITHM], options=options)
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError:
                raise ExpiredTokenError("share expired") from None
            except jwt.InvalidTokenError:
                raise InvalidTokenError("malformed token") from None
            share = self._share(claims, token, seal)
            if share.generation != "current":
                logger.debug(
                    "accepted a token minted by the original orthanc-share (%s)", share.generation
                )
            if verify_expiry and share.expired(self._clock()):
                raise ExpiredTokenError("share expired")
            return share
        raise InvalidTokenError("signature does not match any key")

    @staticmethod
    def _share(claims: dict[str, Any], token: str, seal: StudySeal) -> Share:
        try:
            share_type = ShareType(str(claims.get("type")))
        except ValueError:
            raise InvalidTokenError("unknown share type") from None
        studies, generation = _studies(claims)
        anonymized = claims.get("anonymized", False)
        if not isinstance(anonymized, bool):
            raise InvalidTokenError("anonymized is not a boolean")
        exp = claims.get("exp")
        if exp is not None:
            # PyJWT's own reading of `exp` (checked here too: decoding an expired share
            # skips PyJWT's check).
            try:
                expires_at: float | None = float(int(exp))
            except (TypeError, ValueError, OverflowError):
                raise InvalidTokenError("exp is not an integer") from None
        else:
            expires_at = _parse_expiration(claims.get("expiration_date"))
        jti = claims.get("jti")
        share_id = jti if isinstance(jti, str) and jti else None
        # Shares from the original have no id: revoking one means listing its token's digest.
        revocation_key = (
            f"jti:{share_id}"
            if share_id
            else "sha256:" + hashlib.sha256(token.encode()).hexdigest()
        )
        label = claims.get("id")
        sealed = "sealed" in claims
        if sealed:
            if not anonymized or share_id is None:
                raise InvalidTokenError("sealed studies in a token that is not anonymized")
            opened = seal.open(claims["sealed"], share_id)
            if len(opened.studies) != len(studies):
                raise InvalidTokenError("sealed and public studies differ in number")
            studies, label = opened.studies, opened.label
        return Share(
            type=share_type,
            studies=studies,
            anonymized=anonymized,
            expires_at=expires_at,
            share_id=share_id,
            label=label if isinstance(label, str) else None,
            revocation_key=revocation_key,
            generation=generation,
            sealed=sealed,
        )


class TokenProblem:
    """Why a token grants nothing; cached in place of a share."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"TokenProblem({self.reason!r})"


INVALID = TokenProblem("invalid")
EXPIRED = TokenProblem("expired")


class VerifiedTokenCache:
    """Remembers the verification of each token string, so a token is checked once.

    The plugin asks about the same token for every request of a viewer; verifying an
    HS256 signature each time dominates the cost of validation. Entries are bound to
    this codec (so to its keys: a new key means a new app and a new cache), expiry is
    re-checked against the clock on every use, and the cache is bounded.
    """

    def __init__(
        self,
        codec: TokenCodec,
        max_entries: int = 20000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._codec = codec
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, Share | TokenProblem] = {}

    def lookup(self, token: str) -> Share | TokenProblem:
        """The verified share of a token, or the problem that makes it grant nothing."""
        entry = self._entries.get(token)
        if entry is None:
            entry = self._verify(token)
        if type(entry) is Share and entry.expired(self._clock()):
            return EXPIRED
        return entry

    def _verify(self, token: str) -> Share | TokenProblem:
        entry: Share | TokenProblem
        try:
            entry = self._codec.decode(token)
        except ExpiredTokenError:
            entry = EXPIRED
        except InvalidTokenError:
            entry = INVALID
        if len(token) <= MAX_TOKEN_LENGTH:
            if len(self._entries) >= self._max_entries:
                # Drop the oldest entry (dicts keep insertion order): cheap and bounded.
                del self._entries[next(iter(self._entries))]
            self._entries[token] = entry
        return entry

    def __len__(self) -> int:
        return len(self._entries)

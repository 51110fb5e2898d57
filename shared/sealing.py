"""The sealed part of an anonymized share's token: its real studies and label, encrypted.

A share link reaches the browser, and a JWT is signed, not encrypted: anyone can read
its payload. An anonymized share's token therefore names its studies by their
pseudonyms only, and carries the real study UIDs and Orthanc ids (which the token
service and the anonymizer need to find the studies in Orthanc), with the creator's
free-text label, in one `sealed` claim: AES-256-GCM, a random 96-bit nonce, and the
share id as associated data so that a sealed value cannot be moved into another token.

The key is derived (HKDF-SHA256, its own label) from the token's signing key, not from
ANONYMIZATION_KEY: every service that verifies a token can then open it, rotating
SECRET_KEY keeps old links working through PREVIOUS_SECRET_KEYS as for any token, and
rotating ANONYMIZATION_KEY only changes pseudonyms. Holding the signing key already
means being able to mint a token for any study, so this key opens nothing more.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.errors import InvalidTokenError
from shared.models import StudyGrant

__all__ = ["Sealed", "StudySeal"]

_INFO = b"orthanc-share/sealed-studies/v1"
_VERSION = b"\x01"
_NONCE_BYTES = 12
# A sealed value bigger than this cannot come from us: refuse before decrypting it.
_MAX_SEALED_CHARS = 12000


@dataclass(frozen=True, slots=True)
class Sealed:
    """What a sealed claim holds: the real studies and the creator's label."""

    studies: tuple[StudyGrant, ...]
    label: str | None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _optional_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidTokenError("a sealed id is not a string")
    return value


class StudySeal:
    """Seals and opens the real studies of anonymized shares under one signing key."""

    __slots__ = ("_aead",)

    def __init__(self, signing_key: bytes) -> None:
        if not signing_key:
            raise ValueError("the signing key is empty")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            signing_key
        )
        self._aead = AESGCM(derived)

    def seal(self, studies: Sequence[StudyGrant], label: str | None, share_id: str) -> str:
        """The sealed claim of a share: base64url of version, nonce and ciphertext."""
        plain = json.dumps(
            {"studies": [[s.dicom_uid, s.orthanc_id] for s in studies], "id": label},
            separators=(",", ":"),
        ).encode()
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain, _VERSION + share_id.encode())
        return _b64encode(_VERSION + nonce + sealed)

    def open(self, sealed: object, share_id: str) -> Sealed:
        """The studies and label sealed for this share; InvalidTokenError otherwise."""
        if not isinstance(sealed, str) or not sealed or len(sealed) > _MAX_SEALED_CHARS:
            raise InvalidTokenError("sealed is not a string of a plausible size")
        try:
            raw = _b64decode(sealed)
        except (binascii.Error, ValueError):
            raise InvalidTokenError("sealed is not base64url") from None
        if raw[:1] != _VERSION or len(raw) < 1 + _NONCE_BYTES + 16:
            raise InvalidTokenError("sealed has an unknown version")
        nonce, body = raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :]
        try:
            plain = self._aead.decrypt(nonce, body, _VERSION + share_id.encode())
        except InvalidTag:
            raise InvalidTokenError("sealed does not open with this key and share") from None
        return _parse(plain)


def _parse(plain: bytes) -> Sealed:
    # Authenticated, so written by us; still checked, as a bug must not grant anything.
    try:
        content = json.loads(plain)
    except ValueError:
        raise InvalidTokenError("sealed content is not JSON") from None
    if not isinstance(content, dict):
        raise InvalidTokenError("sealed content is not an object")
    items = content.get("studies")
    if not isinstance(items, list) or not items:
        raise InvalidTokenError("sealed studies are not a non-empty list")
    studies = []
    for item in items:
        if not isinstance(item, list) or len(item) != 2:
            raise InvalidTokenError("a sealed study is not a pair")
        study = StudyGrant(_optional_id(item[0]), _optional_id(item[1]))
        if study.dicom_uid is None and study.orthanc_id is None:
            raise InvalidTokenError("a sealed study has no id")
        studies.append(study)
    label = content.get("id")
    return Sealed(tuple(studies), label if isinstance(label, str) else None)

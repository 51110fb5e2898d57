"""Keyed pseudonyms of one share: UIDs, Orthanc ids and the date shift.

Every pseudonym is an HMAC-SHA256 of the real value, keyed with the anonymization key
and bound to the share (its id, or the revocation key of tokens minted by the original
service, which have no id). So the same study gets unrelated pseudonyms in two shares,
nobody without the key can compute or link them, and the anonymizer recomputes them
without storing anything. The mapping is one-way: the anonymizer finds the real value
behind a pseudonym by computing the pseudonyms of the resources a share grants.

This module depends only on the standard library and `shared`, so that the token service
can build anonymized viewer links with the same functions (`pseudonymous_share`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, timedelta

from shared.models import Share, StudyGrant
from shared.urls import viewer_url

__all__ = [
    "MAX_DATE_SHIFT_DAYS",
    "MIN_DATE_SHIFT_DAYS",
    "UID_ROOT",
    "Pseudonymizer",
    "anonymized_viewer_url",
    "pseudonymizer_for",
    "pseudonymous_share",
    "pseudonymous_studies",
    "share_scope",
]

# ISO/IEC 9834-8 / ITU-T X.667: a UUID-derived UID; "2.25." + 39 digits at most = 44 chars.
UID_ROOT = "2.25."
MIN_DATE_SHIFT_DAYS = 365
MAX_DATE_SHIFT_DAYS = 365 * 11
_DOMAIN = b"orthanc-share/anonymizer/v1"
_MEMO_LIMIT = 200_000


def share_scope(share: Share) -> str:
    """What binds pseudonyms to one share: its id, or the revocation key of an old token."""
    return share.share_id or share.revocation_key


class Pseudonymizer:
    """The pseudonyms of one share under one key (values are memoised, bounded)."""

    __slots__ = ("_key", "_memo", "_scope", "date_shift_days")

    def __init__(self, key: bytes, scope: str) -> None:
        if not key:
            raise ValueError("the anonymization key is empty")
        self._key = key
        self._scope = scope.encode()
        self._memo: dict[tuple[str, str], str] = {}
        digest = self._digest("date-shift", "")
        span = MAX_DATE_SHIFT_DAYS - MIN_DATE_SHIFT_DAYS
        self.date_shift_days = MIN_DATE_SHIFT_DAYS + int.from_bytes(digest[:8], "big") % span

    def _digest(self, kind: str, value: str) -> bytes:
        message = b"\x00".join((_DOMAIN, kind.encode(), self._scope, value.encode()))
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def _memoised(self, kind: str, value: str) -> str | None:
        return self._memo.get((kind, value))

    def _remember(self, kind: str, value: str, pseudonym: str) -> str:
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[(kind, value)] = pseudonym
        return pseudonym

    def uid(self, real: str) -> str:
        """The pseudonymous UID of a study, series, instance or other instance-level UID."""
        real = real.strip().rstrip("\x00")
        found = self._memoised("uid", real)
        if found is not None:
            return found
        number = int.from_bytes(self._digest("uid", real)[:16], "big")
        return self._remember("uid", real, UID_ROOT + str(number))

    def orthanc_id(self, real: str) -> str:
        """A pseudonymous Orthanc id, shaped like Orthanc's (five groups of 8 hex digits)."""
        real = real.strip().lower()
        found = self._memoised("orthanc-id", real)
        if found is not None:
            return found
        hexa = self._digest("orthanc-id", real)[:20].hex()
        pseudonym = "-".join(hexa[i : i + 8] for i in range(0, 40, 8))
        return self._remember("orthanc-id", real, pseudonym)

    def shift_date(self, value: str) -> str | None:
        """A DA value (YYYYMMDD, or the old YYYY.MM.DD) moved back; None if not a date."""
        text = value.strip()
        if len(text) == 10 and text[4] == "." and text[7] == ".":
            text = text[:4] + text[5:7] + text[8:]
        if len(text) != 8 or not text.isdigit():
            return None
        try:
            moment = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            return None
        try:
            shifted = moment - timedelta(days=self.date_shift_days)
        except OverflowError:
            return None
        return f"{shifted.year:04d}{shifted.month:02d}{shifted.day:02d}"

    def shift_datetime(self, value: str) -> str | None:
        """A DT value whose date part is moved back, time and offset kept; None if invalid."""
        text = value.strip()
        if len(text) < 8:
            return None
        day = self.shift_date(text[:8])
        if day is None:
            return None
        return day + text[8:]


def pseudonymizer_for(share: Share, key: bytes) -> Pseudonymizer:
    """The pseudonymizer of a share."""
    return Pseudonymizer(key, share_scope(share))


def pseudonymous_studies(
    studies: Iterable[StudyGrant], pseudo: Pseudonymizer
) -> tuple[StudyGrant, ...]:
    """The studies named by their pseudonyms."""
    return tuple(
        StudyGrant(
            pseudo.uid(s.dicom_uid) if s.dicom_uid else None,
            pseudo.orthanc_id(s.orthanc_id) if s.orthanc_id else None,
        )
        for s in studies
    )


def pseudonymous_share(share: Share, key: bytes) -> Share:
    """The share with its studies named by their pseudonyms (ids and scope unchanged).

    What a viewer link of an anonymized share must name: pass it to
    `shared.urls.viewer_url` in place of the share.
    """
    studies = pseudonymous_studies(share.studies, pseudonymizer_for(share, key))
    return replace(share, studies=studies)


def anonymized_viewer_url(share: Share, token: str, orthanc_root: str, key: bytes) -> str | None:
    """The viewer link of an anonymized share, naming its studies by their pseudonyms.

    `orthanc_root` is the public root of the anonymizer (PUBLIC_ANONYMIZED_ORTHANC_ROOT);
    None when a study lacks the id the viewer needs.
    """
    return viewer_url(pseudonymous_share(share, key), token, orthanc_root)

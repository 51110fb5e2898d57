"""Fixtures and small helpers for the tests of the `shared` library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest

from shared.models import Share, ShareRequest, ShareType, StudyGrant
from shared.revocations import PostgresRevocationStore, SqliteRevocationStore, open_store
from tests.factories import SECRET, STUDY_ID, STUDY_UID, share_body
from tests.postgres import PostgresServer

KEY = SECRET.encode()
# 2023-11-14T22:13:20.750Z: a fixed "now" for codecs and caches.
NOW = 1_700_000_000.75


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWS segments are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: Any) -> str:
    """A JSON value as a compact base64url segment."""
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unb64url(segment: str) -> bytes:
    """Decode an unpadded base64url segment."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def hand_signed(
    header: dict[str, Any] | str,
    payload: dict[str, Any] | str | bytes,
    key: bytes = KEY,
    digest: str = "sha256",
) -> str:
    """A JWS built without PyJWT: any header, any payload, an HMAC signature with `digest`.

    Strings are taken as ready-made base64url segments, bytes as the raw payload.
    """
    head = header if isinstance(header, str) else b64url_json(header)
    if isinstance(payload, str):
        body = payload
    elif isinstance(payload, bytes):
        body = b64url(payload)
    else:
        body = b64url_json(payload)
    signing_input = f"{head}.{body}".encode()
    signature = hmac.new(key, signing_input, getattr(hashlib, digest)).digest()
    return f"{head}.{body}.{b64url(signature)}"


def share_request(**overrides: Any) -> ShareRequest:
    """A validated `PUT /shares` body (see `tests.factories.share_body`)."""
    return ShareRequest.model_validate(share_body(**overrides))


def make_share(
    *studies: StudyGrant,
    type: ShareType = ShareType.STONE_VIEWER_PUBLICATION,
    anonymized: bool = False,
    expires_at: float | None = None,
) -> Share:
    """A verified share, as the codec would return it."""
    return Share(
        type=type,
        studies=studies or (StudyGrant(STUDY_UID, STUDY_ID),),
        anonymized=anonymized,
        expires_at=expires_at,
        share_id="share-1",
        label=None,
        revocation_key="jti:share-1",
        generation="current",
    )


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop the services use."""
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """The URL of an empty revocation database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'revocations.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture
def store(store_url: str) -> Iterator[SqliteRevocationStore | PostgresRevocationStore]:
    """An opened (so set up) revocation store of each backend."""
    yield open_store(store_url)

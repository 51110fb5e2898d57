"""The list of revoked shares: stored in SQLite or PostgreSQL, held in memory by each service.

Validation must not wait on a database, so each service keeps the set of revoked keys in
memory and reloads it every `REVOCATION_REFRESH_SECONDS`; a revocation made by one
service is seen by the others within that time (plus the plugin's cache validity).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
import psycopg

from shared.errors import ConfigurationError
from shared.settings import CommonSettings

__all__ = ["RevocationList", "RevocationStore", "open_configured_store", "open_store"]

logger = logging.getLogger(__name__)

_TABLE = "orthanc_share_revocations"
_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {_TABLE} ("
    " key TEXT PRIMARY KEY,"
    " revoked_at DOUBLE PRECISION NOT NULL,"
    " expires_at DOUBLE PRECISION)"
)


class RevocationStore(Protocol):
    """Durable storage of revocation keys."""

    def revoke(self, key: str, expires_at: float | None) -> None:
        """Record a revoked share; revoking twice is harmless."""

    def active_keys(self, now: float) -> frozenset[str]:
        """Keys of revoked shares that have not expired yet."""


class _SqlStore:
    """The SQL both backends share; `_param` is the driver's placeholder."""

    _param = "?"

    def _connect(self) -> Any:
        raise NotImplementedError

    def setup(self) -> None:
        with contextlib.closing(self._connect()) as conn, conn:
            conn.execute(_CREATE)

    def revoke(self, key: str, expires_at: float | None) -> None:
        p = self._param
        with contextlib.closing(self._connect()) as conn, conn:
            conn.execute(
                f"INSERT INTO {_TABLE} (key, revoked_at, expires_at) VALUES ({p}, {p}, {p})"
                " ON CONFLICT (key) DO NOTHING",
                (key, time.time(), expires_at),
            )

    def active_keys(self, now: float) -> frozenset[str]:
        p = self._param
        with contextlib.closing(self._connect()) as conn, conn:
            rows = conn.execute(
                f"SELECT key FROM {_TABLE} WHERE expires_at IS NULL OR expires_at > {p}", (now,)
            ).fetchall()
        return frozenset(row[0] for row in rows)


class SqliteRevocationStore(_SqlStore):
    """A SQLite file, for single-host installs and the embedded defaults."""

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=10)


class PostgresRevocationStore(_SqlStore):
    """A PostgreSQL database, shared by every service of a deployment."""

    _param = "%s"

    def __init__(self, url: str) -> None:
        self._url = url

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._url, connect_timeout=5)


def open_store(url: str) -> SqliteRevocationStore | PostgresRevocationStore:
    """The store a `DATABASE_URL` names: `sqlite:///PATH` or `postgresql://...`."""
    if url.startswith("sqlite:///"):
        store: SqliteRevocationStore | PostgresRevocationStore = SqliteRevocationStore(
            Path(url.removeprefix("sqlite:///")).expanduser()
        )
    elif url.startswith(("postgresql://", "postgres://")):
        store = PostgresRevocationStore(url)
    else:
        raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://")
    store.setup()
    return store


def open_configured_store(
    settings: CommonSettings,
) -> SqliteRevocationStore | PostgresRevocationStore | None:
    """The store of `DATABASE_URL`, or None; ConfigurationError if it cannot be opened."""
    if settings.database_url is None:
        return None
    try:
        return open_store(settings.database_url.get_secret_value())
    except ValueError as error:
        raise ConfigurationError(f"invalid configuration: DATABASE_URL: {error}") from None
    except (sqlite3.Error, psycopg.Error, OSError) as error:
        raise ConfigurationError(
            f"DATABASE_URL: cannot open the revocation database ({type(error).__name__})"
        ) from None


class RevocationList:
    """The in-memory set of revoked keys, refreshed from the store in the background."""

    def __init__(
        self, store: SqliteRevocationStore | PostgresRevocationStore | None, refresh_seconds: float
    ) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._keys: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    @property
    def enabled(self) -> bool:
        """Whether a store is configured (revocation is possible)."""
        return self._store is not None

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    async def start(self) -> None:
        """Load the list once (failing loudly) and start refreshing it."""
        if self._store is None:
            return
        store = self._store
        self._keys = await anyio.to_thread.run_sync(store.active_keys, time.time())
        self._task = asyncio.create_task(self._refresh_forever())

    async def stop(self) -> None:
        """Stop the background refresh."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def revoke(self, key: str, expires_at: float | None) -> None:
        """Record a revocation durably, then apply it here at once."""
        if self._store is None:
            raise RuntimeError("no revocation store configured")
        await anyio.to_thread.run_sync(self._store.revoke, key, expires_at)
        self._keys = self._keys | {key}

    async def refresh(self) -> None:
        """Reload the list; on a store failure keep the last one and say so once."""
        if self._store is None:
            return
        before = self._keys
        try:
            keys = await anyio.to_thread.run_sync(self._store.active_keys, time.time())
        except (sqlite3.Error, psycopg.Error, OSError) as error:
            if not self._failing:
                logger.error(
                    "cannot reload revoked shares (%s); keeping the last list", type(error).__name__
                )
            self._failing = True
            return
        if self._failing:
            logger.warning("revoked shares reloaded again")
        self._failing = False
        # Keep what was revoked here while the store was being read.
        self._keys = keys | (self._keys - before)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            await self.refresh()

"""The revocation list: both stores (SQLite and a real PostgreSQL), and the in-memory list."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.to_thread
import psycopg
import pytest

from shared.errors import ConfigurationError
from shared.revocations import (
    PostgresRevocationStore,
    RevocationList,
    SqliteRevocationStore,
    open_configured_store,
    open_store,
)
from tests.factories import token_service_settings
from tests.postgres import PostgresServer, free_port

Store = SqliteRevocationStore | PostgresRevocationStore
TABLE = "orthanc_share_revocations"


def drop_table(url: str) -> None:
    """Break a store behind its back, as a lost or restored database would."""
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn, conn:
            conn.execute(f"DROP TABLE {TABLE}")
    else:
        with psycopg.connect(url) as pg_conn:
            pg_conn.execute(f"DROP TABLE {TABLE}")


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `condition()` holds; fail after `timeout` seconds."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


def revocation_errors(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "shared.revocations" and record.levelno == level
    ]


# --- stores -----------------------------------------------------------------------------


def test_new_store_is_empty(store: Store) -> None:
    assert store.active_keys(0.0) == frozenset()


def test_revoke_is_idempotent(store: Store) -> None:
    store.revoke("jti:share-1", 2_000.0)
    store.revoke("jti:share-1", 2_000.0)
    store.revoke("jti:share-1", None)  # the first revocation is kept

    assert store.active_keys(1_000.0) == {"jti:share-1"}
    assert store.active_keys(3_000.0) == frozenset()


def test_active_keys_exclude_expired_entries(store: Store) -> None:
    store.revoke("sha256:expired-long-ago", 100.0)
    store.revoke("jti:expires-now", 200.0)
    store.revoke("jti:expires-later", 300.5)
    store.revoke("jti:never-expires", None)

    # An entry is dropped once its share has expired (now >= expires_at): it grants
    # nothing any more anyway.
    assert store.active_keys(200.0) == {"jti:expires-later", "jti:never-expires"}
    assert store.active_keys(199.9) == {
        "jti:expires-now",
        "jti:expires-later",
        "jti:never-expires",
    }
    assert store.active_keys(1e12) == {"jti:never-expires"}


def test_revocations_are_durable(store_url: str) -> None:
    open_store(store_url).revoke("jti:share-1", None)

    reopened = open_store(store_url)  # setup again is harmless

    assert reopened.active_keys(0.0) == {"jti:share-1"}


def test_stores_share_one_database(store_url: str) -> None:
    first, second = open_store(store_url), open_store(store_url)

    first.revoke("jti:a", None)
    second.revoke("jti:b", None)

    assert first.active_keys(0.0) == second.active_keys(0.0) == {"jti:a", "jti:b"}


def test_keys_are_stored_verbatim(store: Store) -> None:
    keys = {"jti:" + "x" * 200, "sha256:" + "0" * 64, "jti:quote'\"; DROP TABLE x;--"}
    for key in keys:
        store.revoke(key, None)

    assert store.active_keys(0.0) == keys


def test_open_store_picks_the_backend(tmp_path: Path, postgres_url: str) -> None:
    sqlite_store = open_store(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'r.sqlite3'}")
    assert isinstance(sqlite_store, SqliteRevocationStore)
    assert (tmp_path / "deep" / "dir" / "r.sqlite3").is_file()

    assert isinstance(open_store(postgres_url), PostgresRevocationStore)
    short_scheme = postgres_url.replace("postgresql://", "postgres://", 1)
    assert isinstance(open_store(short_scheme), PostgresRevocationStore)


# --- open_configured_store --------------------------------------------------------------


def test_no_database_url_means_no_store() -> None:
    assert open_configured_store(token_service_settings()) is None


def test_configured_store_works(store_url: str) -> None:
    store = open_configured_store(token_service_settings(database_url=store_url))

    assert store is not None
    store.revoke("jti:share-1", None)
    assert store.active_keys(0.0) == {"jti:share-1"}


@pytest.mark.parametrize(
    "url",
    [
        "mysql://share:db-s3cret@db/shares",
        "sqlite://relative-db-s3cret.sqlite3",
        "db-s3cret.sqlite3",
        "postgresql+psycopg://share:db-s3cret@db/shares",
        "",
    ],
)
def test_bad_database_url_is_a_configuration_error(url: str) -> None:
    settings = token_service_settings(database_url=url)

    with pytest.raises(ConfigurationError) as caught:
        open_configured_store(settings)

    assert "DATABASE_URL" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_unusable_sqlite_path_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    settings = token_service_settings(database_url=f"sqlite:///{tmp_path / 'a-file' / 'r.db'}")

    with pytest.raises(ConfigurationError) as caught:
        open_configured_store(settings)

    assert "DATABASE_URL" in str(caught.value)


def test_unreachable_postgresql_is_a_configuration_error() -> None:
    url = f"postgresql://share:db-s3cret-password@127.0.0.1:{free_port()}/shares"

    with pytest.raises(ConfigurationError) as caught:
        open_configured_store(token_service_settings(database_url=url))

    message = str(caught.value)
    assert "DATABASE_URL" in message
    assert "db-s3cret-password" not in message
    assert "\n" not in message


def test_wrong_postgresql_password_is_a_configuration_error(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.url_for(postgres_server.database, password="wrong-s3cret-password")

    with pytest.raises(ConfigurationError) as caught:
        open_configured_store(token_service_settings(database_url=url))

    assert "DATABASE_URL" in str(caught.value)
    assert "wrong-s3cret-password" not in str(caught.value)
    assert postgres_server.password not in str(caught.value)


# --- RevocationList ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_list_without_store() -> None:
    revocations = RevocationList(None, refresh_seconds=0.01)

    await revocations.start()
    await revocations.refresh()

    assert not revocations.enabled
    assert "jti:share-1" not in revocations
    with pytest.raises(RuntimeError):
        await revocations.revoke("jti:share-1", None)
    await revocations.stop()


@pytest.mark.anyio
async def test_list_start_loads_the_active_keys(store: Store) -> None:
    store.revoke("jti:revoked", None)
    store.revoke("jti:long-expired", 1_000.0)
    revocations = RevocationList(store, refresh_seconds=3600)

    await revocations.start()
    try:
        assert revocations.enabled
        assert "jti:revoked" in revocations
        assert "jti:long-expired" not in revocations
        assert "jti:other" not in revocations
    finally:
        await revocations.stop()


@pytest.mark.anyio
async def test_list_revoke_applies_at_once_and_durably(store_url: str) -> None:
    revocations = RevocationList(open_store(store_url), refresh_seconds=3600)
    await revocations.start()
    try:
        await revocations.revoke("jti:share-1", None)

        assert "jti:share-1" in revocations
        assert open_store(store_url).active_keys(0.0) == {"jti:share-1"}
    finally:
        await revocations.stop()


@pytest.mark.anyio
async def test_list_sees_revocations_of_another_service(store_url: str) -> None:
    # Two services, each with its own store object on the same database.
    revoking = RevocationList(open_store(store_url), refresh_seconds=3600)
    watching = RevocationList(open_store(store_url), refresh_seconds=0.05)
    await revoking.start()
    await watching.start()
    try:
        await revoking.revoke("jti:share-1", None)

        await eventually(lambda: "jti:share-1" in watching)
    finally:
        await revoking.stop()
        await watching.stop()


@pytest.mark.anyio
async def test_list_refresh_reloads_the_store(store_url: str) -> None:
    revocations = RevocationList(open_store(store_url), refresh_seconds=3600)
    await revocations.start()
    try:
        open_store(store_url).revoke("jti:share-1", None)
        assert "jti:share-1" not in revocations  # no background refresh within an hour

        await revocations.refresh()

        assert "jti:share-1" in revocations
    finally:
        await revocations.stop()


@pytest.mark.anyio
async def test_list_stop_ends_the_background_refresh(store_url: str) -> None:
    revocations = RevocationList(open_store(store_url), refresh_seconds=0.02)
    await revocations.start()
    await revocations.stop()
    await revocations.stop()  # twice is harmless

    open_store(store_url).revoke("jti:share-1", None)
    await anyio.sleep(0.2)

    assert "jti:share-1" not in revocations


@pytest.mark.anyio
async def test_list_start_fails_loudly_when_the_store_fails(store_url: str) -> None:
    store = open_store(store_url)
    drop_table(store_url)
    revocations = RevocationList(store, refresh_seconds=3600)

    with pytest.raises((sqlite3.Error, psycopg.Error)):
        await revocations.start()
    await revocations.stop()


@pytest.mark.anyio
async def test_list_keeps_the_last_keys_when_the_store_fails(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(store_url)
    store.revoke("jti:share-1", None)
    revocations = RevocationList(store, refresh_seconds=3600)
    await revocations.start()
    try:
        drop_table(store_url)
        with caplog.at_level(logging.WARNING, logger="shared.revocations"):
            await revocations.refresh()
            await revocations.refresh()

            assert "jti:share-1" in revocations
            errors = revocation_errors(caplog, logging.ERROR)
            assert len(errors) == 1  # said once, not at every refresh
            assert "postgresql://" not in errors[0] and "sqlite" not in errors[0]

            store.setup()  # the database is back, empty
            await revocations.refresh()

            assert "jti:share-1" not in revocations
            assert len(revocation_errors(caplog, logging.WARNING)) == 1
    finally:
        await revocations.stop()


@pytest.mark.anyio
async def test_list_keeps_the_last_keys_when_postgresql_goes_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with PostgresServer() as server:
        store = open_store(server.url)
        store.revoke("jti:share-1", None)
        revocations = RevocationList(store, refresh_seconds=3600)
        await revocations.start()
        try:
            server.stop()
            with caplog.at_level(logging.ERROR, logger="shared.revocations"):
                await revocations.refresh()

            assert "jti:share-1" in revocations
            errors = revocation_errors(caplog, logging.ERROR)
            assert len(errors) == 1
            assert server.password not in errors[0]
        finally:
            await revocations.stop()


class GatedStore(SqliteRevocationStore):
    """A SQLite store whose reads can be held after they have read the table."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.hold = False
        self.reading = threading.Event()
        self.release = threading.Event()

    def active_keys(self, now: float) -> frozenset[str]:
        keys = super().active_keys(now)
        if self.hold:
            self.reading.set()
            self.release.wait(5)
        return keys


@pytest.mark.anyio
async def test_list_revocation_during_a_refresh_is_not_lost(tmp_path: Path) -> None:
    # A refresh that read the table before a local revocation must not replace the list
    # with that older read: revoke() promises the revocation applies here at once.
    store = GatedStore(tmp_path / "revocations.sqlite3")
    store.setup()
    revocations = RevocationList(store, refresh_seconds=3600)
    await revocations.start()
    try:
        store.hold = True
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(revocations.refresh)
            assert await anyio.to_thread.run_sync(store.reading.wait, 5)

            await revocations.revoke("jti:share-1", None)
            assert "jti:share-1" in revocations

            store.release.set()

        assert "jti:share-1" in revocations
    finally:
        await revocations.stop()

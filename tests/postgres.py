"""A real, throw-away PostgreSQL server for tests.

Register the fixtures from the top-level `tests/conftest.py`:

    pytest_plugins = ["tests.postgres"]

`PostgresServer` runs Debian's PostgreSQL binaries (`initdb`, `pg_ctl`) in a private
temporary directory, listening on a free port of 127.0.0.1 only, with its Unix socket
inside that directory. `initdb` refuses to run as root, so when the tests run as root
the binaries run as the `postgres` system user, in a directory that user owns; any
other user runs them directly. Durability is switched off: the cluster lives for one
test session.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
import pytest
from psycopg import sql

__all__ = ["PostgresServer", "postgres_server", "postgres_url"]

# Tried in order when POSTGRES_BIN_DIR is not set; the newest Debian cluster version first.
_DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_SYSTEM_USER = "postgres"
_SUPERUSER = "admin"

# Settings for a disposable cluster: no durability, little memory, loopback only.
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "shared_buffers": "16MB",
    "max_connections": "40",
    "dynamic_shared_memory_type": "posix",
    "logging_collector": "off",
    "log_min_messages": "warning",
}


def find_bin_dir() -> Path:
    """The directory holding `initdb` and `pg_ctl`: $POSTGRES_BIN_DIR, Debian's, or PATH."""
    configured = os.environ.get("POSTGRES_BIN_DIR")
    candidates = [Path(configured)] if configured else []
    candidates += sorted(
        Path("/").glob(_DEBIAN_BIN_GLOB.lstrip("/")),
        key=lambda path: _version_key(path.parent.name),
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's `postgresql` "
        "package or set POSTGRES_BIN_DIR"
    )


def _version_key(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (0,)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster with a database and a password-protected user.

    Use it as a context manager, or call `start()` and `stop()`. `url` is the
    `postgresql://user:password@127.0.0.1:PORT/db` URL of the database.
    """

    def __init__(
        self,
        bin_dir: Path | None = None,
        *,
        user: str = "orthanc_share",
        database: str = "orthanc_share",
    ) -> None:
        self._bin_dir = bin_dir or find_bin_dir()
        self.user = user
        self.database = database
        self.password = secrets.token_hex(16)
        self._admin_password = secrets.token_hex(16)
        self._run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._run_as = pwd.getpwnam(_SYSTEM_USER)
            except KeyError:
                raise RuntimeError(
                    f"tests run as root, and initdb refuses root: create the {_SYSTEM_USER!r} "
                    "system user (Debian's postgresql package does)"
                ) from None
        self._base: Path | None = None
        self.port = 0
        self._running = False

    @property
    def url(self) -> str:
        """URL of the test database, for the test user."""
        return self.url_for(self.database)

    def url_for(self, database: str, *, password: str | None = None) -> str:
        """URL of another database of this server (for the test user)."""
        if not self._running:
            raise RuntimeError("the PostgreSQL server is not running")
        secret = self.password if password is None else password
        return f"postgresql://{self.user}:{secret}@127.0.0.1:{self.port}/{database}"

    @property
    def _data_dir(self) -> Path:
        assert self._base is not None
        return self._base / "data"

    @property
    def _log_file(self) -> Path:
        assert self._base is not None
        return self._base / "server.log"

    def start(self) -> None:
        """Create the cluster, start it, and create the test user and database."""
        if self._running:
            return
        base = Path(tempfile.mkdtemp(prefix="orthanc-share-pg-"))
        self._base = base
        try:
            if self._run_as is not None:
                # /tmp is world-traversable; the directory itself is private to the server.
                os.chown(base, self._run_as.pw_uid, self._run_as.pw_gid)
            base.chmod(0o700)
            self._initdb(base)
            self._start_server(base)
            self._running = True
            self._create_user_and_database()
        except BaseException:
            self.stop()
            raise

    def _initdb(self, base: Path) -> None:
        password_file = base / "superuser-password"
        self._write(password_file, self._admin_password + "\n")
        self._run(
            [
                str(self._bin_dir / "initdb"),
                "--pgdata",
                str(self._data_dir),
                "--username",
                _SUPERUSER,
                "--pwfile",
                str(password_file),
                "--auth-local=trust",  # the socket directory is private to the server's user
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        password_file.unlink()

    def _start_server(self, base: Path, attempts: int = 3) -> None:
        settings = dict(_SERVER_SETTINGS, unix_socket_directories=f"'{base}'")
        config = self._data_dir / "postgresql.conf"
        original = config.read_text()
        for attempt in range(attempts):
            self.port = free_port()
            lines = [f"{name} = {value}" for name, value in {**settings, "port": self.port}.items()]
            self._write(config, original + "\n# tests/postgres.py\n" + "\n".join(lines) + "\n")
            try:
                self._run(
                    [
                        str(self._bin_dir / "pg_ctl"),
                        "start",
                        "--pgdata",
                        str(self._data_dir),
                        "--log",
                        str(self._log_file),
                        "--wait",
                        "--timeout=60",
                        "--silent",
                    ]
                )
                return
            except RuntimeError:
                # Another process may have taken the port between probe and bind.
                if attempt == attempts - 1:
                    raise

    def _create_user_and_database(self) -> None:
        with self._admin_connection() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(self.user), sql.Literal(self.password)
                )
            )
        self.create_database(self.database)

    def _admin_connection(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=_SUPERUSER,
            password=self._admin_password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database owned by the test user; return its URL."""
        name = name or "test_" + secrets.token_hex(6)
        with self._admin_connection() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(self.user)
                )
            )
        return self.url_for(name)

    def stop(self) -> None:
        """Stop the server at once and delete its files; safe to call twice."""
        base, self._base = self._base, None
        if base is None:
            return
        try:
            if (base / "data" / "postmaster.pid").exists():
                self._run(
                    [
                        str(self._bin_dir / "pg_ctl"),
                        "stop",
                        "--pgdata",
                        str(base / "data"),
                        "--mode=immediate",
                        "--wait",
                        "--silent",
                    ],
                    log_file=base / "server.log",
                )
        finally:
            self._running = False
            shutil.rmtree(base, ignore_errors=True)

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _run(self, command: Sequence[str], log_file: Path | None = None) -> None:
        """Run a PostgreSQL binary as the server's user; RuntimeError with its output."""
        kwargs: dict[str, Any] = {}
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._run_as is not None:
            kwargs = {
                "user": self._run_as.pw_uid,
                "group": self._run_as.pw_gid,
                "extra_groups": [],
            }
            env["HOME"] = self._run_as.pw_dir
            env["USER"] = env["LOGNAME"] = self._run_as.pw_name
        result = subprocess.run(
            list(command),
            cwd=self._base or tempfile.gettempdir(),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **kwargs,
        )
        if result.returncode != 0:
            if log_file is None and self._base is not None:
                log_file = self._log_file
            tail = (
                log_file.read_text(errors="replace")[-2000:]
                if log_file and log_file.is_file()
                else ""
            )
            raise RuntimeError(
                f"{Path(command[0]).name} failed with exit code {result.returncode}:\n"
                f"{result.stdout}{result.stderr}{tail}"
            )

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server running for the whole test session."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """`postgresql://user:password@127.0.0.1:PORT/db` of the session's test database."""
    return postgres_server.url

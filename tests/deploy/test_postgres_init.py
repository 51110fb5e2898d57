"""docker/postgres/init-databases.sh against a real PostgreSQL (Debian's, as in CI).

The official postgres image runs the script once, as the postgres user, against a
server reachable on its Unix socket with trust authentication; the same happens here,
then the databases are used the way the stack uses them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from shared.revocations import open_store
from tests.deploy.compose import REPO
from tests.deploy.nginx import free_port

SCRIPT = REPO / "docker" / "postgres" / "init-databases.sh"
# A password that would break naive quoting in SQL or in the shell.
ORTHANC_PASSWORD = 'it\'s; DROP ROLE postgres; -- "$HOME"'
SHARE_PASSWORD = "Zm9vYmFyYmF6cXV4cXV1eA-_"


def pg_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert candidates, "PostgreSQL server missing: install the Debian package postgresql"
    return candidates[-1].parent


@dataclass(frozen=True)
class Server:
    port: int
    socket_dir: Path
    as_postgres: list[str]

    def url(self, user: str, password: str, database: str) -> str:
        secret = quote(password, safe="")
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def server() -> Iterator[Server]:
    # PostgreSQL refuses to run as root: as root (CI), run it as the postgres user, in a
    # directory of its own outside pytest's root-only temp tree.
    # setpriv execs the command itself, so signals sent to the process reach postgres.
    as_postgres = (
        ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        if os.geteuid() == 0
        else []
    )
    base = Path(tempfile.mkdtemp(prefix="orthanc-share-pg-"))
    if as_postgres:
        shutil.chown(base, "postgres", "postgres")
    data, sockets = base / "data", base / "sockets"
    subprocess.run([*as_postgres, "mkdir", str(sockets)], check=True, timeout=30)
    subprocess.run(
        [
            *as_postgres,
            str(pg_bin() / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    process = subprocess.Popen(
        [
            *as_postgres,
            str(pg_bin() / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(sockets),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while (
            subprocess.run(
                [str(pg_bin() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
                timeout=30,
            ).returncode
            != 0
        ):
            assert process.poll() is None, "postgres exited"
            assert time.monotonic() < deadline, "postgres did not start"
            time.sleep(0.1)
        yield Server(port, sockets, as_postgres)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)


def run_init_script(server: Server, secrets: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": f"{pg_bin()}:{os.environ['PATH']}",
        "PGHOST": str(server.socket_dir),
        "PGPORT": str(server.port),
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postgres",
        "INIT_SECRETS_DIR": str(secrets),
    }
    return subprocess.run(
        [
            *server.as_postgres,
            "env",
            *(f"{k}={v}" for k, v in environment.items()),
            "sh",
            str(SCRIPT),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def secrets_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="orthanc-share-secrets-"))
    directory.chmod(0o755)
    (directory / "orthanc_db_password").write_text(ORTHANC_PASSWORD + "\n")
    (directory / "share_db_password").write_text(SHARE_PASSWORD + "\n")
    for path in directory.iterdir():
        path.chmod(0o644)
    yield directory
    shutil.rmtree(directory)


@pytest.mark.e2e
def test_each_database_belongs_to_its_own_login(server: Server, secrets_dir: Path) -> None:
    result = run_init_script(server, secrets_dir)
    assert result.returncode == 0, result.stderr

    with psycopg.connect(server.url("orthanc", ORTHANC_PASSWORD, "orthanc")) as conn:
        conn.execute("CREATE TABLE probe (id int)")
    # The revocation list works through the URL docker/generate-secrets.py writes.
    store = open_store(server.url("orthanc_share", SHARE_PASSWORD, "orthanc_share"))
    store.revoke("share-1", None)
    assert store.active_keys(time.time()) == frozenset({"share-1"})

    for user, password, database in (
        ("orthanc", ORTHANC_PASSWORD, "orthanc_share"),
        ("orthanc_share", SHARE_PASSWORD, "orthanc"),
        ("orthanc", "wrong password", "orthanc"),
    ):
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url(user, password, database), connect_timeout=5).close()


@pytest.mark.e2e
def test_a_missing_password_stops_the_initialisation(server: Server, secrets_dir: Path) -> None:
    (secrets_dir / "share_db_password").write_text("")
    result = run_init_script(server, secrets_dir)
    assert result.returncode != 0
    assert "share_db_password is missing or empty" in result.stderr

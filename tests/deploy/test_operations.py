"""docs/deployment.md's way of reaching the token service, run against a real one.

The documented `ts` shell function runs `docker compose exec -T token-service python -c
...` with the USERS credentials of /run/secrets/USERS.  Without a Docker engine, a stand-in
`docker` runs the command on this host instead; only the secret's path and the service's
address are moved.  The documented commands themselves (revoke by id, revoke by link,
create an anonymized share) are run as written.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.deploy.compose import REPO
from tests.factories import SECRET
from tests.servers import ServiceProcess, start_service

pytestmark = pytest.mark.e2e

DOC = (REPO / "docs" / "deployment.md").read_text()
ADMIN = ("orthanc-admin", "admin-password-for-the-operations-test-0123")
FAKE_DOCKER = """#!/bin/sh
# Stand-in for `docker compose exec -T token-service CMD...`: run CMD here.
[ "$1 $2 $3 $4" = "compose exec -T token-service" ] || { echo "unexpected: $*" >&2; exit 97; }
shift 4
exec "$@"
"""


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", DOC, re.DOTALL)


def documented_function() -> str:
    (block,) = [b for b in shell_blocks() if b.startswith("ts() {")]
    return block


def documented_commands(start: str) -> list[str]:
    """The documented commands starting with `start`, without their trailing comments."""
    commands = []
    for block in shell_blocks():
        for command in re.split(r"\n(?=\S)", block):
            if command.startswith(start):
                commands.append(re.sub(r"\s+#[^'\n]*$", "", command.strip()))
    assert commands, start
    return commands


@dataclass(frozen=True)
class Operator:
    """A shell with `ts` defined as documented, against a real token service."""

    service: ServiceProcess
    function: str
    env: dict[str, str]

    def run(self, command: str) -> tuple[int, str]:
        result = subprocess.run(
            ["bash", "-c", f"{self.function}\n{command}"],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        status, _, body = result.stdout.strip().partition(" ")
        return int(status), body


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    work = tmp_path_factory.mktemp("operations")
    users = work / "USERS"
    users.write_text(json.dumps(dict([ADMIN])))
    service = start_service(
        "token-service",
        {
            "SECRET_KEY": SECRET,
            "ANONYMIZATION_KEY": "operations-test-anonymization-key-0123456789",
            "PUBLIC_ORTHANC_ROOT": "https://share.example.org/shares/",
            "PUBLIC_LANDING_ROOT": "https://share.example.org/welcome/",
            "PUBLIC_ANONYMIZED_ORTHANC_ROOT": "https://share.example.org/anon-shares/",
            "ANONYMIZED_SERVER_IDENTIFIER": "anonymized-server-id",
            "USERS": users.read_text(),
            "DATABASE_URL": f"sqlite:///{work / 'revocations.sqlite3'}",
        },
        work,
    )
    bin_dir = work / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    function = documented_function()
    for original, moved in (
        ("/run/secrets/USERS", str(users)),
        ("http://127.0.0.1:8000", service.url),
    ):
        assert original in function
        function = function.replace(original, moved)
    # `python` as in the image: the interpreter that has the project's dependencies.
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
    try:
        yield Operator(service, function, {"PATH": path})
    finally:
        service.stop()


def created_share_ids(service: ServiceProcess) -> list[str]:
    # What `docker compose logs token-service | grep "share created"` shows.
    return re.findall(r"share created: id=(\S+)", service.log())


def decode(service: ServiceProcess, token: str) -> dict[str, object]:
    answer = httpx.post(
        f"{service.url}/tokens/decode",
        json={"token-key": "token", "token-value": token},
        auth=ADMIN,
    )
    assert answer.status_code == 200, answer.text
    decoded: dict[str, object] = answer.json()
    return decoded


def test_the_documented_function_reaches_the_token_service(operator: Operator) -> None:
    assert "docker compose exec -T token-service python -c '" in operator.function
    assert operator.run("ts GET /health") == (200, '{"status":"ok"}')


def test_documented_anonymized_share_creation(operator: Operator) -> None:
    (command,) = documented_commands("ts PUT /shares ")
    status, body = operator.run(command)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["request"]["anonymized"] is True
    assert answer["url"].startswith("https://share.example.org/welcome/?token=")
    assert created_share_ids(operator.service)


def test_documented_revocations(operator: Operator) -> None:
    # Two fresh shares: one revoked by its id (from the log), one by its link.
    share = json.dumps(
        {
            "studies": [{"dicom-uid": "1.2.3.4"}],
            "type": "stone-viewer-publication",
            "expiration-date": "2030-01-01T00:00:00Z",
        }
    )
    before = len(created_share_ids(operator.service))
    by_id = json.loads(operator.run(f"ts PUT /shares {shlex.quote(share)}")[1])
    by_link = json.loads(operator.run(f"ts PUT /shares {shlex.quote(share)}")[1])
    share_id = created_share_ids(operator.service)[before]

    (delete,) = documented_commands("ts DELETE /shares/")
    delete = re.sub(r"/shares/\S+", f"/shares/{share_id}", delete)
    assert operator.run(delete) == (204, "")

    (revoke,) = documented_commands("ts POST /shares/revoke ")
    documented_link = re.search(r'"token": "([^"]+)"', revoke)
    assert documented_link
    revoke = revoke.replace(documented_link.group(1), by_link["url"])
    status, body = operator.run(revoke)
    assert status == 200, body
    assert json.loads(body)["revoked"] is True

    for share in (by_id, by_link):
        assert decode(operator.service, share["token"])["error-code"] == "invalid"

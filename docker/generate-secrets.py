#!/usr/bin/env python3
"""Create the secret files docker-compose.yml expects, with random values.

    python3 docker/generate-secrets.py            # into docker/secrets/
    python3 docker/generate-secrets.py --dir DIR

Several files must agree with each other (the token service's USERS and the admin
Orthanc's credentials for it, the database password and DATABASE_URL, ...), so they are
written in groups.  A group whose files all exist is kept as it is; a group with only some
of its files present is an error, because filling in the gaps would break the pairing.
Nothing is ever overwritten: to replace a secret, delete its group's files (see
docs/deployment.md for what else that implies) and run the script again.

Only the Python standard library is used, so the deployment host needs nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parent / "secrets"

# Account names, as they appear in the token service's USERS / VALIDATION_USERS and in
# each Orthanc's "Authorization" section.
ADMIN_ORTHANC_ACCOUNT = "orthanc-admin"
SHARE_ORTHANC_ACCOUNT = "orthanc-share"
ANON_SHARE_ORTHANC_ACCOUNT = "orthanc-anon-share"
ADMIN_UI_USER = "admin"
MEDDREAM_ORTHANC_USER = "meddream"

Files = dict[str, str]


def password() -> str:
    """256 random bits, URL-safe: no quoting problem in JSON, URLs, env files or SQL."""
    return secrets.token_urlsafe(32)


def as_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def token_service_credentials(account: str, secret: str) -> str:
    """An Orthanc configuration fragment: how this Orthanc authenticates to the token service."""
    return as_json({"Authorization": {"WebServiceUsername": account, "WebServicePassword": secret}})


def signing_keys() -> Files:
    # SECRET_KEY signs every share link; 256 bits, as HS256 wants.  PREVIOUS_SECRET_KEYS
    # starts empty: it receives old keys when SECRET_KEY is rotated (one per line), so
    # links signed with them keep opening.
    return {"secret_key": secrets.token_urlsafe(32) + "\n", "previous_secret_keys": ""}


def anonymization_key() -> Files:
    # Keys the pseudonymous UIDs of anonymized shares (token service, landing and
    # anonymizer read the same file); at least 32 bytes, here 256 random bits.  Its own
    # group: a deployment created before it existed gets it without touching the rest.
    return {"anonymization_key": secrets.token_urlsafe(32) + "\n"}


def postgres_superuser() -> Files:
    return {"postgres_password": password() + "\n"}


def orthanc_database() -> Files:
    return {"orthanc_db_password": password() + "\n"}


def share_database() -> Files:
    secret = password()
    return {
        "share_db_password": secret + "\n",
        "database_url": f"postgresql://orthanc_share:{secret}@postgres:5432/orthanc_share\n",
    }


def admin_orthanc_to_token_service() -> Files:
    # Full access (create, revoke): only the admin Orthanc holds these.
    secret = password()
    return {
        "token_service_users.json": as_json({ADMIN_ORTHANC_ACCOUNT: secret}),
        "orthanc_admin_token_service.json": token_service_credentials(
            ADMIN_ORTHANC_ACCOUNT, secret
        ),
    }


def share_orthancs_to_token_service() -> Files:
    # Validate/decode only: what the public-facing Orthancs hold cannot mint a share.
    share, anon_share = password(), password()
    return {
        "token_service_validation_users.json": as_json(
            {SHARE_ORTHANC_ACCOUNT: share, ANON_SHARE_ORTHANC_ACCOUNT: anon_share}
        ),
        "orthanc_share_token_service.json": token_service_credentials(SHARE_ORTHANC_ACCOUNT, share),
        "orthanc_anon_share_token_service.json": token_service_credentials(
            ANON_SHARE_ORTHANC_ACCOUNT, anon_share
        ),
    }


def admin_ui_users() -> Files:
    return {"orthanc_admin_users.json": as_json({"RegisteredUsers": {ADMIN_UI_USER: password()}})}


def meddream() -> Files:
    # Written even when the "meddream" profile is off: compose reads env files of every
    # service it loads.
    secret = password()
    env = (
        f"ORTHANC_USER={MEDDREAM_ORTHANC_USER}\n"
        f"ORTHANC_PWD={secret}\n"
        f"MEDDREAM_ADMIN_PASSWORD={password()}\n"
    )
    return {
        "orthanc_meddream_users.json": as_json(
            {"RegisteredUsers": {MEDDREAM_ORTHANC_USER: secret}}
        ),
        "meddream.env": env,
    }


GROUPS: list[tuple[str, Callable[[], Files]]] = [
    ("share link signing keys", signing_keys),
    ("anonymization key", anonymization_key),
    ("PostgreSQL superuser", postgres_superuser),
    ("Orthanc database", orthanc_database),
    ("revocation-list database", share_database),
    ("admin Orthanc -> token service", admin_orthanc_to_token_service),
    ("share Orthancs -> token service", share_orthancs_to_token_service),
    ("admin UI login", admin_ui_users),
    ("MedDream", meddream),
]


def file_names() -> list[str]:
    """Every file the script manages (values are generated anew, only names are used)."""
    return sorted(name for _, make in GROUPS for name in make())


def write_new(path: Path, content: str) -> None:
    # 0644 inside a 0700 directory: the host's other users cannot reach the files, and the
    # containers' unprivileged users (uid 10001, 999, ...) can read their bind mounts.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.chmod(path, 0o644)


def generate(directory: Path) -> list[str]:
    """Create the missing groups in `directory`; return one report line per group."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    planned = [(label, make()) for label, make in GROUPS]
    report = []
    for label, files in planned:
        present = [name for name in files if (directory / name).exists()]
        if len(present) == len(files):
            report.append(f"kept     {label}: {', '.join(files)}")
        elif present:
            missing = sorted(set(files) - set(present))
            raise SystemExit(
                f"generate-secrets: {label}: {', '.join(present)} exist(s) but "
                f"{', '.join(missing)} do(es) not; they must be created together. Delete "
                "the remaining ones (read docs/deployment.md first) and run again."
            )
    for label, files in planned:
        if any((directory / name).exists() for name in files):
            continue
        for name, content in files.items():
            write_new(directory / name, content)
        report.append(f"created  {label}: {', '.join(files)}")
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    for line in generate(args.dir):
        print(line)
    print(f"The admin UI login is in {args.dir / 'orthanc_admin_users.json'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

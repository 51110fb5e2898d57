#!/bin/sh
# Creates the two databases of the stack, each owned by its own login role, on the FIRST
# start of the PostgreSQL container (the official image runs /docker-entrypoint-initdb.d/
# scripts only while the data directory is empty; later password changes are done with
# ALTER ROLE, see docs/deployment.md).
#
#   orthanc        Orthanc's index and DICOM files (PostgreSQL plugins), shared by the
#                  admin, share and MedDream Orthancs
#   orthanc_share  the token service's and the landing's revocation list (DATABASE_URL)
#
# Separate roles: a leaked DATABASE_URL gives no access to the images, and the Orthancs'
# credentials give none to the revocation list.  Passwords come from Docker secrets and
# are handed to psql as variables, which :'name' quotes safely whatever they contain.
set -eu

# Where Docker mounts the secrets; settable so the script can be tested outside Docker.
secrets_dir=${INIT_SECRETS_DIR:-/run/secrets}

secret() {
    # The content of the secret file $1 (command substitution drops its final newline).
    if [ ! -s "$secrets_dir/$1" ]; then
        echo "init-databases: $secrets_dir/$1 is missing or empty" >&2
        exit 1
    fi
    cat "$secrets_dir/$1"
}

# Assignments, not inline $(...): only an assignment stops `set -e` on a failed read.
orthanc_password=$(secret orthanc_db_password)
share_password=$(secret share_db_password)

psql --set ON_ERROR_STOP=1 --no-psqlrc --quiet \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    --set orthanc_password="$orthanc_password" \
    --set share_password="$share_password" <<'SQL'
CREATE ROLE orthanc LOGIN PASSWORD :'orthanc_password';
CREATE DATABASE orthanc OWNER orthanc;
REVOKE ALL ON DATABASE orthanc FROM PUBLIC;

CREATE ROLE orthanc_share LOGIN PASSWORD :'share_password';
CREATE DATABASE orthanc_share OWNER orthanc_share;
REVOKE ALL ON DATABASE orthanc_share FROM PUBLIC;
SQL

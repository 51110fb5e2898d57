#!/usr/bin/env bash
# Installs the prebuilt OHIF viewer the end-to-end tests open (tests/e2e/test_ohif.py):
# @ohif/app exactly as pinned, integrity hash included, by tests/e2e/ohif/package-lock.json,
# into tests/e2e/ohif/node_modules (git-ignored). Prints the path of the viewer's files.
#
# The lock lists @ohif/app alone, without the dependencies its package.json declares:
# those build the viewer from source, and the package already ships it built (dist/).
# `npm ci` installs exactly what the lock lists, so only the pinned tarball is fetched.
# Nothing is done when the same lock was already installed.
set -euo pipefail

DIR="$(cd "$(dirname "$0")/../tests/e2e/ohif" && pwd)"
DIST="$DIR/node_modules/@ohif/app/dist"
STAMP="$DIR/node_modules/.orthanc-share-installed"
LOCK_HASH="$(sha256sum "$DIR/package.json" "$DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"

if [ -f "$DIST/index.html" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$LOCK_HASH" ]; then
  echo "$DIST"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "npm is missing: run scripts/install-system-deps.sh (or make system-deps)" >&2
  exit 1
fi
echo "installing the OHIF viewer pinned by $DIR/package-lock.json" >&2
# --ignore-scripts: nothing from the registry runs here; the package is static files.
(cd "$DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
if [ ! -f "$DIST/index.html" ]; then
  echo "npm ci finished but $DIST/index.html is missing" >&2
  exit 1
fi
echo "$LOCK_HASH" >"$STAMP"
echo "$DIST"

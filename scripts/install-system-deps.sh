#!/usr/bin/env bash
# Installs the Debian packages the test suite and the benchmark need: a real Orthanc
# (with Python and DICOMweb plugins), PostgreSQL, nginx, wrk, headless Chromium, and npm
# (which installs the pinned OHIF viewer, scripts/install-ohif.sh).
set -euo pipefail

PACKAGES=(
  orthanc orthanc-python orthanc-dicomweb
  postgresql
  nginx gettext-base openssl
  wrk
  chromium
  python3-venv
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Any npm will do (a newer Node may be installed another way): Debian's only when none is.
command -v npm >/dev/null || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${missing[*]}" >&2
$SUDO apt-get update -qq
# policy-rc.d keeps the packages' postinst from starting system-wide daemons
# (Orthanc on 8042, PostgreSQL on 5432, nginx on 80): the tests start their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Install everything the test suite needs (Kamailio, SIPp, the Python dev extra) and run pytest.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

if ! command -v kamailio >/dev/null 2>&1 || ! command -v sipp >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update
    $SUDO apt-get install -y kamailio sip-tester
fi

python3 -m pip install -e '.[dev]'
exec python3 -m pytest "$@"

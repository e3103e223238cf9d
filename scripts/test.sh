#!/usr/bin/env bash
# Install everything the test suite needs (Kamailio, SIPp, the Python dev extra) and run pytest.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

# Real SIP peers (tests/peers/): Debian's kamailio package has everything examples/kamailio.cfg
# loads (tm, sl, rr, registrar, usrloc, auth, ctl, ...) and kamcmd; sip-tester is SIPp. They
# live in /usr/sbin and /usr/bin, so look in sbin too (a non-root PATH may lack it).
PATH="$PATH:/usr/sbin:/usr/local/sbin:/sbin"
if ! command -v kamailio >/dev/null 2>&1 || ! command -v kamcmd >/dev/null 2>&1 \
    || ! command -v sipp >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update
    $SUDO apt-get install -y kamailio sip-tester
fi

# The dev extra includes pjsua2-python (the pjsua2 "mobile app" of examples/pjsua2_app.py).
# A Python that refuses system-wide installs (PEP 668) gets a project virtualenv instead.
if ! python3 -m pip install -e '.[dev]'; then
    python3 -m venv .venv
    # shellcheck disable=SC1091
    . .venv/bin/activate
    python3 -m pip install -e '.[dev]'
fi
exec python3 -m pytest "$@"

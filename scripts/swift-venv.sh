#!/usr/bin/env bash
# Install (once) Swift 2.38.3 and python-swiftclient from PyPI into the
# project's venv (scripts/python-venv.sh), with the Debian libraries their
# builds need (liberasurecode-dev for PyECLib). Idempotent; prints the
# venv's python path.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if ! dpkg -s liberasurecode-dev >/dev/null 2>&1; then
    echo "installing liberasurecode-dev…" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liberasurecode-dev >&2
fi
exec "$ROOT/scripts/python-venv.sh" swift==2.38.3 python-swiftclient

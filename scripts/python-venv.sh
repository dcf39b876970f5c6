#!/usr/bin/env bash
# Create (once) the project's Python virtualenv and install packages into it.
#
#   scripts/python-venv.sh [PACKAGE...]     prints the venv's python path
#
# Idempotent and safe to run concurrently (a lock serialises installs):
# tests call it before using Python tools (prometheus_client's parser, and
# later Swift's servers and clients). The venv lives in .venv at the
# repository root (ignored by git) unless AERIE_VENV points elsewhere.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${AERIE_VENV:-$ROOT/.venv}
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >&2 || {
        # Debian's python3 may lack ensurepip: install python3-venv.
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
        python3 -m venv "$VENV" >&2
    }
fi
missing=()
for pkg in "$@"; do
    name=${pkg%%[=<>]*}
    "$VENV/bin/python" -m pip show -q "$name" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${missing[@]}" >&2
fi
echo "$VENV/bin/python"

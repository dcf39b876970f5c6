#!/usr/bin/env bash
# Fetch (once) Swift 2.38.3's source distribution from PyPI and unpack it
# beside the project's venv: its etc/*-server.conf-sample files and the
# SAIO configs in doc/saio/swift are what tests/import.rs takes over.
# Idempotent and safe to run concurrently; prints the unpacked directory.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=$("$ROOT/scripts/swift-venv.sh")
VENV=$(dirname "$(dirname "$PY")")
DEST="$VENV/sdist"
SRC="$DEST/swift-2.38.3"
mkdir -p "$DEST"
exec 9>"$DEST.lock"
flock 9
if [ ! -f "$SRC/etc/object-server.conf-sample" ]; then
    if [ ! -f "$DEST/swift-2.38.3.tar.gz" ]; then
        "$PY" -m pip download -q --disable-pip-version-check --no-binary :all: --no-deps \
            swift==2.38.3 -d "$DEST" >&2
    fi
    tar -xzf "$DEST/swift-2.38.3.tar.gz" -C "$DEST"
fi
echo "$SRC"

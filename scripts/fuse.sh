#!/usr/bin/env bash
# Install (once) what the slow-disk tests and benchmark need to mount FUSE
# filesystems: Debian's fuse3 (fusermount3). Idempotent; run as root.
set -euo pipefail
if ! command -v fusermount3 >/dev/null 2>&1; then
    echo "installing fuse3…" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 >&2
fi
[ -e /dev/fuse ] || { echo "/dev/fuse is missing: FUSE is not available here" >&2; exit 1; }

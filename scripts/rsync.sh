#!/usr/bin/env bash
# Install (once) Debian's rsync, which Swift's replicators use in rsync mode
# and which a storage node runs as a daemon (etc/rsyncd.conf). Idempotent;
# prints the rsync binary's path.
set -euo pipefail
if ! command -v rsync >/dev/null 2>&1; then
    echo "installing rsync…" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync >&2
fi
command -v rsync

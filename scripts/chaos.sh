#!/usr/bin/env bash
# The long chaos run of issue #8: SECONDS (default 60) of mixed
# PUT/GET/DELETE/listing load from 32 clients on a 4-worker node while
# workers are SIGKILLed, the master gets HUPs and the object updater is
# killed once; then the invariants (tests/chaos.rs). CI runs the same test
# for 10 s as part of `cargo test --workspace`.
#
#   scripts/chaos.sh [SECONDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
AERIE_CHAOS_SECS=${1:-60} cargo test -q --test tests chaos:: -- --nocapture

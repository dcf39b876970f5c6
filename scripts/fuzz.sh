#!/usr/bin/env bash
# Run every fuzz target (fuzz/, cargo fuzz on the nightly toolchain) for
# SECONDS each (default 60) and print executions and coverage per target.
# Crashes are left in fuzz/artifacts/<target>/; turn each into a unit test.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-60}
shift || true
cd "$ROOT/fuzz"
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz
rustup run nightly true 2>/dev/null || { echo "cargo fuzz needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build -O >/dev/null
status=0
printf '%-20s %12s %8s %8s %s\n' target executions cov features result
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log=$(mktemp)
    if cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$SECS" -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="CRASH (see fuzz/artifacts/$t)"
        status=1
    fi
    execs=$(awk '/stat::number_of_executed_units/{print $2}' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    printf '%-20s %12s %8s %8s %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$result"
    [ "$result" = ok ] || tail -30 "$log" >&2
    rm -f "$log"
done
exit $status

#!/usr/bin/env bash
# Container service benchmark: aerie's container service against Swift
# 2.38.3's container-server (from PyPI), same worker count, on the same
# container database of ROWS rows (filled once with Swift's own broker,
# bench/container_fill.py), back to back in one run.
#
#   bench/container.sh [SECONDS] [ROUNDS] [WORKERS] [ROWS]
#
# Workloads: object-row PUTs of new names (32 connections); JSON listing
# pages of 10,000 rows — the first page, a middle page by marker, a
# prefix+delimiter page (4 connections); HEAD (32 connections). For each:
# ops/s, p99, operations per CPU-second of the server's own processes, and
# the aerie/Swift ratios (medians of per-round ratios).
set -euo pipefail
SECS=${1:-5}
ROUNDS=${2:-3}
WORKERS=${3:-1}
ROWS=${4:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TAG=contbench
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup
mkdir -p "$WORK/node/sda1"
echo "filling one container with $ROWS rows..."
"$PY" "$ROOT/bench/container_fill.py" "$WORK/node" sda1 AUTH_bench big "$ROWS"

start_aerie() { start_aerie_storage container "$1" "$WORKERS" 4 256; }
start_swift() { start_swift_server container "$1" "$WORKERS"; }

# run_load PORT MODE CONNS → "ops p99ms ops_per_cpu_s non2xx"
run_load() {
    local p=$1 mode=$2 conns=$3 t0 out
    t0=$(cpu_ticks "$(tree "$SERVER")")
    out=$(MODE=$mode DEV=sda1 RUN=$RUN wrk -t2 -c"$conns" -d"${SECS}s" --timeout 30s --latency -s "$ROOT/bench/lua/container.lua" "http://127.0.0.1:$p/")
    wrk_figures "$out" "$t0" "$(cpu_ticks "$(tree "$SERVER")")"
}

# A HEAD merges the rows a previous run left pending, before measuring.
head_big() {
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'HEAD /sda1/0/AUTH_bench/big HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' >&3
    timeout 60 cat <&3 >/dev/null || true
    exec 3<&-
}

echo "aerie container service vs Swift $("$PY" -c 'import swift; print(swift.__version__)') container-server; $WORKERS worker(s), $ROWS rows, ${SECS}s per run, $ROUNDS rounds, $(nproc) CPUs"
printf '\n%-18s %-6s %10s %10s %12s %8s\n' workload server "ops/s" "p99 ms" "ops/CPU-s" "non-2xx"
for wl in "rowput 32" "first 4" "middle 4" "prefix 4" "head 32"; do
    read -r mode conns <<<"$wl"
    declare -A L=(); rr=(); cr=()
    for r in $(seq "$ROUNDS"); do
        for server in aerie swift; do
            p=$(port)
            "start_$server" "$p"
            wait_port "$p"
            sleep 0.3
            RUN="$server$r"
            head_big "$p"
            read -r ops p99 per bad <<<"$(run_load "$p" "$mode" "$conns")"
            kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true
            L[$server.ops]+="$ops "; L[$server.p99]+="$p99 "; L[$server.cpu]+="$per "; L[$server.bad]+="$bad "
            eval "${server}_ops=$ops; ${server}_cpu=$per"
        done
        rr+=("$(ratio "$aerie_ops" "$swift_ops")")
        cr+=("$(ratio "$aerie_cpu" "$swift_cpu")")
    done
    for server in aerie swift; do
        printf '%-18s %-6s %10.1f %10.2f %12.1f %8s\n' "$mode ($conns conns)" "$server" \
            "$(tr ' ' '\n' <<<"${L[$server.ops]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${L[$server.p99]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${L[$server.cpu]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${L[$server.bad]}" | grep . | median)"
    done
    printf '%-18s %-6s %10s %10s %12s   (per round: ops %s; per CPU-s %s)\n' "" ratio \
        "$(printf '%s\n' "${rr[@]}" | median)x" "" "$(printf '%s\n' "${cr[@]}" | median)x" "${rr[*]}" "${cr[*]}"
    unset L
done
echo
echo "rows in the container at the end: $("$PY" -c "
import glob
from swift.container.backend import ContainerBroker
print(ContainerBroker(glob.glob('$WORK/node/sda1/containers/0/*/*/*.db')[0]).get_info()['object_count'])")"

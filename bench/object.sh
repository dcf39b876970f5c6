#!/usr/bin/env bash
# Object service benchmark: aerie's object service against Swift 2.38.3's
# object-server (from PyPI), same worker count, same devices filesystem,
# back to back in one run.
#
#   bench/object.sh [SECONDS] [ROUNDS] [WORKERS]
#
# Workloads (32 connections): PUT 4 KiB, GET 4 KiB, PUT 1 MiB, GET 1 MiB.
# PUTs create new objects (unique names, unique timestamps); GETs read
# objects a short PUT pass created. For each: ops/s, p99, operations per CPU-second of
# the server's own processes (user+sys from /proc), the aerie/Swift ratios
# (medians of per-round ratios), and each server's RSS per worker.
set -euo pipefail
SECS=${1:-5}
ROUNDS=${2:-3}
WORKERS=${3:-1}
CONNS=32
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TAG=objbench
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup
mkdir -p "$WORK/node/sda1"

start_aerie() { start_aerie_storage object "$1" "$WORKERS" 8 256; }
start_swift() { start_swift_server object "$1" "$WORKERS"; }

# run_load PORT MODE SIZE → "ops p99ms cpu_ticks"
run_load() {
    local p=$1 mode=$2 size=$3 t0 out
    t0=$(cpu_ticks "$(tree "$SERVER")")
    out=$(MODE=$mode SIZE=$size DEV=sda1 COUNT=200 RUN=$RUN wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$ROOT/bench/lua/object.lua" "http://127.0.0.1:$p/")
    wrk_figures "$out" "$t0" "$(cpu_ticks "$(tree "$SERVER")")"
}

echo "aerie object service vs Swift $("$PY" -c 'import swift; print(swift.__version__)') object-server; $WORKERS worker(s), $CONNS connections, ${SECS}s per run, $ROUNDS rounds, $(nproc) CPUs"
printf '\n%-14s %-6s %10s %9s %12s %8s\n' workload server "ops/s" "p99 ms" "ops/CPU-s" "non-2xx"
declare -A RSS
for wl in "put 4096" "get 4096" "put 1048576" "get 1048576"; do
    read -r mode size <<<"$wl"
    label="$mode $([ "$size" = 4096 ] && echo 4KiB || echo 1MiB)"
    declare -A L=(); rr=(); cr=()
    for r in $(seq "$ROUNDS"); do
        for server in aerie swift; do
            p=$(port)
            "start_$server" "$p"
            wait_port "$p"
            sleep 0.3
            RUN="$server$r$mode$size"
            if [ "$mode" = get ]; then
                # Create the objects the GETs read (a short PUT pass).
                MODE=put SIZE=$size DEV=sda1 COUNT=200 RUN=$RUN wrk -t2 -c"$CONNS" -d2s -s "$ROOT/bench/lua/object.lua" "http://127.0.0.1:$p/" >/dev/null
            fi
            read -r ops p99 per bad <<<"$(run_load "$p" "$mode" "$size")"
            RSS[$server]=$(rss_workers "$SERVER")
            kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true
            L[$server.ops]+="$ops "; L[$server.p99]+="$p99 "; L[$server.cpu]+="$per "; L[$server.bad]+="$bad "
            eval "${server}_ops=$ops; ${server}_cpu=$per"
        done
        rr+=("$(ratio "$aerie_ops" "$swift_ops")")
        cr+=("$(ratio "$aerie_cpu" "$swift_cpu")")
    done
    for server in aerie swift; do
        printf '%-14s %-6s %10.0f %9.2f %12.0f %8s\n' "$label" "$server" \
            "$(tr ' ' '\n' <<<"${L[$server.ops]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${L[$server.p99]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${L[$server.cpu]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${L[$server.bad]}" | grep . | median)"
    done
    printf '%-14s %-6s %10s %9s %12s   (per round: ops %s; per CPU-s %s)\n' "" ratio \
        "$(printf '%s\n' "${rr[@]}" | median)x" "" "$(printf '%s\n' "${cr[@]}" | median)x" "${rr[*]}" "${cr[*]}"
    unset L
done
echo
echo "RSS after load (per process): aerie ${RSS[aerie]}; swift ${RSS[swift]}"

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
compare_header
declare -A RSS
after_run() { RSS[$1]=$(rss_workers "$SERVER"); }
measure() {
    local p=$1 r=$2 server=$3
    RUN="$server$r$mode$size"
    if [ "$mode" = get ]; then
        # Create the objects the GETs read (a short PUT pass).
        MODE=put SIZE=$size DEV=sda1 COUNT=200 RUN=$RUN wrk -t2 -c"$CONNS" -d2s -s "$ROOT/bench/lua/object.lua" "http://127.0.0.1:$p/" >/dev/null
    fi
    run_load "$p" "$mode" "$size"
}
for wl in "put 4096" "get 4096" "put 1048576" "get 1048576"; do
    read -r mode size <<<"$wl"
    compare "$mode $([ "$size" = 4096 ] && echo 4KiB || echo 1MiB)" measure
done
echo
echo "RSS after load (per process): aerie ${RSS[aerie]}; swift ${RSS[swift]}"

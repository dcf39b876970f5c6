#!/usr/bin/env bash
# Container service benchmark: aerie's container service against Swift
# 2.38.3's container-server (from PyPI), same worker count, on the same
# container database of ROWS rows (filled once with Swift's own broker,
# bench/container_fill.py), back to back in one run.
#
#   bench/container.sh [SECONDS] [ROUNDS] [WORKERS] [ROWS]
#
# Environment: WORKLOADS (default "rowput:32 first:4 middle:4 prefix:4
# head:32", mode:connections), THREADS (aerie threads per device, 4).
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

start_aerie() { start_aerie_storage container "$1" "$WORKERS" "${THREADS:-4}" 256; }
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
compare_header
measure() {
    local p=$1 r=$2 server=$3
    RUN="$server$r"
    head_big "$p"
    run_load "$p" "$mode" "$conns"
}
for wl in ${WORKLOADS:-rowput:32 first:4 middle:4 prefix:4 head:32}; do
    mode=${wl%%:*} conns=${wl##*:}
    compare "$mode ($conns conns)" measure
done
echo
echo "rows in the container at the end: $("$PY" -c "
import glob
from swift.container.backend import ContainerBroker
print(ContainerBroker(glob.glob('$WORK/node/sda1/containers/0/*/*/*.db')[0]).get_info()['object_count'])")"

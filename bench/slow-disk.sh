#!/usr/bin/env bash
# One slow disk must not slow the node: aerie's object service against
# Swift 2.38.3's object-server (same worker count), each with two devices —
# `fast`, a plain directory, and `slow`, the slow FUSE filesystem
# (examples/slowfs.rs, DELAY ms per operation) — back to back in one run.
#
#   bench/slow-disk.sh [SECONDS] [ROUNDS] [WORKERS] [DELAY_MS] [SVG]
#
# Per server and round: 32 clients doing 4 KiB GETs and PUTs (half each)
# on the fast device alone (baseline), then again while 32 more clients do
# the same on the slow device. Prints fast-device ops/s and p99 in both
# phases, what is kept under slow-disk load, and what the slow device
# answered (ops/s, 503s). Then a timeline per server — fast-device ops/s in
# 1-second steps, the slow load running from second 4 to second 10 — drawn
# as an SVG chart (default docs/slow-disk.svg).
set -euo pipefail
SECS=${1:-5}
ROUNDS=${2:-3}
WORKERS=${3:-1}
DELAY=${4:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SVG=${5:-$ROOT/docs/slow-disk.svg}
TAG=slowdisk
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup
"$ROOT/scripts/fuse.sh"
(cd "$ROOT" && cargo build --release -q --example slowfs)
mkdir -p "$WORK/node/fast" "$WORK/node/slow" "$WORK/slow-backing"
CONTROL=$WORK/slowfs.control
echo "delay_ms=0" >"$CONTROL"
"$ROOT/target/release/examples/slowfs" "$WORK/slow-backing" "$WORK/node/slow" --control "$CONTROL" >"$WORK/slowfs.log" 2>&1 &
FUSE=$!
PIDS+=("$FUSE")
for _ in $(seq 100); do grep -q " $WORK/node/slow " /proc/mounts && break; sleep 0.1; done
grep -q " $WORK/node/slow " /proc/mounts || { echo "the slow filesystem did not mount" >&2; cat "$WORK/slowfs.log" >&2; exit 1; }
unmount() { kill "$FUSE" 2>/dev/null || true; sleep 0.5; umount -l "$WORK/node/slow" 2>/dev/null || true; }
trap 'unmount; cleanup' EXIT
delay() { echo "delay_ms=$1" >"$CONTROL"; sleep 0.3; }

start_aerie() { start_aerie_storage object "$1" "$WORKERS" 4 64; }
start_swift() { start_swift_server object "$1" "$WORKERS"; }

# load PORT DEV MODE CONNS SECONDS RUN FILL [THREADS] → wrk's output
load() {
    MODE=$3 SIZE=4096 DEV=$2 COUNT=100 RUN=$6 FILL=$7 wrk -t"${8:-2}" -c"$4" -d"$5s" --timeout 30s --latency \
        -s "$ROOT/bench/lua/object.lua" "http://127.0.0.1:$1/"
}
rps() { wrk_rps "$1"; }
p99() { wrk_ms "$1" 99; }

echo "one slow disk (${DELAY} ms per operation) next to a fast one: aerie vs Swift $("$PY" -c 'import swift; print(swift.__version__)') object-server; $WORKERS worker(s), 32+32 connections, 4 KiB GET/PUT, ${SECS}s per phase, $ROUNDS rounds, $(nproc) CPUs"
declare -A R
TIMELINE=$WORK/timeline.csv
: >"$TIMELINE"
for r in $(seq "$ROUNDS"); do
    for server in aerie swift; do
        p=$(port)
        "start_$server" "$p"
        wait_port "$p"
        sleep 0.3
        run="$server$r"
        delay 0
        load "$p" fast put 32 2 "${run}f" "${run}f" >/dev/null
        load "$p" slow put 8 2 "${run}s" "${run}s" >/dev/null
        delay "$DELAY"
        base=$(load "$p" fast mix 32 "$SECS" "${run}b" "${run}f")
        load "$p" slow mix 32 $((SECS + 3)) "${run}h" "${run}s" 1 >"$WORK/hammer.out" &
        hammer=$!
        sleep 1.5
        loaded=$(load "$p" fast mix 32 "$SECS" "${run}l" "${run}f")
        wait "$hammer" || true
        hout=$(cat "$WORK/hammer.out")
        if [ "$r" = 1 ]; then
            # The timeline: 1-second steps, slow load from second 4 to 10.
            for s in $(seq 1 13); do
                if [ "$s" = 4 ]; then
                    load "$p" slow mix 32 6 "${run}t" "${run}s" 1 >/dev/null &
                    hammer=$!
                fi
                out=$(load "$p" fast mix 32 1 "${run}t$s" "${run}f")
                echo "$server,$s,$(rps "$out")" >>"$TIMELINE"
            done
            wait "$hammer" || true
        fi
        # Let the slow device's backlog drain before the server stops.
        delay 0
        kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true
        R[$server.base]+="$(rps "$base") "
        R[$server.base99]+="$(p99 "$base") "
        R[$server.load]+="$(rps "$loaded") "
        R[$server.load99]+="$(p99 "$loaded") "
        R[$server.kept]+="$(ratio "$(rps "$loaded")" "$(rps "$base")") "
        R[$server.p99x]+="$(ratio "$(p99 "$loaded")" "$(p99 "$base")") "
        R[$server.slow]+="$(rps "$hout") "
        R[$server.slow503]+="$(awk -v n="$(wrk_non2xx "$hout")" -v t=$((SECS + 3)) 'BEGIN{printf "%.1f", n/t}') "
    done
done
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
echo
printf '%-7s %14s %10s %14s %10s %8s %8s %14s %12s\n' server "baseline op/s" "p99 ms" "slow-load op/s" "p99 ms" kept "p99 x" "slow dev op/s" "slow 503/s"
for server in aerie swift; do
    # With no request completed, wrk reports no latency: say so.
    loaded99=$(med "${R[$server.load99]}")
    p99x=$(med "${R[$server.p99x]}")
    if [ "$(awk -v v="$(med "${R[$server.load]}")" 'BEGIN{print (v > 0)}')" = 0 ]; then loaded99="n/a" p99x="n/a"; fi
    printf '%-7s %14.1f %10.2f %14.1f %10s %7.0f%% %8s %14.1f %12.1f\n' "$server" \
        "$(med "${R[$server.base]}")" "$(med "${R[$server.base99]}")" "$(med "${R[$server.load]}")" \
        "$loaded99" "$(awk -v k="$(med "${R[$server.kept]}")" 'BEGIN{print k*100}')" \
        "$p99x" "$(med "${R[$server.slow]}")" "$(med "${R[$server.slow503]}")"
done
echo "(kept and p99 x: medians of per-round ratios under slow-disk load / baseline; per round kept: aerie ${R[aerie.kept]}; swift ${R[swift.kept]})"
mkdir -p "$(dirname "$SVG")"
python3 "$ROOT/bench/timeline_svg.py" "$TIMELINE" "$SVG" 4 10 "fast-device 4 KiB GET+PUT ops/s, one slow disk (${DELAY} ms/op) loaded from second 4 to 10"
echo "timeline: $SVG"

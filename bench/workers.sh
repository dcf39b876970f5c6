#!/usr/bin/env bash
# How throughput follows the worker count, on this machine: one aerie server
# is started once and reloaded with SIGHUP between steps (it never
# restarts), each step setting server.workers to the next count.
#
#   bench/workers.sh [WORKLOAD] [COUNTS] [SECONDS] [SVG]
#
# WORKLOAD: hello (200 "test", keep-alive), object (4 KiB GETs and PUTs,
# half each, on one device) or listing (JSON container listing pages of
# 10,000 rows from a 100,000-row container). COUNTS: worker counts, default
# "1 2 4 <cores>". For each count: requests/s, p50 and p99 (wrk, 32
# connections, 2 threads) and the mean RSS per worker, and an SVG chart of
# requests/s against workers (default docs/workers-WORKLOAD.svg). For the
# object workload, Swift 2.38.3's object-server (from the project's venv)
# is measured too at each count, on the same device, as a peer (PEERS=0
# leaves it out).
set -euo pipefail
WORKLOAD=${1:-hello}
COUNTS=${2:-"1 2 4 $(nproc)"}
SECS=${3:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SVG=${4:-$ROOT/docs/workers-$WORKLOAD.svg}
TAG=workers
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup
COUNTS=$(tr ' ' '\n' <<<"$COUNTS" | grep . | sort -n | uniq | tr '\n' ' ')
first=${COUNTS%% *}
P=$(port)
ADMIN=$(port)
mkdir -p "$WORK/node/sda1"
case $WORKLOAD in
    hello) service=""; pipeline='["hello"]' ;;
    object) service=object; pipeline='["object"]' ;;
    listing)
        service=container; pipeline='["container"]'
        "$PY" "$ROOT/bench/container_fill.py" "$WORK/node" sda1 AUTH_bench big 100000 >/dev/null
        ;;
    *) echo "unknown workload $WORKLOAD (hello, object, listing)" >&2; exit 2 ;;
esac
CFG=$WORK/aerie.toml
write_config() {
    cat >"$CFG" <<EOF
[server]
workers = $1
[log]
access = false
level = "warn"
[admin]
address = "127.0.0.1:$ADMIN"
[storage]
devices = "$WORK/node"
mount_check = false
swift_conf = "/etc/swift/swift.conf"
[[listen]]
address = "127.0.0.1:$P"
length_required = []
pipeline = $pipeline
EOF
}
write_config "$first"
"$ROOT/target/release/aerie" -c "$CFG" 2>>"$WORK/aerie.log" &
SERVER=$!
PIDS+=("$SERVER")
wait_port "$P"

status() { curl -fsS "http://127.0.0.1:$ADMIN/status"; }
# wait_workers N: N ready workers of the newest generation and nothing else.
wait_workers() {
    for _ in $(seq 600); do
        if status | python3 -c "
import json, sys
s = json.load(sys.stdin); g = s['master']['generation']
w = [x for x in s['workers'] if x['role'] == 'worker']
sys.exit(0 if len(w) == $1 and all(x['state'] == 'ready' and x['generation'] == g for x in w) else 1)"; then
            return 0
        fi
        sleep 0.1
    done
    echo "workers did not settle at $1" >&2
    return 1
}
worker_pids() { status | python3 -c "import json, sys; print(' '.join(str(x['pid']) for x in json.load(sys.stdin)['workers'] if x['role'] == 'worker'))"; }
rss_mean() { local t=0 n=0 p; for p in $1; do t=$((t + $(awk '/VmRSS/{print $2}' /proc/"$p"/status))); n=$((n + 1)); done; awk -v t="$t" -v n="$n" 'BEGIN{printf "%.1f", (n ? t / n : 0) / 1024}'; }

load() {
    local P=${2:-$P}
    case $WORKLOAD in
        hello) wrk -t2 -c32 -d"${SECS}s" --latency "http://127.0.0.1:$P/" ;;
        object) MODE=mix SIZE=4096 DEV=sda1 COUNT=100 RUN="w$1-$RANDOM" FILL=fill wrk -t2 -c32 -d"${SECS}s" --latency -s "$ROOT/bench/lua/object.lua" "http://127.0.0.1:$P/" ;;
        listing) MODE=first DEV=sda1 RUN=x wrk -t2 -c32 -d"${SECS}s" --latency --timeout 30s -s "$ROOT/bench/lua/container.lua" "http://127.0.0.1:$P/" ;;
    esac
}
if [ "$WORKLOAD" = object ]; then
    MODE=put SIZE=4096 DEV=sda1 COUNT=100 RUN=fill wrk -t2 -c32 -d2s -s "$ROOT/bench/lua/object.lua" "http://127.0.0.1:$P/" >/dev/null
fi

echo "aerie $WORKLOAD: worker counts $COUNTS; reloads with SIGHUP between steps; wrk 32 connections, ${SECS}s per step; $(nproc) CPUs"
printf '%-8s %12s %10s %10s %16s %6s\n' workers "requests/s" "p50 ms" "p99 ms" "RSS/worker MiB" "non2xx"
DATA=$WORK/workers.csv
: >"$DATA"
for n in $COUNTS; do
    write_config "$n"
    kill -HUP "$SERVER"
    wait_workers "$n"
    sleep 0.5
    out=$(load "$n")
    rps=$(wrk_rps "$out")
    p50=$(wrk_ms "$out" 50)
    p99=$(wrk_ms "$out" 99)
    bad=$(wrk_non2xx "$out")
    printf '%-8s %12s %10s %10s %16s %6s\n' "$n" "$rps" "$p50" "$p99" "$(rss_mean "$(worker_pids)")" "$bad"
    echo "aerie,$n,$rps" >>"$DATA"
    if [ "$WORKLOAD" = object ] && [ "${PEERS:-1}" != 0 ]; then
        # The peer, restarted at each count (its worker count is fixed at start).
        AERIE_SERVER=$SERVER
        sp=$(port)
        start_swift_server object "$sp" "$n"
        wait_port "$sp"
        sleep 1
        out=$(load "$n" "$sp")
        kids=$(cat /proc/"$SERVER"/task/"$SERVER"/children 2>/dev/null)
        printf '%-8s %12s %10s %10s %16s %6s\n' "swift $n" "$(wrk_rps "$out")" "$(wrk_ms "$out" 50)" \
            "$(wrk_ms "$out" 99)" "$(rss_mean "${kids:-$SERVER}")" "$(wrk_non2xx "$out")"
        echo "swift,$n,$(wrk_rps "$out")" >>"$DATA"
        kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
        SERVER=$AERIE_SERVER
    fi
done
kill -0 "$SERVER" && echo "(one server, pid $SERVER, through $(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["master"]["reloads"])') reloads)"
mkdir -p "$(dirname "$SVG")"
python3 "$ROOT/bench/timeline_svg.py" "$DATA" "$SVG" 1 0 "aerie $WORKLOAD: requests/s by worker count ($(nproc) CPUs)" "workers" "requests/s"
echo "chart: $SVG"

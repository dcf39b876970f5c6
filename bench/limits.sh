#!/usr/bin/env bash
# aerie against the machine's own limits, side by side in one run (#18):
#
#   bench/limits.sh [SECONDS] [ROUNDS]
#
# Workloads and their peers (the same files, the same load, the same
# filesystem — $WORK, on the machine's ext4):
#   get4k      4 KiB object GETs, hot cache, 16 connections: aerie's object
#              service vs nginx serving the very same .data files statically
#              (sendfile on, open_file_cache off)
#   get1m      the same with 1 MiB objects (per CPU-second: MiB, which is
#              requests, each request being 1 MiB)
#   put4k      4 KiB object PUTs of new names, 16 connections: aerie vs the
#              bare durable-write loop (bench/durable-loop.c: exactly the
#              durable write's system calls, 16 threads) vs Swift's
#              object-server
#   hello      keep-alive, 50 connections: aerie's hello vs nginx return 200
#   hello-new  the same with a new connection per request
# SCENARIOS and WORKLOADS (the names below and above, space-separated) pick
# a part. Scenarios: "pinned" (one worker on CPU 0, the load generator on CPU 1) and
# "all" (a worker per CPU, unpinned). Rounds are interleaved: each round
# runs every server of a workload back to back, fresh. The table gives the
# medians of req/s, p50 and p99 (ms), requests (or MiB) per CPU-second of
# the server's own processes (user+sys from /proc; getrusage for the loop)
# and the medians of the per-round ratios of aerie to each peer.
set -euo pipefail
SECS=${1:-5}
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TAG=limits
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }
bench_setup
AERIE="$ROOT/target/release/aerie"
LOOP="$WORK/durable-loop"
cc -O2 -pthread -o "$LOOP" "$ROOT/bench/durable-loop.c"
NODE="$WORK/node"
mkdir -p "$NODE/get4k" "$NODE/get1m" "$NODE/put" "$NODE/loop"
NCPU=$(nproc)

# The scenario's pinning: PIN runs a server, LOAD the load generator.
scenario() {
    case $1 in
        pinned) WORKERS=1; PIN=(taskset -c 0); LOAD=(taskset -c 1); WRK_T=1 ;;
        all) WORKERS=$NCPU; PIN=(); LOAD=(); WRK_T=2 ;;
    esac
}

start_aerie() { # PORT PIPELINE
    cat >"$WORK/aerie.toml" <<EOF
[server]
workers = $WORKERS
[log]
access = false
level = "warn"
[admin]
address = ""
[storage]
devices = "$NODE"
mount_check = false
swift_conf = "/etc/swift/swift.conf"
[replication]
object_replicator = false
[[listen]]
address = "127.0.0.1:$1"
backlog = 4096
length_required = []
pipeline = ["$2"]
[processors.object]
threads_per_device = 8
queue_per_device = 256
EOF
    "${PIN[@]}" "$AERIE" -c "$WORK/aerie.toml" 2>>"$WORK/aerie.log" &
    SERVER=$!; PIDS+=("$SERVER")
}

start_nginx() { # PORT MODE(static|hello)
    local loc="root $NODE; sendfile on; tcp_nopush on; open_file_cache off;"
    [ "$2" = hello ] && loc='default_type text/plain; return 200 "test";'
    nginx_conf "$WORKERS" "$1" "$loc"
    "${PIN[@]}" nginx -c "$WORK/nginx.conf" -p "$WORK/nginx" &
    SERVER=$!; PIDS+=("$SERVER")
}

start_swift() { start_swift_server object "$1" "$WORKERS"; }

stop() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }

# wrk_run PORT CONNS [wrk args...] → "rps p50 p99 per_cpu" for $SERVER.
wrk_run() {
    local p=$1 conns=$2 t0 t1 out pids reqs cpu
    shift 2
    pids=$(tree "$SERVER")
    t0=$(cpu_ticks "$pids")
    out=$("${LOAD[@]}" wrk -t"$WRK_T" -c"$conns" -d"${SECS}s" --latency "$@")
    t1=$(cpu_ticks "$pids")
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    cpu=$(awk -v a="$t0" -v b="$t1" -v c="$CLK" 'BEGIN{printf "%.3f", (b-a)/c}')
    local bad
    bad=$(wrk_non2xx "$out")
    [ "${bad:-0}" = 0 ] || echo "  (non-2xx: $bad on $SERVER_NAME $WL)" >&2
    echo "$(wrk_rps "$out") $(wrk_ms "$out" 50) $(wrk_ms "$out" 99) $(awk -v r="$reqs" -v c="$cpu" 'BEGIN{ if (c>0) printf "%.1f", r/c; else print 0 }')"
}

# Fill a device with 200 objects of SIZE through a temporary aerie and
# write the two path lists the GETs cycle over: aerie's object paths and
# nginx's paths of the same .data files.
fill() { # DEVICE SIZE
    local dev=$1 size=$2 p i
    head -c "$size" /dev/urandom >"$WORK/body"
    start_aerie_fill
    p=$FILL_PORT
    : >"$WORK/$dev.aerie"
    for i in $(seq 200); do
        curl -sf -o /dev/null -X PUT -T "$WORK/body" -H "X-Timestamp: $(date +%s.%N | cut -c1-16)" \
            -H "Content-Type: application/octet-stream" "http://127.0.0.1:$p/$dev/0/AUTH_bench/c/f$i"
        echo "/$dev/0/AUTH_bench/c/f$i" >>"$WORK/$dev.aerie"
    done
    stop
    (cd "$NODE" && find "$dev/objects" -name '*.data' | sed 's|^|/|') >"$WORK/$dev.nginx"
    [ "$(wc -l <"$WORK/$dev.nginx")" = 200 ] || { echo "fill of $dev made $(wc -l <"$WORK/$dev.nginx") files" >&2; exit 1; }
}
start_aerie_fill() { FILL_PORT=$(port); WORKERS=1; PIN=(); start_aerie "$FILL_PORT" object; wait_port "$FILL_PORT"; }

# measure SERVER WORKLOAD → "rps p50 p99 per_cpu"
measure() {
    local server=$1 wl=$2 p
    p=$(port)
    SERVER_NAME=$server WL=$wl
    if [ "$server" = loop ]; then
        rm -rf "$NODE/loop"; mkdir -p "$NODE/loop"
        local out
        out=$("${PIN[@]}" "$LOOP" "$NODE/loop" 16 "$SECS" 4096)
        awk '{for (i=1;i<=NF;i++) {split($i,kv,"="); v[kv[1]]=kv[2]} printf "%.1f %s %s %.1f\n", v["ops"]/v["secs"], v["p50_ms"], v["p99_ms"], (v["cpu"]>0)?v["ops"]/v["cpu"]:0}' <<<"$out"
        return
    fi
    case $server:$wl in
        aerie:hello*) start_aerie "$p" hello ;;
        aerie:*) start_aerie "$p" object ;;
        nginx:hello*) start_nginx "$p" hello ;;
        nginx:*) start_nginx "$p" static ;;
        swift:*) start_swift "$p" ;;
    esac
    wait_port "$p"
    sleep 0.3
    case $server:$wl in
        *:hello) wrk_run "$p" 50 "http://127.0.0.1:$p/" ;;
        *:hello-new) wrk_run "$p" 50 -H "Connection: close" "http://127.0.0.1:$p/" ;;
        aerie:get4k) PATHS="$WORK/get4k.aerie" wrk_run "$p" 16 -s "$ROOT/bench/lua/paths.lua" "http://127.0.0.1:$p/" ;;
        nginx:get4k) PATHS="$WORK/get4k.nginx" wrk_run "$p" 16 -s "$ROOT/bench/lua/paths.lua" "http://127.0.0.1:$p/" ;;
        aerie:get1m) PATHS="$WORK/get1m.aerie" wrk_run "$p" 16 -s "$ROOT/bench/lua/paths.lua" "http://127.0.0.1:$p/" ;;
        nginx:get1m) PATHS="$WORK/get1m.nginx" wrk_run "$p" 16 -s "$ROOT/bench/lua/paths.lua" "http://127.0.0.1:$p/" ;;
        *:put4k) MODE=put SIZE=4096 DEV=put COUNT=200 RUN="$server$RANDOM" wrk_run "$p" 16 -s "$ROOT/bench/lua/object.lua" "http://127.0.0.1:$p/" ;;
    esac
    stop
}

peers() {
    case $1 in
        get4k | get1m | hello | hello-new) echo nginx ;;
        put4k) echo "loop swift" ;;
    esac
}

fill get4k 4096
fill get1m 1048576

echo "aerie $("$AERIE" --version | cut -d' ' -f2) vs $(nginx -v 2>&1 | sed 's/.*: //'), bench/durable-loop.c and Swift $("$PY" -c 'import swift; print(swift.__version__)') object-server"
echo "${SECS}s per run, $ROUNDS rounds interleaved, $NCPU CPUs, devices on $(df -T "$NODE" | awk 'NR==2{print $2}')"
echo "figures: medians over rounds; ratios: medians of per-round ratios of aerie to the peer (per CPU-second)"
printf '\n%-7s %-10s %-6s %10s %8s %8s %14s %s\n' scen workload server "req/s" "p50 ms" "p99 ms" "per CPU-s" "aerie/peer"
for scen in ${SCENARIOS:-pinned all}; do
    scenario "$scen"
    for wl in ${WORKLOADS:-get4k get1m put4k hello hello-new}; do
        servers="aerie $(peers "$wl")"
        declare -A R=()
        for r in $(seq "$ROUNDS"); do
            for s in $servers; do
                read -r rps p50 p99 per <<<"$(measure "$s" "$wl")"
                R[$s.rps]+="$rps "; R[$s.p50]+="$p50 "; R[$s.p99]+="$p99 "; R[$s.per]+="$per "
                printf -v "per_$s" '%s' "$per"
            done
            for s in $(peers "$wl"); do
                v="per_$s"
                R[$s.ratio]+="$(ratio "$per_aerie" "${!v}") "
            done
        done
        for s in $servers; do
            med() { tr ' ' '\n' <<<"${R[$s.$1]}" | grep . | median; }
            unit=""
            [ "$wl" = get1m ] && unit=" MiB"
            ratio_col=""
            [ "$s" != aerie ] && ratio_col="$(med ratio)x  (rounds: ${R[$s.ratio]% })"
            printf '%-7s %-10s %-6s %10.0f %8.2f %8.2f %10.0f%-4s %s\n' "$scen" "$wl" "$s" "$(med rps)" "$(med p50)" "$(med p99)" "$(med per)" "$unit" "$ratio_col"
        done
        unset R
    done
done

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
WORK=$(mktemp -d /tmp/aerie-objbench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
PY=$("$ROOT/scripts/swift-venv.sh")
SWIFT_BIN=$(dirname "$PY")
(cd "$ROOT" && cargo build --release -q)
CLK=$(getconf CLK_TCK)
mkdir -p /etc/swift
[ -f /etc/swift/swift.conf ] || printf '# written by aerie benchmarks\n[swift-hash]\nswift_hash_path_prefix = changeme\nswift_hash_path_suffix = changeme\n[storage-policy:0]\nname = gold\ndefault = yes\n' > /etc/swift/swift.conf
mkdir -p "$WORK/node/sda1"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tree() { echo "$1 $(cat /proc/"$1"/task/"$1"/children 2>/dev/null)"; }
cpu_ticks() { local t=0 p s; for p in $1; do s=$(sed 's/.*) //' /proc/"$p"/stat 2>/dev/null | awk '{print $12+$13}'); t=$((t + ${s:-0})); done; echo "$t"; }
rss_workers() { local out="" p; for p in $(cat /proc/"$1"/task/"$1"/children 2>/dev/null); do out+="$(awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/"$p"/status)MiB "; done; echo "${out:-$(awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/"$1"/status)MiB(single)}"; }

start_aerie() {
    local p=$1
    cat >"$WORK/aerie.toml" <<EOF2
[server]
workers = $WORKERS
[log]
access = false
level = "warn"
[admin]
address = ""
[storage]
devices = "$WORK/node"
mount_check = false
swift_conf = "/etc/swift/swift.conf"
[[listen]]
address = "127.0.0.1:$p"
length_required = []
max_body_size = 10995116277760
pipeline = ["object"]
[processors.object]
threads_per_device = 8
queue_per_device = 256
EOF2
    "$ROOT/target/release/aerie" -c "$WORK/aerie.toml" 2>>"$WORK/aerie.log" &
    SERVER=$!; PIDS+=("$SERVER")
}

start_swift() {
    local p=$1 w=$WORKERS
    cat >"$WORK/object-server.conf" <<EOF2
[DEFAULT]
devices = $WORK/node
mount_check = false
bind_ip = 127.0.0.1
bind_port = $p
workers = $w
user = root
log_address = /dev/null
log_level = WARNING
[pipeline:main]
pipeline = object-server
[app:object-server]
use = egg:swift#object
EOF2
    "$SWIFT_BIN/swift-object-server" "$WORK/object-server.conf" >>"$WORK/swift.log" 2>&1 &
    SERVER=$!; PIDS+=("$SERVER")
}

wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "server on $1 did not come up" >&2; return 1; }

# run_load PORT MODE SIZE → "ops p99ms cpu_ticks"
run_load() {
    local p=$1 mode=$2 size=$3 pids t0 t1 out
    pids=$(tree "$SERVER")
    t0=$(cpu_ticks "$pids")
    out=$(MODE=$mode SIZE=$size DEV=sda1 COUNT=200 RUN=$RUN wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$ROOT/bench/lua/object.lua" "http://127.0.0.1:$p/")
    t1=$(cpu_ticks "$(tree "$SERVER")")
    local reqs rps p99 bad
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    p99=$(awk '$1=="99%"{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
    bad=$(awk '/Non-2xx/{print $NF}' <<<"$out")
    local cpu per
    cpu=$(awk -v a="$t0" -v b="$t1" -v c="$CLK" 'BEGIN{printf "%.3f", (b-a)/c}')
    per=$(awk -v r="$reqs" -v c="$cpu" 'BEGIN{ if (c>0) printf "%.0f", r/c; else print 0 }')
    echo "$rps $p99 $per ${bad:-0}"
}

median() { sort -n | awk '{a[NR]=$1} END{ if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

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
        rr+=("$(awk -v a="$aerie_ops" -v b="$swift_ops" 'BEGIN{printf "%.2f", (b>0)?a/b:0}')")
        cr+=("$(awk -v a="$aerie_cpu" -v b="$swift_cpu" 'BEGIN{printf "%.2f", (b>0)?a/b:0}')")
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

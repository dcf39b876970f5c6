#!/usr/bin/env bash
# Database replication: bring a lagging replica up to date, aerie vs
# Swift 2.38.3, in one run.
#
#   bench/db-replication.sh [ROWS] [BEHIND] [CONTAINERS] [ACCOUNT_BEHIND] [IDLE_DBS] [ROUNDS]
#
# A two-node loopback cluster (scripts/swift-cluster.sh; 2 replicas) and
# databases made by Swift's own brokers (bench/db_fill.py), copied fresh
# for every run:
#
#   container  AUTH_bench/big with ROWS object rows (default 1000000) on
#              node 1; node 2's replica is the same database as it was
#              BEHIND rows earlier (default 200000), and both recorded that
#              they were in sync then (two replicas after one was down)
#   account    AUTH_bench with CONTAINERS container rows (default 100000),
#              node 2 ACCOUNT_BEHIND (default 20000) behind
#   idle       IDLE_DBS containers (default 10000) of one row, in sync
#
# For the first two: seconds until node 2's replica has node 1's hash, and
# CPU-seconds of every process involved — aerie's two nodes (node 1's
# replicator and both servers), or Swift's container/account servers on both nodes plus
# swift-<kind>-replicator run `once` on node 1 until done (aerie's
# updaters, which take no part, left out) — with per_diff
# 1000 and max_diffs 100 (Swift's defaults, so 200,000 rows take two
# passes either way) and no databases_per_second limit on either side.
# Meanwhile a client lists 100 rows of node 2's replica about 200 times a
# second: p50/p99 against the same listing idle. For the idle case: one
# pass of node 1 over databases already in sync (after a first pass), wall
# time and CPU-seconds of both nodes' processes, and the first pass's wall
# time beside it (aerie's remembers nothing yet: what a pass after a
# restart, or over databases that all changed, costs).
#
# ROUNDS (default 1) repeats each measurement; medians are printed.
# AERIE_PER_DIFF (default 1000, Swift's) sets aerie's per_diff alone.
# CASES (default "container account idle") picks what runs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TAG=dbrepl
ROWS=${1:-1000000}
BEHIND=${2:-200000}
CONTAINERS=${3:-100000}
ACCOUNT_BEHIND=${4:-20000}
IDLE_DBS=${5:-10000}
ROUNDS=${6:-1}
CASES=${CASES:-container account idle}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup
RSYNC=$("$ROOT/scripts/rsync.sh")
C=$WORK/c
UPDATER_INTERVAL=3600 REPLICATION_INTERVAL=0.2 "$ROOT/scripts/swift-cluster.sh" setup "$C" 2 >/dev/null
# shellcheck disable=SC1091
. "$C/cluster.env"
for n in 1 2; do
    f=$C/node$n/aerie.toml
    sed -i 's/^access = true/access = false/' "$f"
    sed -i "s/^\[replication\]\$/[replication]\nobject_replicator = false\ndatabases_per_second = 0\nper_diff = ${AERIE_PER_DIFF:-1000}/" "$f"
    sed 's/^\[replication\]$/[replication]\ndb_replicator = false/' "$f" >"$C/node$n/off.toml"
done
DEV1=$C/node1/srv/d1
DEV2=$C/node2/srv/d2
now_ms() { date +%s%3N; }
"$RSYNC" --daemon --no-detach --config="$C/rsyncd.conf" --port="$RSYNC_PORT" --address=127.0.0.1 &
PIDS+=($!)

# Swift's replicator and servers for node N, with the settings above.
for n in 1 2; do
    for kind in container account; do
        port_var="NODE${n}_${kind^^}"
        cat >"$C/node$n/$kind-server.conf" <<EOF
[DEFAULT]
devices = $C/node$n/srv
mount_check = false
bind_ip = 127.0.0.1
bind_port = ${!port_var}
swift_dir = $C/swift
workers = 1
user = $(id -un)
log_address = /dev/null
log_level = WARNING

[pipeline:main]
pipeline = $kind-server

[app:$kind-server]
use = egg:swift#$kind

[$kind-replicator]
concurrency = 8
per_diff = 1000
max_diffs = 100
databases_per_second = 1000000
node_timeout = 10
recon_cache_path = $C/node$n
rsync_module = rsync://127.0.0.1:$RSYNC_PORT/$kind{replication_port}
EOF
    done
done

# Databases made once, copied in for every run.
GOLD=$WORK/gold
make_gold() { # CASE
    local g=$GOLD/$1
    [ -d "$g" ] && return
    mkdir -p "$g/d1" "$g/d2"
    echo "making the $1 databases with Swift's brokers..." >&2
    case $1 in
        container) "$PY" "$ROOT/bench/db_fill.py" container "$C/swift" "$g/d1" "$g/d2" "$ROWS" "$BEHIND" >&2 ;;
        account) "$PY" "$ROOT/bench/db_fill.py" account "$C/swift" "$g/d1" "$g/d2" "$CONTAINERS" "$ACCOUNT_BEHIND" >&2 ;;
        idle) "$PY" "$ROOT/bench/db_fill.py" many "$C/swift" "$g/d1" "$g/d2" "$IDLE_DBS" >&2 ;;
    esac
}
restore() { # CASE
    rm -rf "$DEV1" "$DEV2"
    mkdir -p "$DEV1/tmp" "$DEV2/tmp"
    cp -a "$GOLD/$1/d1/." "$DEV1/"
    cp -a "$GOLD/$1/d2/." "$DEV2/"
    sync
}
kind_of() { [ "$1" = account ] && echo account || echo container; }

NODE_PIDS=()
start_aerie() { # CONFIG_NAME (aerie.toml, off.toml) [NODE2_CONFIG]
    NODE_PIDS=()
    local n cfg
    for n in 1 2; do
        cfg=$C/node$n/$1
        [ "$n" = 2 ] && cfg=$C/node2/${2:-$1}
        "$ROOT/target/release/aerie" -c "$cfg" 2>>"$C/node$n/aerie.log" &
        NODE_PIDS+=($!); PIDS+=($!)
    done
    for n in 1 2; do local v="NODE${n}_CONTAINER"; wait_port "${!v}"; v="NODE${n}_ACCOUNT"; wait_port "${!v}"; v="NODE${n}_ADMIN"; wait_port "${!v}"; done
    skip_updaters
}
start_swift() { # KIND
    NODE_PIDS=()
    local n v
    for n in 1 2; do
        "$SWIFT_BIN/swift-$1-server" "$C/node$n/$1-server.conf" >>"$C/node$n/swift.log" 2>&1 &
        NODE_PIDS+=($!); PIDS+=($!)
    done
    for n in 1 2; do v="NODE${n}_${1^^}"; wait_port "${!v}"; done
}
stop_nodes() { for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; SKIP=""; }
# aerie's updaters take no part in replication: their pids (from /status)
# are left out of the CPU figures.
SKIP=""
skip_updaters() {
    local n v
    SKIP=""
    for n in 1 2; do
        v="NODE${n}_ADMIN"
        SKIP+=" $(python3 -c 'import json, sys, urllib.request
d = json.load(urllib.request.urlopen("http://127.0.0.1:%s/status" % sys.argv[1]))
print(" ".join(str(w["pid"]) for w in d["workers"] if w["role"].endswith("-updater")))' "${!v}")"
    done
}
node_ticks() {
    local all="" p q
    for p in "${NODE_PIDS[@]}"; do
        for q in $(tree "$p"); do [[ " $SKIP " == *" $q "* ]] || all+="$q "; done
    done
    cpu_ticks "$all"
}
RUSAGE='import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); r = resource.getrusage(resource.RUSAGE_CHILDREN); print("%.3f" % (r.ru_utime + r.ru_stime))'

db_hash() { sqlite3 "file:$1?mode=ro" "SELECT hash FROM $2_stat" 2>/dev/null || true; }
big_path() { "$PY" "$ROOT/bench/db_fill.py" path "$C/swift" "$1" "$2"; }
# The listing a client reads on node 2 while the replica catches up.
listing_path() { # KIND
    local p
    p=$(big_path "$DEV2" "$1")
    local part; part=$(basename "$(dirname "$(dirname "$(dirname "$p")")")")
    if [ "$1" = container ]; then echo "/d2/$part/AUTH_bench/big?limit=100&format=json"; else echo "/d2/$part/AUTH_bench?limit=100&format=json"; fi
}
probe() { "$PY" "$ROOT/bench/get-probe.py" path "$1" "$2" "$3"; }

converge() { # IMPL CASE → "seconds cpu_seconds p50 p99 idle_p50 idle_p99"
    local impl=$1 case=$2 kind a b want t0 t1 c1 extra=0 stop port_var port path
    kind=$(kind_of "$case")
    restore "$case"
    a=$(big_path "$DEV1" "$kind"); b=$(big_path "$DEV2" "$kind")
    want=$(db_hash "$a" "$kind")
    port_var="NODE2_${kind^^}"; port=${!port_var}
    path=$(listing_path "$kind")
    stop=$WORK/probe.stop
    # The same listing idle first (no replication running).
    if [ "$impl" = aerie ]; then start_aerie off.toml; else start_swift "$kind"; fi
    rm -f "$stop"; probe "$port" "$path" "$stop" >"$WORK/probe.idle" & local pp=$!
    sleep 5; touch "$stop"; wait "$pp"
    if [ "$impl" = aerie ]; then
        stop_nodes
        t0=$(now_ms)
        # Node 1's replicator alone, as Swift's runs on node 1 alone (with
        # both, node 2 would send node 1's rows back while it catches up:
        # Swift's algorithm does that too).
        start_aerie aerie.toml off.toml
    else
        t0=$(now_ms)
    fi
    # aerie's nodes count from their start; Swift's servers from here.
    c0=0
    [ "$impl" = aerie ] || c0=$(node_ticks)
    rm -f "$stop"; probe "$port" "$path" "$stop" >"$WORK/probe.busy" & pp=$!
    if [ "$impl" = aerie ]; then
        until [ "$(db_hash "$b" "$kind")" = "$want" ]; do sleep 0.2; done
    else
        until [ "$(db_hash "$b" "$kind")" = "$want" ]; do
            e=$("$PY" -c "$RUSAGE" "$SWIFT_BIN/swift-$kind-replicator" "$C/node1/$kind-server.conf" once)
            extra=$(awk -v a="$extra" -v b="$e" 'BEGIN{print a + b}')
        done
    fi
    t1=$(now_ms)
    c1=$(( $(node_ticks) - c0 ))
    touch "$stop"; wait "$pp"
    stop_nodes
    read -r b50 b99 _ _ <"$WORK/probe.busy"; read -r i50 i99 _ _ <"$WORK/probe.idle"
    awk -v a="$t0" -v b="$t1" -v c="$c1" -v k="$CLK" -v e="$extra" -v b50="$b50" -v b99="$b99" -v i50="$i50" -v i99="$i99" \
        'BEGIN{printf "%.2f %.2f %s %s %s %s\n", (b-a)/1000, c/k + e, b50, b99, i50, i99}'
}

idle_pass() { # IMPL → "seconds cpu_seconds"
    local impl=$1 t0 t1 c0 c1 e n1 before
    restore idle
    if [ "$impl" = aerie ]; then
        # Node 1 replicates, node 2 only answers; the second pass is measured.
        n1=$C/node1/aerie.log
        before=$(grep -c "container replication pass" "$n1" 2>/dev/null || true)
        start_aerie aerie.toml off.toml
        until [ "$(grep -c "container replication pass" "$n1")" -ge $((before + 1)) ]; do sleep 0.1; done
        c0=$(node_ticks)
        until [ "$(grep -c "container replication pass" "$n1")" -ge $((before + 2)) ]; do sleep 0.05; done
        c1=$(( $(node_ticks) - c0 ))
        stop_nodes
        grep "container replication pass" "$n1" | tail -2 >&2
        # The pass's own time from its summary line; the first pass (after
        # the start, nothing remembered) too.
        local took first
        took=$(grep "container replication pass" "$n1" | tail -1 | sed 's/.*, [0-9]* dbs in \([0-9.]*\)s;.*/\1/')
        first=$(grep "container replication pass" "$n1" | tail -2 | head -1 | sed 's/.*, [0-9]* dbs in \([0-9.]*\)s;.*/\1/')
        awk -v s="$took" -v c="$c1" -v k="$CLK" -v f="$first" 'BEGIN{printf "%.2f %.2f %.2f\n", s, c/k, f}'
    else
        start_swift container
        t0=$(now_ms)
        "$PY" -c "$RUSAGE" "$SWIFT_BIN/swift-container-replicator" "$C/node1/container-server.conf" once >/dev/null
        local first=$(( $(now_ms) - t0 ))
        c0=$(node_ticks); t0=$(now_ms)
        e=$("$PY" -c "$RUSAGE" "$SWIFT_BIN/swift-container-replicator" "$C/node1/container-server.conf" once)
        t1=$(now_ms); c1=$(( $(node_ticks) - c0 ))
        stop_nodes
        awk -v a="$t0" -v b="$t1" -v c="$c1" -v k="$CLK" -v e="$e" -v f="$first" \
            'BEGIN{printf "%.2f %.2f %.2f\n", (b-a)/1000, c/k + e, f/1000}'
    fi
}

med() { tr ' ' '\n' <<<"$1" | grep . | median; }
echo "database replication, aerie vs Swift $("$PY" -c 'import swift; print(swift.__version__)'); $(nproc) CPUs, $ROUNDS round(s)"
for case in $CASES; do
    make_gold "$case"
    declare -A S=() U=() P50=() P99=() I50=() I99=() F=()
    for r in $(seq "$ROUNDS"); do
        for impl in aerie swift; do
            if [ "$case" = idle ]; then
                read -r s u f < <(idle_pass "$impl")
                F[$impl]+="$f "
            else
                read -r s u b50 b99 i50 i99 < <(converge "$impl" "$case")
                P50[$impl]+="$b50 "; P99[$impl]+="$b99 "; I50[$impl]+="$i50 "; I99[$impl]+="$i99 "
            fi
            S[$impl]+="$s "; U[$impl]+="$u "
            echo "  round $r $case $impl: ${s}s ${u} CPU-s" >&2
        done
    done
    case $case in
        container) what="container of $ROWS rows, replica $BEHIND behind" ;;
        account) what="account of $CONTAINERS containers, replica $ACCOUNT_BEHIND behind" ;;
        idle) what="idle pass over $IDLE_DBS containers in sync" ;;
    esac
    echo "$what:"
    for impl in aerie swift; do
        line=$(printf '  %-6s %8ss %8s CPU-s' "$impl" "$(med "${S[$impl]}")" "$(med "${U[$impl]}")")
        if [ "$case" = idle ]; then
            line+=$(printf '   first pass after the start %ss' "$(med "${F[$impl]}")")
        else
            line+=$(printf '   listing p50/p99 %s/%s ms (idle %s/%s ms)' "$(med "${P50[$impl]}")" "$(med "${P99[$impl]}")" "$(med "${I50[$impl]}")" "$(med "${I99[$impl]}")")
        fi
        echo "$line"
    done
    echo "  aerie: $(ratio "$(med "${S[swift]}")" "$(med "${S[aerie]}")")x faster, $(ratio "$(med "${U[swift]}")" "$(med "${U[aerie]}")")x less CPU"
    unset S U P50 P99 I50 I99 F
done

#!/usr/bin/env bash
# Object replication: rebuild a wiped device, aerie vs Swift, in one run.
#
#   bench/replication.sh [SMALL] [BIG] [ROUNDS]
#
# A three-node loopback cluster (scripts/swift-cluster.sh; 3 replicas, so
# every node holds every partition) is loaded with SMALL objects of 4 KiB
# (default 20000) and BIG of 1 MiB (default 200), written straight to
# node 1's object server and copied to the other two devices. Then, ROUNDS
# times (default 1) for each method, node 3's device is emptied and the
# other nodes refill it:
#
#   aerie        aerie's object replicator on every node (SSYNC)
#   swift-ssync  Swift 2.38.3's swift-object-replicator once on nodes 1 and
#                2 (sync_method = ssync, concurrency = 4), aerie serving
#   swift-rsync  the same with sync_method = rsync into the rsync daemon
#
# Figures: seconds until the device is complete again, and CPU-seconds of
# every process involved (aerie nodes, Swift's replicators, rsync), with
# the medians and the aerie/Swift ratios. Then steady-state passes of
# node 1 over objects already in sync (hashes cached): wall time and
# CPU-seconds, aerie's replicator vs Swift's in ssync mode (STEADY_ROUNDS
# passes each, default 3; Swift's without and with its start-up).
#
# METHODS (default "aerie swift-ssync swift-rsync") picks the rebuilds to
# run (METHODS="" only the steady-state pass, as over 100000 objects),
# STEADY=0 skips the steady-state pass, PROBE=0 the GET latency
# during a rebuild; WRAP is put before the aerie
# command lines of aerie's rebuild and steady pass (eatmydata, perf ...).
#
# RECEIVE_PER_DEVICE (default 1, Swift's default) sets every node's
# replication.replication_concurrency_per_device: SSYNC sessions a device
# takes at once, for aerie's and Swift's senders alike.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TAG=replication
SMALL=${1:-20000}
BIG=${2:-200}
ROUNDS=${3:-1}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup
"$ROOT/scripts/rsync.sh" >/dev/null
C=$WORK/c
UPDATER_INTERVAL=60 REPLICATION_INTERVAL=1.0 "$ROOT/scripts/swift-cluster.sh" setup "$C" 3 >/dev/null
# shellcheck disable=SC1091
. "$C/cluster.env"
for n in 1 2 3; do
    f=$C/node$n/aerie.toml
    sed -i 's/^level = "info"/level = "warn"/; s/^access = true/access = false/' "$f"
    sed -i "s/^\[replication\]\$/[replication]\nreplication_concurrency_per_device = ${RECEIVE_PER_DEVICE:-1}/" "$f"
    sed 's/^\[replication\]$/[replication]\nobject_replicator = false/' "$f" >"$C/node$n/off.toml"
done
TOTAL=$((SMALL + BIG))

start_nodes() { # MODE (on|off): the three aerie nodes; NODE_PIDS
    NODE_PIDS=()
    local n cfg
    for n in 1 2 3; do
        cfg=$C/node$n/aerie.toml
        [ "$1" = on ] || cfg=$C/node$n/off.toml
        local wrap=""; [ "$1" = on ] && wrap=${WRAP:-}
        # shellcheck disable=SC2086 # WRAP is words
        $wrap "$ROOT/target/release/aerie" -c "$cfg" 2>>"$C/node$n/aerie.log" &
        NODE_PIDS+=($!); PIDS+=($!)
    done
    for n in 1 2 3; do local v="NODE${n}_OBJECT"; wait_port "${!v}"; done
}
stop_nodes() { for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; }
node_ticks() { local all="" p; for p in "${NODE_PIDS[@]}"; do all+="$(tree "$p") "; done; cpu_ticks "$all"; }
# Node 3's device emptied as a replaced disk is: a fresh ext4 filesystem
# (a loop-mounted image) when this can mount, else an emptied directory. A
# directory just emptied of thousands of files makes ext4 skip its
# recently freed inodes on every create, which is no disk swap's cost.
DEV3=$C/node3/srv/d3
empty_device() {
    if [ "${FRESH_FS:-1}" = 1 ] && [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null; then
        mountpoint -q "$DEV3" && umount "$DEV3"
        rm -rf "$DEV3"; mkdir -p "$DEV3"
        truncate -s "${FS_SIZE:-4G}" "$WORK/d3.img"
        mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/d3.img"
        if mount -o loop "$WORK/d3.img" "$DEV3"; then rmdir "$DEV3/lost+found"; return; fi
        echo "could not mount a fresh filesystem; emptying the directory" >&2
    fi
    rm -rf "$DEV3"; mkdir -p "$DEV3"
}
bench_teardown() { if mountpoint -q "$DEV3"; then umount "$DEV3"; fi; rm -f "$WORK/d3.img"; }
data_files() { find "$C/node3/srv/d3" -name '*.data' 2>/dev/null | wc -l; }
now_ms() { date +%s%3N; }

# Load node 1 through its object server, at the partitions of the ring.
echo "loading $SMALL x 4 KiB + $BIG x 1 MiB..." >&2
start_nodes off
"$PY" - "$C/swift" "$NODE1_OBJECT" "$SMALL" "$BIG" <<'EOF'
import http.client, os, sys, threading, time
from swift.common.ring import Ring
swift_dir, port, small, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ring = Ring(swift_dir, ring_name='object')
small_body, big_body = os.urandom(4096), os.urandom(1 << 20)
def load(first, step):
    conn = http.client.HTTPConnection('127.0.0.1', port)
    for i in range(first, small + big, step):
        name = 'o%07d' % i
        part = ring.get_part('AUTH_bench', 'c', name)
        body = small_body if i < small else big_body
        ts = '%.5f' % (time.time())
        conn.request('PUT', '/d1/%d/AUTH_bench/c/%s' % (part, name), body=body,
                     headers={'X-Timestamp': ts, 'Content-Type': 'application/octet-stream'})
        r = conn.getresponse(); r.read()
        assert r.status == 201, r.status
# Four connections at once: the disk's fsyncs overlap.
threads = [threading.Thread(target=load, args=(k, 4)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
EOF
stop_nodes
for n in 2 3; do rm -rf "$C/node$n/srv/d$n"; cp -a "$C/node1/srv/d1" "$C/node$n/srv/d$n"; done
echo "loaded: $(find "$C/node1/srv/d1" -name '*.data' | wc -l) objects per device" >&2

# swift_replicator NODE METHOD: a conf for Swift's replicator on a node.
swift_conf() {
    local n=$1 method=$2 v="NODE${1}_OBJECT"
    cat >"$C/node$n/object-replicator.conf" <<EOF2
[DEFAULT]
devices = $C/node$n/srv
mount_check = false
bind_ip = 127.0.0.1
bind_port = ${!v}
swift_dir = $C/swift
user = $(id -un)
log_address = /dev/null
log_level = WARNING
[pipeline:main]
pipeline = object-server
[app:object-server]
use = egg:swift#object
[object-replicator]
sync_method = $method
concurrency = 4
recon_cache_path = $C
rsync_module = rsync://127.0.0.1:$RSYNC_PORT/object{replication_port}
EOF2
}
# CPU-seconds of a command and its children (Swift's replicator, rsync).
RUSAGE='import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); r = resource.getrusage(resource.RUSAGE_CHILDREN); print("%.3f" % (r.ru_utime + r.ru_stime))'

rebuild() { # METHOD → "seconds cpu_seconds"
    local method=$1 t0 t1 c1 extra=0 rsyncd=""
    empty_device
    if [ "$method" = aerie ]; then
        t0=$(now_ms); start_nodes on
        until [ "$(data_files)" -ge "$TOTAL" ]; do sleep 0.5; done
        t1=$(now_ms); c1=$(node_ticks)
        stop_nodes
    else
        start_nodes off
        swift_conf 1 "${method#swift-}"; swift_conf 2 "${method#swift-}"
        if [ "$method" = swift-rsync ]; then
            rsync --daemon --no-detach --config="$C/rsyncd.conf" --port="$RSYNC_PORT" --address=127.0.0.1 &
            rsyncd=$!; PIDS+=("$rsyncd"); wait_port "$RSYNC_PORT"
        fi
        local c0; c0=$(node_ticks)
        t0=$(now_ms)
        "$PY" -c "$RUSAGE" "$SWIFT_BIN/swift-object-replicator" "$C/node1/object-replicator.conf" once >"$WORK/r1" &
        local a=$!
        "$PY" -c "$RUSAGE" "$SWIFT_BIN/swift-object-replicator" "$C/node2/object-replicator.conf" once >"$WORK/r2" &
        local b=$!
        wait "$a" "$b"
        t1=$(now_ms)
        extra=$(awk '{s+=$1} END{print s}' "$WORK/r1" "$WORK/r2")
        if [ -n "$rsyncd" ]; then
            extra=$(awk -v e="$extra" -v t="$(sed 's/.*) //' /proc/"$rsyncd"/stat | awk '{print $12+$13+$14+$15}')" -v c="$CLK" 'BEGIN{print e + t/c}')
            kill "$rsyncd"; wait "$rsyncd" 2>/dev/null || true
        fi
        c1=$(( $(node_ticks) - c0 ))
        [ "$(data_files)" -ge "$TOTAL" ] || echo "$method: only $(data_files) of $TOTAL objects back" >&2
        stop_nodes
    fi
    awk -v a="$t0" -v b="$t1" -v c="$c1" -v k="$CLK" -v e="$extra" 'BEGIN{printf "%.2f %.2f\n", (b-a)/1000, c/k + e}'
}

printf '%-12s %10s %10s\n' method seconds cpu_s
declare -A S=() U=()
METHODS=${METHODS-aerie swift-ssync swift-rsync}
for r in $(seq "$ROUNDS"); do
    for m in $METHODS; do
        read -r s u <<<"$(rebuild "$m")"
        printf '%-12s %10s %10s   (round %s)\n' "$m" "$s" "$u" "$r"
        S[$m]+="$s "; U[$m]+="$u "
    done
done
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
for m in $METHODS; do
    printf '%-12s %10s %10s   median of %s\n' "$m" "$(med "${S[$m]}")" "$(med "${U[$m]}")" "$ROUNDS"
done
for m in swift-ssync swift-rsync; do
    [ -n "${S[$m]:-}" ] && [ -n "${S[aerie]:-}" ] || continue
    echo "rebuild vs $m: $(ratio "$(med "${S[$m]}")" "$(med "${S[aerie]}")")x faster, $(ratio "$(med "${U[$m]}")" "$(med "${U[aerie]}")")x less CPU"
done

# A client on node 3 during an aerie rebuild: GET p50/p99 of objects
# already there (copied in before it starts), against the same GETs idle.
probe() { # DEV_PORT STOP_FILE → "p50 p99 requests non_200"
    "$PY" "$ROOT/bench/get-probe.py" run "$C/swift" "$1" d3 50 "$2"
}
if [ "${PROBE:-1}" = 1 ] && [[ " $METHODS " == *" aerie "* ]]; then
    empty_device
    "$PY" "$ROOT/bench/get-probe.py" place "$C/swift" "$C/node1/srv/d1" "$DEV3" 50
    stop=$WORK/probe.stop; rm -f "$stop"
    t0=$(now_ms); start_nodes on
    probe "$NODE3_OBJECT" "$stop" >"$WORK/probe.busy" &
    pp=$!
    until [ "$(data_files)" -ge "$TOTAL" ]; do sleep 0.5; done
    t1=$(now_ms); touch "$stop"; wait "$pp"
    stop_nodes
    start_nodes off
    rm -f "$stop"; probe "$NODE3_OBJECT" "$stop" >"$WORK/probe.idle" & pp=$!
    sleep "$(awk -v a="$t0" -v b="$t1" 'BEGIN{s=(b-a)/1000; print (s < 5 ? 5 : s)}')"
    touch "$stop"; wait "$pp"
    stop_nodes
    read -r b50 b99 bn bbad <"$WORK/probe.busy"; read -r i50 i99 in ibad <"$WORK/probe.idle"
    echo "GET on node 3 during an aerie rebuild ($(( (t1 - t0) / 1000 ))s): p50 ${b50} ms, p99 ${b99} ms over $bn GETs ($bbad not 200); idle: p50 ${i50} ms, p99 ${i99} ms over $in GETs ($ibad not 200): p99 $(ratio "$b99" "$i99")x idle"
fi

# Steady state: everything in sync (the last rebuild left it so).
[ "${STEADY:-1}" = 1 ] || exit 0
start_nodes off
swift_conf 1 ssync
if [ -z "${METHODS// /}" ]; then
    # No rebuild ran: one pass first, so that every node's hashes are
    # cached as after a rebuild.
    "$PY" -c "$RUSAGE" "$SWIFT_BIN/swift-object-replicator" "$C/node1/object-replicator.conf" once >/dev/null
fi
# STEADY_ROUNDS Swift passes, each a `once` run; its start-up (the same
# run with no device of this node to replicate) measured as many times and
# taken off, as a daemon running pass after pass pays it once. Against the
# aerie nodes, then against Swift's own object servers on nodes 2 and 3
# (the REPLICATE answers a Swift cluster's replicator gets).
SR=${STEADY_ROUNDS:-3}
declare -A SW=()
swift_passes() { # LABEL: SR passes of node 1's replicator; the servers are NODE_PIDS
    local label=$1 c0 t0 t1 c1 su
    for _ in $(seq "$SR"); do
        c0=$(node_ticks); t0=$(now_ms)
        su=$("$PY" -c "$RUSAGE" "$SWIFT_BIN/swift-object-replicator" "$C/node1/object-replicator.conf" once)
        t1=$(now_ms); c1=$(( $(node_ticks) - c0 ))
        SW[$label.wall]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1000}') "
        SW[$label.cpu]+="$(awk -v c="$c1" -v k="$CLK" -v e="$su" 'BEGIN{printf "%.3f", c/k + e}') "
        t0=$(now_ms)
        su=$("$PY" -c "$RUSAGE" "$SWIFT_BIN/swift-object-replicator" "$C/node1/object-replicator.conf" once --devices=no-such-device)
        t1=$(now_ms)
        SW[$label.up_wall]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1000}') "
        SW[$label.up_cpu]+="$su "
    done
}
swift_passes aerie-served
stop_nodes
# Swift's object servers (the replicator's conf serves as theirs: the
# node's devices and port), their default workers.
NODE_PIDS=()
for n in 2 3; do
    swift_conf "$n" ssync
    "$SWIFT_BIN/swift-object-server" "$C/node$n/object-replicator.conf" >>"$C/node$n/swift-server.log" 2>&1 &
    NODE_PIDS+=($!); PIDS+=($!)
done
for n in 2 3; do v="NODE${n}_OBJECT"; wait_port "${!v}"; done
sleep 1
swift_passes swift-served
stop_nodes
# aerie: node 1's replicator alone, its pass lines (info) counted in its
# log, so that nothing asks the nodes anything while they are measured.
sed 's/^level = "warn"/level = "info"/' "$C/node1/aerie.toml" >"$C/node1/steady.toml"
LOG1=$C/node1/steady.log; : >"$LOG1"
NODE_PIDS=()
for n in 1 2 3; do
    cfg=$C/node$n/off.toml; log=$C/node$n/aerie.log
    [ "$n" = 1 ] && { cfg=$C/node1/steady.toml; log=$LOG1; }
    # shellcheck disable=SC2086 # WRAP is words
    ${WRAP:-} "$ROOT/target/release/aerie" -c "$cfg" 2>>"$log" & NODE_PIDS+=($!); PIDS+=($!)
done
passes() { # N: wait until node 1's replicator has made N passes
    until [ "$(grep -c "object replication pass:" "$LOG1")" -ge "$1" ]; do sleep 0.05; done
}
# From the second pass on: the nodes' start-up is not counted, and the
# first pass has found every hash cached as Swift's measured passes did.
# A pass's CPU: all three nodes' from the end of one pass to the end of
# the next (the interval between, idle, included), averaged over the three
# passes of a round (a pass is a few clock ticks).
ae_wall=(); ae_cpu=()
passes 1; c0=$(node_ticks)
for r in $(seq "$SR"); do
    passes $((3 * r + 1)); c1=$(node_ticks)
    ae_cpu+=("$(awk -v c="$((c1 - c0))" -v k="$CLK" 'BEGIN{printf "%.3f", c/k/3}')"); c0=$c1
    ae_wall+=("$(grep "object replication pass:" "$LOG1" | tail -n 3 | sed 's/.* partitions in \([0-9.]*\)s.*/\1/' | median)")
done
stop_nodes
med() { printf '%s\n' "$@" | median; }
as=$(med "${ae_wall[@]}"); ac=$(med "${ae_cpu[@]}")
echo "steady-state pass over $TOTAL objects in sync, medians of $SR:"
echo "  aerie: ${as}s ${ac} CPU-s (all three nodes; per pass ${ae_wall[*]} s, ${ae_cpu[*]} CPU-s)"
for label in swift-served aerie-served; do
    # shellcheck disable=SC2086 # lists of figures
    {
        ss=$(med ${SW[$label.wall]}); sc=$(med ${SW[$label.cpu]}); us=$(med ${SW[$label.up_wall]}); uc=$(med ${SW[$label.up_cpu]})
    }
    ps=$(awk -v a="$ss" -v b="$us" 'BEGIN{printf "%.3f", a-b}'); pc=$(awk -v a="$sc" -v b="$uc" 'BEGIN{printf "%.3f", a-b}')
    what="Swift's replicator (ssync) and Swift's object servers"
    [ "$label" = aerie-served ] && what="Swift's replicator (ssync) against aerie's object servers"
    echo "  $what: ${ps}s ${pc} CPU-s without its start-up (${ss}s ${sc} CPU-s with; start-up ${us}s ${uc} CPU-s; per pass ${SW[$label.wall]}s, ${SW[$label.cpu]}CPU-s)"
    echo "    aerie vs that: $(ratio "$ps" "$as")x faster, $(ratio "$pc" "$ac")x less CPU (with its start-up: $(ratio "$ss" "$as")x, $(ratio "$sc" "$ac")x)"
done

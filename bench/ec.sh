#!/usr/bin/env bash
# Erasure-coded objects through Swift's proxy: object-node CPU per GiB,
# aerie's object service vs Swift's object servers, in one run.
#
#   bench/ec.sh [SMALL] [BIG] [ROUNDS]
#
# A three-node loopback cluster (scripts/swift-cluster.sh with EC=1 and two
# devices per node: the default policy is 4+2 liberasurecode_rs_vand). The
# container and account services run in aerie instances of their own, so
# the only thing that changes between the two runs is what serves the
# object ports: aerie (one worker per node) or Swift 2.38.3's object
# server (workers = 1). Each round PUTs SMALL objects of 1 MiB (default
# 64) and BIG of 16 MiB (default 8) through the proxy with 4 clients, then
# GETs them all back (MD5 checked).
#
# Figures per server: seconds, and CPU-seconds of the three object-serving
# process trees per GiB of object data put and got; the medians of ROUNDS
# (default 3) and the Swift/aerie ratio of CPU per GiB (the proxy, which
# encodes and decodes, is the same in both and not counted).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TAG=ec
SMALL=${1:-64}
BIG=${2:-8}
ROUNDS=${3:-3}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_setup
C=$WORK/c
EC=1 DEVICES_PER_NODE=2 UPDATER_INTERVAL=60 REPLICATION_INTERVAL=3600 "$ROOT/scripts/swift-cluster.sh" setup "$C" 3 >/dev/null
# shellcheck disable=SC1091
. "$C/cluster.env"
for n in 1 2 3; do
    # obj.toml: the object listener alone; db.toml: container and account.
    python3 - "$C/node$n/aerie.toml" "$C/node$n" <<'PY'
import re, sys
text = open(sys.argv[1]).read().replace('level = "info"', 'level = "warn"').replace("access = true", "access = false")
head, *listens = re.split(r"(?m)^(?=\[\[listen\]\])", text)
tail = ""
if listens and "[processors." in listens[-1]:
    i = listens[-1].index("[processors.")
    listens[-1], tail = listens[-1][:i], listens[-1][i:]
obj = [l for l in listens if '"object"' in l]
db = [l for l in listens if '"object"' not in l]
def write(name, parts, admin):
    h = re.sub(r'(?m)^address = "127.0.0.1:\d+"$', 'address = ""', head, count=1) if not admin else head
    h = h.replace('aerie.pid"', name + '.pid"')
    open(sys.argv[2] + "/" + name + ".toml", "w").write(h + "".join(parts) + tail)
write("obj", obj, True)
write("db", db, False)
PY
done
AERIE=$ROOT/target/release/aerie
for n in 1 2 3; do "$AERIE" -c "$C/node$n/db.toml" 2>>"$C/node$n/db.log" & PIDS+=($!); done
"$C/swift-run" "$SWIFT_BIN/swift-proxy-server" "$C/swift/proxy-server.conf" >>"$C/proxy.log" 2>&1 &
PIDS+=($!)
wait_port "$PROXY_PORT"

OBJ_PIDS=()
start_objects() { # aerie|swift
    OBJ_PIDS=()
    local n v
    for n in 1 2 3; do
        v="NODE${n}_OBJECT"
        if [ "$1" = aerie ]; then
            "$AERIE" -c "$C/node$n/obj.toml" 2>>"$C/node$n/obj.log" &
        else
            cat >"$C/node$n/object-server.conf" <<EOF
[DEFAULT]
devices = $C/node$n/srv
mount_check = false
bind_ip = 127.0.0.1
bind_port = ${!v}
workers = 1
user = root
swift_dir = $C/swift
log_address = /dev/null
log_level = WARNING
[pipeline:main]
pipeline = object-server
[app:object-server]
use = egg:swift#object
EOF
            "$C/swift-run" "$SWIFT_BIN/swift-object-server" "$C/node$n/object-server.conf" >>"$C/node$n/swift.log" 2>&1 &
        fi
        OBJ_PIDS+=($!); PIDS+=($!)
    done
    for n in 1 2 3; do v="NODE${n}_OBJECT"; wait_port "${!v}"; done
    sleep 1
}
stop_objects() { for p in "${OBJ_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${OBJ_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; }
obj_ticks() { local all="" p; for p in "${OBJ_PIDS[@]}"; do all+="$(tree "$p") "; done; cpu_ticks "$all"; }

# The load: PUT then GET every object through the proxy, 4 at a time.
LOAD=$WORK/load.py
cat >"$LOAD" <<'PY'
import concurrent.futures, hashlib, http.client, random, sys
port, small, big, prefix, phase = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("GET", "/auth/v1.0", headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
r = c.getresponse(); r.read()
token, url = r.getheader("X-Auth-Token"), r.getheader("X-Storage-Url")
path = url.split(str(port), 1)[1]
sizes = [1 << 20] * small + [16 << 20] * big
blobs = {n: random.Random(n).randbytes(n) for n in set(sizes)}
def one(i):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = blobs[sizes[i]]
    name = f"{path}/bench/{prefix}-{i}"
    if phase == "put":
        conn.request("PUT", name, body=body, headers={"X-Auth-Token": token})
        r = conn.getresponse(); r.read()
        assert r.status == 201, r.status
    else:
        conn.request("GET", name, headers={"X-Auth-Token": token})
        r = conn.getresponse(); got = r.read()
        assert r.status == 200 and hashlib.md5(got).digest() == hashlib.md5(body).digest(), r.status
    return len(body)
if phase == "put":
    c.request("PUT", f"{path}/bench", headers={"X-Auth-Token": token}); c.getresponse().read()
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    print(sum(ex.map(one, range(len(sizes)))))
PY

run() { # SERVER ROUND -> "put_s put_cpu_per_gib get_s get_cpu_per_gib"
    local who=$1 r=$2 t0 c0 t1 c1 bytes
    start_objects "$who"
    local perf=""
    if [ -n "${PERF:-}" ] && [ "$who" = aerie ]; then
        # PERF=1: a profile of aerie's object nodes during the PUTs.
        local all="" p; for p in "${OBJ_PIDS[@]}"; do all+="$(tree "$p") "; done
        perf record -q -g -o "${PERF_OUT:-$WORK/perf.data}" -p "$(echo $all | tr ' ' ',')" 2>/dev/null &
        perf=$!
        sleep 0.5
    fi
    c0=$(obj_ticks); t0=$(date +%s.%N)
    bytes=$("$PY" "$LOAD" "$PROXY_PORT" "$SMALL" "$BIG" "$who$r" put)
    t1=$(date +%s.%N); c1=$(obj_ticks)
    if [ -n "$perf" ]; then kill -INT "$perf"; wait "$perf" 2>/dev/null || true; fi
    local put_s put_cpu
    put_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
    put_cpu=$(awk -v c=$((c1 - c0)) -v k="$CLK" -v b="$bytes" 'BEGIN{printf "%.3f", c/k/(b/1073741824)}')
    c0=$(obj_ticks); t0=$(date +%s.%N)
    "$PY" "$LOAD" "$PROXY_PORT" "$SMALL" "$BIG" "$who$r" get >/dev/null
    t1=$(date +%s.%N); c1=$(obj_ticks)
    local get_s get_cpu
    get_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
    get_cpu=$(awk -v c=$((c1 - c0)) -v k="$CLK" -v b="$bytes" 'BEGIN{printf "%.3f", c/k/(b/1073741824)}')
    stop_objects
    echo "$put_s $put_cpu $get_s $get_cpu"
}

declare -A FIG
for r in $(seq "$ROUNDS"); do
    for who in aerie swift; do
        out=$(run "$who" "$r")
        echo "round $r $who: PUT ${out%% *} s, $(echo "$out" | cut -d' ' -f2) CPU-s/GiB; GET $(echo "$out" | cut -d' ' -f3) s, $(echo "$out" | cut -d' ' -f4) CPU-s/GiB" >&2
        FIG[$who]+="$out"$'\n'
    done
done
col() { printf '%s' "${FIG[$1]}" | awk -v k="$2" 'NF{print $k}' | median; }
printf '\nEC 4+2 through the proxy: %d x 1 MiB + %d x 16 MiB, 4 clients, median of %d\n' "$SMALL" "$BIG" "$ROUNDS"
printf '%-8s %10s %14s %10s %14s\n' server "PUT s" "PUT CPU-s/GiB" "GET s" "GET CPU-s/GiB"
for who in aerie swift; do
    printf '%-8s %10s %14s %10s %14s\n' "$who" "$(col "$who" 1)" "$(col "$who" 2)" "$(col "$who" 3)" "$(col "$who" 4)"
done
printf 'Swift/aerie object-node CPU per GiB: PUT %sx, GET %sx\n' \
    "$(ratio "$(col swift 2)" "$(col aerie 2)")" "$(ratio "$(col swift 4)" "$(col aerie 4)")"

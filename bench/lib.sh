# Shared helpers of the benchmark scripts (sourced, not run).
#
# Before sourcing: ROOT (the repository) and TAG (names the work
# directory). Provides WORK, PIDS (killed on exit), SERVER (the last server
# started) and the functions below.
WORK=$(mktemp -d "/tmp/aerie-$TAG.XXXXXX")
PIDS=()
# A prefix for the servers' commands (e.g. PIN=(taskset -c 0)).
PIN=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    # Then a script's own teardown (unmount what it mounted), if it has one.
    if declare -F bench_teardown >/dev/null; then bench_teardown || true; fi
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
CLK=$(getconf CLK_TCK)

# A free loopback port.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A process and its children.
tree() { echo "$1 $(cat /proc/"$1"/task/"$1"/children 2>/dev/null)"; }
# user+sys clock ticks of the given pids.
cpu_ticks() { local t=0 p s; for p in $1; do s=$(sed 's/.*) //' /proc/"$p"/stat 2>/dev/null | awk '{print $12+$13}'); t=$((t + ${s:-0})); done; echo "$t"; }
# RSS of each child of a master (or of the process itself).
rss_workers() { local out="" p; for p in $(cat /proc/"$1"/task/"$1"/children 2>/dev/null); do out+="$(awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/"$p"/status)MiB "; done; echo "${out:-$(awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/"$1"/status)MiB(single)}"; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "server on $1 did not come up" >&2; return 1; }
median() { sort -n | awk '{a[NR]=$1} END{ if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

# wrk, Swift's venv and a release build; /etc/swift/swift.conf if missing.
bench_setup() {
    command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
    PY=$("$ROOT/scripts/swift-venv.sh")
    SWIFT_BIN=$(dirname "$PY")
    (cd "$ROOT" && cargo build --release -q)
    mkdir -p /etc/swift
    [ -f /etc/swift/swift.conf ] || printf '# written by aerie benchmarks\n[swift-hash]\nswift_hash_path_prefix = changeme\nswift_hash_path_suffix = changeme\n[storage-policy:0]\nname = gold\ndefault = yes\n' > /etc/swift/swift.conf
}

# start_swift_server KIND PORT WORKERS: Swift's KIND-server on $WORK/node.
start_swift_server() {
    local kind=$1 p=$2 w=$3
    cat >"$WORK/$kind-server.conf" <<EOF2
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
pipeline = $kind-server
[app:$kind-server]
use = egg:swift#$kind
EOF2
    "${PIN[@]}" "$SWIFT_BIN/swift-$kind-server" "$WORK/$kind-server.conf" >>"$WORK/swift.log" 2>&1 &
    SERVER=$!; PIDS+=("$SERVER")
}

# nginx_conf WORKERS PORT LOCATION: write $WORK/nginx.conf, nginx in the
# foreground with WORKERS workers on 127.0.0.1:PORT and one `location /`
# block (its body LOCATION), no access log.
nginx_conf() {
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx.conf" <<EOF2
daemon off;
master_process on;
user root;
worker_processes $1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    server {
        listen 127.0.0.1:$2 backlog=4096;
        location / { $3 }
    }
}
EOF2
}

# start_aerie_storage SERVICE PORT WORKERS THREADS QUEUE: aerie serving one
# storage service on $WORK/node.
start_aerie_storage() {
    local service=$1 p=$2 w=$3 threads=$4 queue=$5
    cat >"$WORK/aerie.toml" <<EOF2
[server]
workers = $w
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
pipeline = ["$service"]
[processors.$service]
threads_per_device = $threads
queue_per_device = $queue
EOF2
    "$ROOT/target/release/aerie" -c "$WORK/aerie.toml" 2>>"$WORK/aerie.log" &
    SERVER=$!; PIDS+=("$SERVER")
}

# Figures from wrk's --latency output: wrk_rps OUT, wrk_ms OUT PERCENT
# (e.g. 99, in milliseconds; empty when no request completed), wrk_non2xx OUT.
wrk_rps() { awk '/Requests\/sec/{print $2}' <<<"$1"; }
wrk_ms() { awk -v p="$2%" '$1==p{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.2f\n", v}' <<<"$1"; }
wrk_non2xx() { awk '/Non-2xx/{print $NF}' <<<"$1" | grep . || echo 0; }

# wrk_figures OUTPUT T0 T1: "req/s p99_ms ops_per_cpu_s non2xx" from wrk's
# --latency output and the server's CPU ticks before and after.
wrk_figures() {
    local out=$1 t0=$2 t1=$3 reqs rps p99 bad cpu per
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    rps=$(wrk_rps "$out")
    p99=$(wrk_ms "$out" 99)
    bad=$(wrk_non2xx "$out")
    cpu=$(awk -v a="$t0" -v b="$t1" -v c="$CLK" 'BEGIN{printf "%.3f", (b-a)/c}')
    per=$(awk -v r="$reqs" -v c="$cpu" 'BEGIN{ if (c>0) printf "%.1f", r/c; else print 0 }')
    echo "${rps:-0} ${p99:-0} $per ${bad:-0}"
}

# ratio A B: A/B to two decimals (0 when B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b>0)?a/b:0}'; }

# compare LABEL MEASURE: $ROUNDS rounds, each starting a fresh aerie and then
# a fresh Swift server (the script's start_aerie/start_swift PORT) and
# running "MEASURE PORT ROUND SERVER", which prints "ops/s p99_ms
# ops_per_cpu_s non2xx"; an after_run SERVER function, if the script has
# one, runs before each server is stopped. Prints each server's medians and
# the medians of the per-round aerie/Swift ratios.
compare() {
    local label=$1 measure=$2 r server p ops p99 per bad aerie_ops=0 swift_ops=0 aerie_cpu=0 swift_cpu=0
    local -A L=()
    local rr=() cr=()
    for r in $(seq "$ROUNDS"); do
        for server in aerie swift; do
            p=$(port)
            "start_$server" "$p"
            wait_port "$p"
            sleep 0.3
            read -r ops p99 per bad <<<"$("$measure" "$p" "$r" "$server")"
            if [ "$(type -t after_run)" = function ]; then after_run "$server"; fi
            kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true
            L[$server.ops]+="$ops "; L[$server.p99]+="$p99 "; L[$server.cpu]+="$per "; L[$server.bad]+="$bad "
            printf -v "${server}_ops" '%s' "$ops"
            printf -v "${server}_cpu" '%s' "$per"
        done
        rr+=("$(ratio "$aerie_ops" "$swift_ops")")
        cr+=("$(ratio "$aerie_cpu" "$swift_cpu")")
    done
    for server in aerie swift; do
        printf '%-18s %-6s %10.1f %10.2f %12.1f %8s\n' "$label" "$server" \
            "$(tr ' ' '\n' <<<"${L[$server.ops]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${L[$server.p99]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${L[$server.cpu]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${L[$server.bad]}" | grep . | median)"
    done
    printf '%-18s %-6s %10s %10s %12s   (per round: ops %s; per CPU-s %s)\n' "" ratio \
        "$(printf '%s\n' "${rr[@]}" | median)x" "" "$(printf '%s\n' "${cr[@]}" | median)x" "${rr[*]}" "${cr[*]}"
}

# The table's header line.
compare_header() { printf '\n%-18s %-6s %10s %10s %12s %8s\n' workload server "ops/s" "p99 ms" "ops/CPU-s" "non-2xx"; }

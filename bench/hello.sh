#!/usr/bin/env bash
# hello benchmark: aerie's `hello` against nginx `return 200 "test"`, same
# worker count, back to back in one run, with wrk.
#
#   bench/hello.sh [DURATION_SECONDS] [ROUNDS]
#
# Scenarios: 1 worker pinned to CPU 0 with wrk on CPU 1, then 2 workers
# (unpinned); each with keep-alive (50 connections) and with a fresh
# connection per request. Per scenario and server it prints requests/s,
# p99 latency, requests per CPU-second of the server's own processes
# (user+sys from /proc — on a shared, noisy machine this is the figure that
# repeats) and the aerie/nginx ratios; then each process's RSS, idle and
# after load. With ROUNDS > 1 the figures are medians over the rounds.
set -euo pipefail

DURATION=${1:-10}
ROUNDS=${2:-3}
CONNS=50
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TAG=hello
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

need() {
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}…" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}
need wrk:wrk nginx:nginx-light

(cd "$ROOT" && cargo build --release -q)
AERIE="$ROOT/target/release/aerie"

rss_list() {
    local p out=""
    for p in $1; do
        out+="$(awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/"$p"/status 2>/dev/null)MiB "
    done
    echo "$out"
}

start_aerie() { # workers pin port
    local workers=$1 pin=$2 port=$3
    cat >"$WORK/aerie.toml" <<EOF
[server]
workers = $workers
[log]
access = false
level = "warn"
[[listen]]
address = "127.0.0.1:$port"
backlog = 4096
pipeline = ["hello"]
EOF
    if [ "$pin" = yes ]; then taskset -c 0 "$AERIE" -c "$WORK/aerie.toml" 2>>"$WORK/aerie.log" &
    else "$AERIE" -c "$WORK/aerie.toml" 2>>"$WORK/aerie.log" & fi
    SERVER=$!
    PIDS+=("$SERVER")
}

start_nginx() { # workers pin port
    local workers=$1 pin=$2 port=$3
    nginx_conf "$workers" "$port" 'default_type text/plain; return 200 "test";'
    if [ "$pin" = yes ]; then taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK/nginx" &
    else nginx -c "$WORK/nginx.conf" -p "$WORK/nginx" & fi
    SERVER=$!
    PIDS+=("$SERVER")
}

wait_up() {
    local port=$1 i
    for i in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "server on $port did not come up" >&2
    return 1
}

# run_one SERVER WORKERS PIN MODE → prints "rps p99ms req_per_cpu_s idle_rss loaded_rss"
run_one() {
    local server=$1 workers=$2 pin=$3 mode=$4 port
    port=$(port)
    "start_$server" "$workers" "$pin" "$port"
    wait_up "$port"
    sleep 0.3
    local pids idle_rss t0 t1 out rps p99 reqs
    pids=$(tree "$SERVER")
    idle_rss=$(rss_list "$pids")
    local hdr=()
    [ "$mode" = fresh ] && hdr=(-H "Connection: close")
    local wrk_cmd=(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" "http://127.0.0.1:$port/")
    [ "$pin" = yes ] && wrk_cmd=(taskset -c 1 "${wrk_cmd[@]}")
    [ "$pin" != yes ] && wrk_cmd=(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" "http://127.0.0.1:$port/")
    t0=$(cpu_ticks "$pids")
    out=$("${wrk_cmd[@]}")
    t1=$(cpu_ticks "$pids")
    rps=$(wrk_rps "$out")
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    p99=$(wrk_ms "$out" 99)
    local errors
    errors=$(awk '/Non-2xx|Socket errors/{print}' <<<"$out" | tr '\n' ' ')
    local loaded_rss
    loaded_rss=$(rss_list "$(tree "$SERVER")")
    local cpu_s per_cpu
    cpu_s=$(awk -v a="$t0" -v b="$t1" -v c="$CLK" 'BEGIN{printf "%.3f", (b-a)/c}')
    per_cpu=$(awk -v r="$reqs" -v c="$cpu_s" 'BEGIN{ if (c>0) printf "%.0f", r/c; else print 0 }')
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    echo "$rps $p99 $per_cpu|$idle_rss|$loaded_rss|$errors"
}

median() { sort -n | awk '{a[NR]=$1} END{ if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

echo "aerie $("$AERIE" --version | cut -d' ' -f2) vs $(nginx -v 2>&1 | sed 's/.*: //'); ${DURATION}s per run, $ROUNDS rounds, $CONNS connections, $(nproc) CPUs"
echo "Each round runs aerie then nginx back to back; figures are medians over rounds,"
echo "ratios are medians of the per-round ratios (noise on a shared machine hits both servers of a round alike)."
printf '\n%-22s %-6s %12s %10s %14s\n' scenario server "req/s" "p99 ms" "req/CPU-s"
for scen in "1 yes keepalive" "1 yes fresh" "2 no keepalive" "2 no fresh"; do
    read -r workers pin mode <<<"$scen"
    declare -A L=()
    rr=(); cr=()
    for r in $(seq "$ROUNDS"); do
        for server in aerie nginx; do
            line=$(run_one "$server" "$workers" "$pin" "$mode")
            read -r rps p99 per <<<"${line%%|*}"
            L[$server.rps]+="$rps "; L[$server.p99]+="$p99 "; L[$server.cpu]+="$per "
            eval "${server}_rps=$rps; ${server}_cpu=$per"
            rest=${line#*|}
            L[$server.rss]="idle ${rest%%|*} loaded $(cut -d'|' -f2 <<<"$rest")"
            errs=$(cut -d'|' -f3 <<<"$rest")
            [ -n "${errs// }" ] && echo "  ($server $scen round $r: $errs)"
        done
        rr+=("$(awk -v a="$aerie_rps" -v b="$nginx_rps" 'BEGIN{printf "%.3f", a/b}')")
        cr+=("$(awk -v a="$aerie_cpu" -v b="$nginx_cpu" 'BEGIN{printf "%.3f", (b>0)?a/b:0}')")
    done
    label="$workers worker(s) $mode"
    for server in aerie nginx; do
        printf '%-22s %-6s %12.0f %10.2f %14.0f\n' "$label" "$server" \
            "$(tr ' ' '\n' <<<"${L[$server.rps]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${L[$server.p99]}" | grep . | median)" \
            "$(tr ' ' '\n' <<<"${L[$server.cpu]}" | grep . | median)"
    done
    printf '%-22s %-6s %12s %10s %14s   (per round: req/s %s; req/CPU-s %s)\n' "" ratio \
        "$(printf '%s\n' "${rr[@]}" | median)x" "" "$(printf '%s\n' "${cr[@]}" | median)x" "${rr[*]}" "${cr[*]}"
    echo "  RSS aerie: ${L[aerie.rss]}"
    echo "  RSS nginx: ${L[nginx.rss]}"
    unset L
done

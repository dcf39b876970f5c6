#!/usr/bin/env bash
# How evenly do connections spread over the workers?
#
#   bench/accept-balance.sh [WORKERS] [CONNECTIONS] [SECONDS]
#
# Runs wrk against aerie's hello with fresh connections (every request a new
# connection) and then with keep-alive connections, and prints each worker's
# share of the accepted connections (from the admin /status).
set -euo pipefail
WORKERS=${1:-4}
CONNS=${2:-50}
SECS=${3:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/aerie-balance.XXXXXX)
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
(cd "$ROOT" && cargo build --release -q)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port); A=$(port)
cat >"$WORK/a.toml" <<EOF2
[server]
workers = $WORKERS
[log]
access = false
level = "warn"
[admin]
address = "127.0.0.1:$A"
[[listen]]
address = "127.0.0.1:$P"
backlog = 4096
pipeline = ["hello"]
EOF2
"$ROOT/target/release/aerie" -c "$WORK/a.toml" 2>"$WORK/log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$A/status" >/dev/null && break; sleep 0.05; done
sleep 0.5
shares() { # before.json after.json
    python3 - "$1" "$2" <<'PY'
import json, sys
b = {w["pid"]: w["accepted"] for w in json.load(open(sys.argv[1]))["workers"]}
a = {w["pid"]: w["accepted"] for w in json.load(open(sys.argv[2]))["workers"]}
d = {p: a[p] - b.get(p, 0) for p in a}
t = sum(d.values()) or 1
print("  total connections %d; per worker: %s; min %.1f%% max %.1f%%" % (t,
      " ".join("%.1f%%" % (100 * v / t) for v in sorted(d.values())),
      100 * min(d.values()) / t, 100 * max(d.values()) / t))
PY
}
curl -s "http://127.0.0.1:$A/status" >"$WORK/s0"
wrk -t2 -c"$CONNS" -d"${SECS}s" -H 'Connection: close' "http://127.0.0.1:$P/" >/dev/null
curl -s "http://127.0.0.1:$A/status" >"$WORK/s1"
echo "fresh connections ($CONNS concurrent clients, $WORKERS workers):"
shares "$WORK/s0" "$WORK/s1"
wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$P/" >/dev/null
curl -s "http://127.0.0.1:$A/status" >"$WORK/s2"
echo "keep-alive connections ($CONNS concurrent clients, $WORKERS workers):"
shares "$WORK/s1" "$WORK/s2"

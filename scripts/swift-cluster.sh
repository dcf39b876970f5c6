#!/usr/bin/env bash
# A Swift cluster on aerie storage nodes, on loopback: the unmodified Swift
# proxy-server (from PyPI, with tempauth) in front of NODES aerie nodes, each
# serving the object, container and account services on three listeners
# plus the object and container updaters.
#
#   scripts/swift-cluster.sh setup DIR [NODES]   write rings and configs
#   scripts/swift-cluster.sh start DIR [NODES]   setup, then start it all
#   scripts/swift-cluster.sh stop DIR            stop what start started
#
# setup is idempotent (it rebuilds the rings and configs in DIR, keeping any
# data) and is what the tests use; they start the processes themselves.
# After start:
#
#   . DIR/cluster.env
#   .venv/bin/swift -A "$ST_AUTH" -U "$ST_USER" -K "$ST_KEY" stat
#
# Layout: DIR/swift (the proxy's swift_dir: rings, proxy-server.conf,
# object-expirer.conf for Swift's expirer), DIR/rsyncd.conf (the rsync
# daemon for Swift's replicators in rsync mode: as in Swift's SAIO, one
# daemon for the loopback cluster with modules object<port>,
# container<port> and account<port> over each node's devices, on port
# RSYNC_PORT; rsync_module = rsync://127.0.0.1:RSYNC_PORT/object{replication_port}),
# DIR/nodeN/aerie.toml and DIR/nodeN/srv/dN (node N's one device),
# DIR/cluster.env (ports, and ST_AUTH/ST_USER/ST_KEY for the swift client).
# Rings have min(3, NODES) replicas, one zone per node, 2^6 partitions, and
# an object ring for every storage policy in DIR/swift/swift.conf (a copy of
# /etc/swift/swift.conf, or a test one with policy 0 if there is none).
#
# Environment: AERIE (the aerie binary; default: target/release/aerie, built
# if missing), WORKERS (per node, default 1), UPDATER_INTERVAL (seconds,
# default 1.0), REPLICATION_INTERVAL (seconds between the object
# replicator's passes, default 5.0), ENCRYPTION (1: the proxy encrypts,
# with keymaster and encryption in its pipeline; default 0), EC (1: an
# erasure-coded default policy, 4+2 liberasurecode_rs_vand, beside a
# replicated one; needs six devices, e.g. NODES=3 DEVICES_PER_NODE=2),
# DEVICES_PER_NODE (devices in the object rings per node: d<N>, d<N>x2, …;
# default 1). Swift's programs run through DIR/swift-run, which gives them
# the cluster's swift.conf as /etc/swift (a mount namespace) when EC=1.
#
# The proxy's pipeline is a production one: s3api (S3 clients sign with
# access key test:tester, secret testing), tempauth, bulk, tempurl,
# staticweb, copy, quotas, slo, dlo, versioned_writes (both modes),
# symlink, container_sync.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
DIR=${2:-}
NODES=${3:-1}
[ -n "$cmd" ] && [ -n "$DIR" ] || { sed -n '2,46p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

setup() {
    local py bin swift_dir replicas n
    py=$("$ROOT/scripts/swift-venv.sh")
    bin=$(dirname "$py")
    swift_dir=$DIR/swift
    mkdir -p "$swift_dir"
    # The cluster's swift.conf (hash prefix and suffix, policies), read by
    # the proxy from its swift_dir and by the nodes: the machine's own, or
    # a test one.
    if [ ! -f "$swift_dir/swift.conf" ]; then
        if [ "${EC:-0}" = 1 ]; then
            # An erasure-coded default policy (4 data + 2 parity fragments,
            # six devices) beside a replicated one.
            printf '# written by aerie scripts/swift-cluster.sh (EC=1)\n[swift-hash]\nswift_hash_path_prefix = changeme\nswift_hash_path_suffix = changeme\n\n[storage-policy:0]\nname = gold\n\n[storage-policy:1]\nname = ec42\ndefault = yes\npolicy_type = erasure_coding\nec_type = liberasurecode_rs_vand\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\nec_object_segment_size = 1048576\n' >"$swift_dir/swift.conf"
        elif [ -f /etc/swift/swift.conf ]; then
            cp /etc/swift/swift.conf "$swift_dir/swift.conf"
        else
            printf '# written by aerie scripts/swift-cluster.sh\n[swift-hash]\nswift_hash_path_prefix = changeme\nswift_hash_path_suffix = changeme\n\n[storage-policy:0]\nname = gold\ndefault = yes\n' >"$swift_dir/swift.conf"
        fi
    fi
    # Ports are chosen once and kept, so a re-run keeps the rings valid.
    if [ ! -f "$DIR/ports" ]; then
        {
            echo "PROXY_PORT=$(free_port) RSYNC_PORT=$(free_port)"
            for n in $(seq "$NODES"); do
                echo "NODE${n}_OBJECT=$(free_port) NODE${n}_CONTAINER=$(free_port) NODE${n}_ACCOUNT=$(free_port) NODE${n}_ADMIN=$(free_port)"
            done
        } >"$DIR/ports"
    fi
    # shellcheck disable=SC1091
    . "$DIR/ports"
    replicas=$((NODES < 3 ? NODES : 3))
    local devs=${DEVICES_PER_NODE:-1}
    local rings=(account container object)
    for idx in $(sed -n 's/^\[storage-policy:\([0-9]\+\)\].*/\1/p' "$swift_dir/swift.conf"); do
        [ "$idx" = 0 ] || rings+=("object-$idx")
    done
    for ring in "${rings[@]}"; do
        local kind=${ring%%-*} b=$swift_dir/$ring.builder r=$replicas
        # An EC policy's ring holds one fragment per replica.
        local frags
        frags=$(python3 - "$swift_dir/swift.conf" "${ring#object-}" <<'PY'
import configparser, sys
c = configparser.ConfigParser(); c.read(sys.argv[1])
s = "storage-policy:" + sys.argv[2]
if c.has_section(s) and c.get(s, "policy_type", fallback="") == "erasure_coding":
    print(int(c.get(s, "ec_num_data_fragments")) + int(c.get(s, "ec_num_parity_fragments")))
PY
)
        [ -n "$frags" ] && [ "$kind" = object ] && r=$frags
        rm -f "$b" "$swift_dir/$ring.ring.gz"
        "$bin/swift-ring-builder" "$b" create 6 "$r" 0 >/dev/null
        for n in $(seq "$NODES"); do
            local var="NODE${n}_${kind^^}"
            "$bin/swift-ring-builder" "$b" add --region 1 --zone "$n" --ip 127.0.0.1 --port "${!var}" --device "d$n" --weight 100 >/dev/null
            # More devices on the node: for the object rings.
            if [ "$kind" = object ]; then
                for k in $(seq 2 "$devs"); do
                    "$bin/swift-ring-builder" "$b" add --region 1 --zone "$n" --ip 127.0.0.1 --port "${!var}" --device "d${n}x$k" --weight 100 >/dev/null
                done
            fi
        done
        # Exit status 1 is a warning (e.g. balance with few devices).
        "$bin/swift-ring-builder" "$b" rebalance >/dev/null || [ $? -eq 1 ]
    done
    for n in $(seq "$NODES"); do
        local node=$DIR/node$n o c a adm
        o="NODE${n}_OBJECT" c="NODE${n}_CONTAINER" a="NODE${n}_ACCOUNT" adm="NODE${n}_ADMIN"
        mkdir -p "$node/srv/d$n"
        for k in $(seq 2 "${DEVICES_PER_NODE:-1}"); do mkdir -p "$node/srv/d${n}x$k"; done
        cat >"$node/aerie.toml" <<EOF
# aerie node $n of the loopback cluster in $DIR (scripts/swift-cluster.sh).
# A production node is etc/swift-node.toml.
[server]
workers = ${WORKERS:-1}
pid_file = "$node/aerie.pid"

[admin]
address = "127.0.0.1:${!adm}"

[log]
level = "info"
access = true

[storage]
devices = "$node/srv"
# Loopback test devices are plain directories.
mount_check = false
swift_conf = "$swift_dir/swift.conf"
object_updater_interval = ${UPDATER_INTERVAL:-1.0}
container_updater_interval = ${UPDATER_INTERVAL:-1.0}
# The replicators' and updaters' recon documents (GET /recon/*).
recon_cache_path = "$node/recon"

[replication]
interval = ${REPLICATION_INTERVAL:-5.0}
# Databases pushed whole go to this cluster's rsync daemon (modules
# container<port>, account<port>; scripts/swift-cluster.sh start runs it).
container_rsync_module = "rsync://127.0.0.1:$RSYNC_PORT/container{replication_port}"
account_rsync_module = "rsync://127.0.0.1:$RSYNC_PORT/account{replication_port}"

[[listen]]
address = "127.0.0.1:${!o}"
length_required = []
pipeline = ["recon", "object"]

[[listen]]
address = "127.0.0.1:${!c}"
length_required = []
pipeline = ["recon", "container"]

[[listen]]
address = "127.0.0.1:${!a}"
length_required = []
pipeline = ["recon", "account"]

[processors.object]
threads_per_device = 4
queue_per_device = 64

[processors.container]
threads_per_device = 4
queue_per_device = 64

[processors.account]
threads_per_device = 2
queue_per_device = 64
EOF
    done
    {
        echo "# rsync daemon of the loopback cluster in $DIR (scripts/swift-cluster.sh)."
        echo "# A production node's is etc/rsyncd.conf: one daemon, modules over /srv/node."
        echo "pid file = $DIR/rsyncd.pid"
        echo "log file = $DIR/rsyncd.log"
        echo "use chroot = false"
        echo "reverse lookup = false"
        echo "uid = $(id -un)"
        echo "gid = $(id -gn)"
        for n in $(seq "$NODES"); do
            for kind in object container account; do
                local var="NODE${n}_${kind^^}"
                printf '\n[%s%s]\npath = %s\nread only = false\nmax connections = 8\nlock file = %s\n' \
                    "$kind" "${!var}" "$DIR/node$n/srv" "$DIR/rsync-$kind${!var}.lock"
            done
        done
    } >"$DIR/rsyncd.conf"
    # A production pipeline; with ENCRYPTION=1 the proxy encrypts object
    # data and metadata (keymaster, encryption) before the nodes see them.
    local crypto=""
    if [ "${ENCRYPTION:-0}" = 1 ]; then crypto="keymaster encryption"; fi
    cat >"$swift_dir/proxy-server.conf" <<EOF
# Swift's proxy in front of the aerie nodes in $DIR.
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
swift_dir = $swift_dir
workers = 0
log_name = proxy-server
log_address = /dev/null

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats container_sync bulk tempurl s3api tempauth staticweb copy container-quotas account-quotas slo dlo versioned_writes symlink $crypto proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
# S3 clients sign with access key test:tester and secret key testing.
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
# Tokens are Fernet tokens, so no memcached is needed.
fernet_key_k1 = $(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')
active_fernet_key_id = k1

[filter:s3api]
use = egg:swift#s3api
# Virtual-hosted requests: <bucket>.localhost:$PROXY_PORT.
storage_domain = localhost
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true
[filter:keymaster]
use = egg:swift#keymaster
encryption_root_secret = $(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
[filter:encryption]
use = egg:swift#encryption
EOF
    # The filters that need no settings: [filter:NAME], egg NAME with _ for -.
    for f in catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk slo dlo symlink copy \
        container_sync tempurl staticweb container-quotas account-quotas; do
        printf '[filter:%s]\nuse = egg:swift#%s\n' "$f" "${f//-/_}"
    done >>"$swift_dir/proxy-server.conf"
    # Swift's programs read /etc/swift/swift.conf and nothing else: with
    # EC=1 they run in a mount namespace where that is the cluster's.
    if [ "${EC:-0}" = 1 ]; then
        cat >"$DIR/swift-run" <<EOF
#!/bin/sh
# Run a Swift program with $swift_dir as its /etc/swift.
mkdir -p /etc/swift
exec unshare -m sh -c 'mount --bind "\$0" /etc/swift && exec "\$@"' "$swift_dir" "\$@"
EOF
    else
        printf '#!/bin/sh\n# Run a Swift program (the machine'"'"'s /etc/swift/swift.conf is the cluster'"'"'s).\nexec "$@"\n' >"$DIR/swift-run"
    fi
    chmod +x "$DIR/swift-run"
    # Swift's object expirer deletes expired objects and their listing
    # entries through an internal proxy pipeline:
    #   $bin/swift-object-expirer $swift_dir/object-expirer.conf --once
    mkdir -p "$DIR/recon"
    cat >"$swift_dir/object-expirer.conf" <<EOF
[DEFAULT]
swift_dir = $swift_dir
user = $(id -un)
log_address = /dev/null
recon_cache_path = $DIR/recon

[object-expirer]
interval = 5

[pipeline:main]
pipeline = catch_errors proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:proxy-logging]
use = egg:swift#proxy_logging
EOF
    {
        cat "$DIR/ports"
        echo "NODES=$NODES"
        echo "SWIFT_BIN=$bin"
        echo "SWIFT_RUN=$DIR/swift-run"
        echo "export ST_AUTH=http://127.0.0.1:$PROXY_PORT/auth/v1.0 ST_USER=test:tester ST_KEY=testing"
    } >"$DIR/cluster.env"
}

start() {
    local aerie=${AERIE:-$ROOT/target/release/aerie} n
    [ -x "$aerie" ] || (cd "$ROOT" && cargo build --release -q)
    # shellcheck disable=SC1091
    . "$DIR/cluster.env"
    : >"$DIR/pids"
    if "$ROOT/scripts/rsync.sh" >/dev/null; then
        rsync --daemon --no-detach --config="$DIR/rsyncd.conf" --port="$RSYNC_PORT" --address=127.0.0.1 &
        echo $! >>"$DIR/pids"
    fi
    for n in $(seq "$NODES"); do
        "$aerie" -c "$DIR/node$n/aerie.toml" 2>>"$DIR/node$n/aerie.log" &
        echo $! >>"$DIR/pids"
    done
    "$SWIFT_RUN" "$SWIFT_BIN/swift-proxy-server" "$DIR/swift/proxy-server.conf" -v >>"$DIR/proxy.log" 2>&1 &
    echo $! >>"$DIR/pids"
    local up=
    for _ in $(seq 300); do
        curl -fsS "http://127.0.0.1:$PROXY_PORT/healthcheck" >/dev/null 2>&1 && { up=1; break; }
        sleep 0.1
    done
    [ -n "$up" ] || { echo "the proxy did not come up; see $DIR/proxy.log" >&2; stop; exit 1; }
    echo "proxy on 127.0.0.1:$PROXY_PORT; nodes: $NODES; logs in $DIR; try:"
    echo "  . $DIR/cluster.env && $SWIFT_BIN/swift stat"
}

stop() {
    [ -f "$DIR/pids" ] || return 0
    while read -r p; do kill "$p" 2>/dev/null || true; done <"$DIR/pids"
    rm -f "$DIR/pids"
}

case $cmd in
    setup) setup ;;
    start) setup && start ;;
    stop) stop ;;
    *) echo "unknown command $cmd (setup, start, stop)" >&2; exit 2 ;;
esac

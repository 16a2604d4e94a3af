#!/usr/bin/env bash
# One node against three: the same mall-load scenario on a one-node mall cluster and on a
# three-node one (one PostgreSQL database, one etcd), then the failover gap when one of the three
# is killed.
#
#   (a) starts its own etcd (free ports, data in a temporary directory), makes a fresh PostgreSQL
#       database, starts one `mall` node (n1) on it and runs mall-load against it;
#   (b) the same on another fresh database with three nodes (n1, n2, n3) and
#       `mall-load --targets` over all three (client i at home on node i mod 3); then prints the
#       two throughputs (requests/s of every scenario together, and checkout purchases/s) and
#       the ratio three-node / one-node, and the `cluster_` lines of each node's /metrics;
#   (d) on the three nodes of (b): `failover-gap` polls carts through n1 and n2, kills n3 with
#       SIGKILL and reports how long the customers that saw a failed read waited for a
#       successful one; then the survivors' `cluster_` metric lines again.
# Every node shares the JWT secret, a random cluster.secret and the admin mall-load logs in as;
# rate limits are off, `cluster.lease_ttl_secs` is 3. The nodes, etcd and the databases are
# stopped and dropped at the end, whatever happens; the mall-load and failover-gap JSON reports
# stay in $OUT (default target/cluster-bench), with the nodes' logs of the last run.
#
# Prerequisites: a release build of the three binaries, PostgreSQL on 127.0.0.1:5432 (user
# postgres, trust auth; `psql` on the PATH), Debian's `etcd` (package etcd-server, installed with
# apt-get when missing), curl and jq (installed with apt-get when missing).
#   cargo build --release -p mall-http --bin mall -p mall-bench --bin mall-load --bin failover-gap
#   benches/cluster.sh
# Settings (environment): DURATION seconds of load per run [15], SCENARIOS [checkout,cart],
# CONCURRENCY clients [32], THREE_NODE_WORKERS (server.workers of each of the three nodes)
# [the default: one per core], GAP=0 skips (d), GAP_CUSTOMERS [60], GAP_AFTER seconds of polling
# after the kill [15], OUT [target/cluster-bench], BIN_DIR [target/release], MALL_CONFIG
# [config.toml], MALL__LOG__LEVEL [warn]; any other MALL__SECTION__KEY reaches every node.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${BIN_DIR:-target/release}
config=${MALL_CONFIG:-config.toml}
secs=${DURATION:-15}
scenarios=${SCENARIOS:-checkout,cart}
clients=${CONCURRENCY:-32}
out=${OUT:-target/cluster-bench}
gap_customers=${GAP_CUSTOMERS:-60}
gap_after=${GAP_AFTER:-15}
pg=(-h 127.0.0.1 -U postgres)
admin_email=admin@example.com
admin_password=mall-load-dev-password # mall-load's and failover-gap's default

for b in mall mall-load failover-gap; do
    if [ ! -x "$bin/$b" ]; then
        echo "cluster.sh: no $bin/$b: cargo build --release -p mall-http --bin mall -p mall-bench --bin mall-load --bin failover-gap" >&2
        exit 2
    fi
done
need() { # need COMMAND DEBIAN_PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "cluster.sh: $1 is missing: apt-get install -y $2" >&2
    apt-get install -y -q "$2" >/dev/null || { echo "cluster.sh: cannot install $2" >&2; exit 2; }
}
need etcd etcd-server
need jq jq
need curl curl
psql "${pg[@]}" -qAtc 'SELECT 1' >/dev/null || { echo "cluster.sh: no PostgreSQL at 127.0.0.1:5432" >&2; exit 2; }

mkdir -p "$out"
scratch=$(mktemp -d /tmp/mall-cluster.XXXXXX)
etcd_pid=
declare -A node_pid=() node_url=()
databases=()

# A TCP port of 127.0.0.1 that nothing listens on (another process may take it before we bind
# it: the callers start at once and fail loudly if so).
taken=" "
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        case "$taken" in *" $p "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            taken="$taken$p "
            echo "$p"
            return
        fi
    done
}

stop_node() { # stop_node ID: SIGTERM, SIGKILL if still there after 10 s, then reap it
    local pid=${node_pid[$1]:-}
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    unset "node_pid[$1]"
}
stop_nodes() {
    local id
    for id in "${!node_pid[@]}"; do stop_node "$id"; done
    node_url=()
}
cleanup() {
    stop_nodes
    if [ -n "$etcd_pid" ]; then
        kill "$etcd_pid" 2>/dev/null || true
        wait "$etcd_pid" 2>/dev/null || true
    fi
    local db
    for db in "${databases[@]}"; do
        psql "${pg[@]}" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    cp "$scratch"/*.log "$out/" 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT

# etcd: one member, client and peer on free ports, data in the scratch directory.
etcd_port=$(free_port)
peer_port=$(free_port)
etcd_url=http://127.0.0.1:$etcd_port
etcd --name cluster-bench --data-dir "$scratch/etcd" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "cluster-bench=http://127.0.0.1:$peer_port" >"$scratch/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 1 100); do
    curl -fs "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"' && break
    kill -0 "$etcd_pid" 2>/dev/null || { echo "cluster.sh: etcd exited:" >&2; tail -20 "$scratch/etcd.log" >&2; exit 2; }
    sleep 0.2
done
curl -fs "$etcd_url/health" >/dev/null || { echo "cluster.sh: etcd does not answer at $etcd_url" >&2; exit 2; }
echo "etcd at $etcd_url"

random_hex() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
export MALL__AUTH__JWT_SECRET=$(random_hex)
export MALL__CLUSTER__SECRET=$(random_hex)
export MALL__CLUSTER__ETCD_ENDPOINTS=$etcd_url
export MALL__CLUSTER__LEASE_TTL_SECS=3
export MALL__BOOTSTRAP__ADMIN_EMAIL=$admin_email MALL__BOOTSTRAP__ADMIN_PASSWORD=$admin_password
export MALL__RATE_LIMIT__ENABLED=false MALL__LOG__LEVEL=${MALL__LOG__LEVEL:-warn}

fresh_database() { # fresh_database NAME: creates and migrates it, exports its URL
    psql "${pg[@]}" -qc "CREATE DATABASE $1" >/dev/null
    databases+=("$1")
    export MALL__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$1"
    "$bin/mall" migrate --config "$config" >"$scratch/migrate.log" 2>&1
}

start_node() { # start_node ID: starts it on a free port and waits until it is ready
    local id=$1 port url pid
    port=$(free_port)
    url=http://127.0.0.1:$port
    MALL__CLUSTER__NODE_ID=$id MALL__SERVER__BIND=127.0.0.1:$port \
        "$bin/mall" serve --config "$config" >"$scratch/$id.log" 2>&1 &
    pid=$!
    node_pid[$id]=$pid
    node_url[$id]=$url
    for _ in $(seq 1 300); do
        if curl -fs "$url/readyz" 2>/dev/null | grep -q '"registry":"up"'; then
            echo "node $id at $url (pid $pid)"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "cluster.sh: node $id did not become ready at $url:" >&2
    tail -20 "$scratch/$id.log" >&2
    exit 2
}

cluster_metrics() { # cluster_metrics ID...: the cluster_ lines of each node's /metrics
    local id
    for id in "$@"; do
        echo "--- $id (${node_url[$id]}) /metrics, cluster_ lines:"
        curl -fs "${node_url[$id]}/metrics" | grep '^cluster_' || echo "(none)"
    done
}

load() { # load NAME URL,...: runs mall-load; its report in $out/NAME.json
    local name=$1 targets=$2 status=0
    echo "### $name: mall-load --targets $targets --scenario $scenarios --duration $secs --concurrency $clients"
    "$bin/mall-load" --targets "$targets" --scenario "$scenarios" --duration "$secs" \
        --concurrency "$clients" --report "$out/$name.json" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "cluster.sh: mall-load exited $status on $name (1: an invariant failed)" >&2
    fi
    return 0
}

# The figures of a report: requests/s of every scenario together, checkout purchases/s.
rps() { jq -r '[.scenarios[].rps] | add // 0' "$1"; }
purchases() {
    jq -r '[.scenarios[] | select(.scenario == "checkout") | (.counters.orders_placed // 0) / .elapsed_secs] | add // 0' "$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

run_id=$$
# (a) one node.
fresh_database "mall_cluster_${run_id}_one"
start_node n1
load one-node "${node_url[n1]}"
cluster_metrics n1
stop_nodes

# (b) three nodes on a fresh database; THREE_NODE_WORKERS sets their server.workers (the
# default is one HTTP worker per core in each node: six on this machine's two cores).
fresh_database "mall_cluster_${run_id}_three"
if [ -n "${THREE_NODE_WORKERS:-}" ]; then export MALL__SERVER__WORKERS=$THREE_NODE_WORKERS; fi
for id in n1 n2 n3; do start_node "$id"; done
all="${node_url[n1]},${node_url[n2]},${node_url[n3]}"
load three-nodes "$all"
cluster_metrics n1 n2 n3

echo
echo "### throughput, $scenarios, $clients clients, $secs s"
if [ -s "$out/one-node.json" ] && [ -s "$out/three-nodes.json" ]; then
    one=$(rps "$out/one-node.json")
    three=$(rps "$out/three-nodes.json")
    p1=$(purchases "$out/one-node.json")
    p3=$(purchases "$out/three-nodes.json")
    printf 'one node:    %10.1f requests/s  %8.1f purchases/s\n' "$one" "$p1"
    printf 'three nodes: %10.1f requests/s  %8.1f purchases/s\n' "$three" "$p3"
    echo "ratio three/one: $(ratio "$three" "$one") (requests/s), $(ratio "$p3" "$p1") (purchases/s)"
    echo "failovers and retried 503s on three nodes: $(jq -r '"\(.failovers) / \(.retried_503)"' "$out/three-nodes.json")"
    echo "reports: $out/one-node.json $out/three-nodes.json"
else
    echo "cluster.sh: a mall-load report is missing; no ratio" >&2
fi

# (d) kill one of the three.
if [ "${GAP:-1}" != 0 ]; then
    echo
    echo "### failover gap: $gap_customers customers reading their carts through n1 and n2, n3 killed"
    status=0
    "$bin/failover-gap" --targets "$all" --victim "${node_url[n3]}" --pid "${node_pid[n3]}" \
        --customers "$gap_customers" --after "$gap_after" --report "$out/failover-gap.json" || status=$?
    wait "${node_pid[n3]}" 2>/dev/null || true
    unset "node_pid[n3]"
    if [ "$status" -ne 0 ]; then
        echo "cluster.sh: failover-gap exited $status (1: a customer never read its cart again)" >&2
    fi
    cluster_metrics n1 n2
fi

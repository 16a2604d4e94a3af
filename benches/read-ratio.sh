#!/usr/bin/env bash
# The read path against its ceiling, in one run: ROUNDS rounds, each interleaving wrk against
# the bare actix-web route (`http-ceiling`), against the mall's `GET /api/v1/products/{id}` with
# its in-process product cache, and against the same mall with the cache off (a database read
# per request), so the machine's drift hits every figure alike. PostgreSQL by default (no Redis).
# Build first:
#   cargo build --release -p mall-http --bin mall -p mall-bench --bin http-ceiling
# Usage: benches/read-ratio.sh [sqlite|postgres] [rounds] [seconds] [connections]
#   e.g. benches/read-ratio.sh postgres 3 10 64
# BIN_DIR names another build of `mall` to run (default target/release).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-postgres}
rounds=${2:-3}
secs=${3:-10}
conns=${4:-64}
bin=${BIN_DIR:-target/release}
ceiling_port=18990
cached_port=18901
uncached_port=18902
# shellcheck source=benches/scratch.sh
source benches/scratch.sh read
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    drop_scratch
}
trap cleanup EXIT

wait_ready() {
    for _ in $(seq 1 100); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "not ready: $1" >&2
    exit 1
}

target/release/http-ceiling "127.0.0.1:$ceiling_port" >/dev/null 2>&1 &
pids+=($!)
export MALL__DATABASE__URL=$url MALL__RATE_LIMIT__ENABLED=false MALL__LOG__LEVEL=warn
export MALL__REDIS__URL= MALL__BOOTSTRAP__ADMIN_EMAIL=admin@example.com
export MALL__BOOTSTRAP__ADMIN_PASSWORD=mall-read-dev-password
MALL__SERVER__BIND=127.0.0.1:$cached_port "$bin/mall" serve >"$scratch/cached.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$cached_port/readyz"
# The second mall shares the (migrated) database; its cache holds nothing.
MALL__SERVER__BIND=127.0.0.1:$uncached_port MALL__CATALOG__CACHE_MAX_MB=0 \
    "$bin/mall" serve >"$scratch/uncached.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$uncached_port/readyz"
wait_ready "http://127.0.0.1:$ceiling_port/product"

api="http://127.0.0.1:$cached_port/api/v1"
token=$(curl -fs "$api/auth/login" -H 'content-type: application/json' \
    -d '{"email":"admin@example.com","password":"mall-read-dev-password"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
id=$(curl -fs "$api/products" -H 'content-type: application/json' -H "authorization: Bearer $token" \
    -d '{"name":"Tea","description":"green tea","price_cents":1250,"stock":10,"categories":["drinks"]}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

run() {
    wrk -t2 -c"$conns" -d"${secs}s" --latency "$1" |
        awk -v what="$2" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
            END {printf "%-28s %10s rps  p50 %8s  p99 %8s\n", what, rps, p50, p99}'
}
echo "backend $backend, wrk -t2 -c$conns -d${secs}s, product $id, $(date -u +%FT%TZ)"
for round in $(seq 1 "$rounds"); do
    echo "### round $round"
    run "http://127.0.0.1:$ceiling_port/product" "http-ceiling"
    run "http://127.0.0.1:$cached_port/api/v1/products/$id" "mall, product cache"
    run "http://127.0.0.1:$uncached_port/api/v1/products/$id" "mall, cache off (database)"
done

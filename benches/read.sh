#!/usr/bin/env bash
# The read path alone: `GET /api/v1/products/{id}` of one product, measured by wrk against a
# fresh mall on a scratch database (as load.sh makes one), so two builds compare on the one
# request the issue's read target names, without the load generator's own cost in the way.
# Prints one line: requests/s, p50 and p99 (wrk's own figures: closed loop, 64 connections).
# Build first:
#   cargo build --release -p mall-http --bin mall
# Usage: benches/read.sh sqlite|postgres [seconds]
# BIN_DIR, MALL_CONFIG and PORT as for load.sh; WRK_ARGS replaces `-t2 -c64`.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:?usage: benches/read.sh sqlite|postgres [seconds]}
secs=${2:-10}
port=${PORT:-18900}
bin=${BIN_DIR:-target/release}
config=${MALL_CONFIG:-config.toml}
# shellcheck source=benches/scratch.sh
source benches/scratch.sh read
mall_pid=
cleanup() {
    [ -n "$mall_pid" ] && kill "$mall_pid" 2>/dev/null && wait "$mall_pid" 2>/dev/null || true
    drop_scratch
}
trap cleanup EXIT

password=mall-read-dev-password
export MALL__SERVER__BIND=127.0.0.1:$port MALL__DATABASE__URL=$url
export MALL__RATE_LIMIT__ENABLED=false MALL__LOG__LEVEL=${MALL__LOG__LEVEL:-warn}
export MALL__BOOTSTRAP__ADMIN_EMAIL=admin@example.com MALL__BOOTSTRAP__ADMIN_PASSWORD=$password
"$bin/mall" serve --config "$config" >"$scratch/mall.log" 2>&1 &
mall_pid=$!
base=http://127.0.0.1:$port
for _ in $(seq 1 100); do
    curl -fs "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

token=$(curl -fsS -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"admin@example.com\",\"password\":\"$password\"}" | jq -r .access_token)
id=$(curl -fsS -X POST "$base/api/v1/products" -H 'content-type: application/json' \
    -H "authorization: Bearer $token" \
    -d '{"name":"Read path tea","description":"one product, read again and again","price_cents":1250,"stock":10,"categories":["drinks"]}' |
    jq -r .id)
curl -fs "$base/api/v1/products/$id" >/dev/null

# shellcheck disable=SC2086 # WRK_ARGS is a list of arguments
wrk ${WRK_ARGS:--t2 -c64} -d"${secs}s" --latency "$base/api/v1/products/$id" >"$scratch/wrk.out"
rps=$(awk '/^Requests\/sec:/ { print $2 }' "$scratch/wrk.out")
p50=$(awk '$1 == "50%" { print $2 }' "$scratch/wrk.out")
p99=$(awk '$1 == "99%" { print $2 }' "$scratch/wrk.out")
errors=$(awk '/Non-2xx|Socket errors/' "$scratch/wrk.out" | tr '\n' ' ')
echo "GET /api/v1/products/{id}: $rps rps, p50 $p50, p99 $p99${errors:+, $errors}"

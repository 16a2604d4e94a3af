#!/usr/bin/env bash
# The database's own ceiling for the mall's SQL, on the local PostgreSQL: creates a scratch
# database, applies the mall's migrations, seeds it, runs the purchase and the hot-row scripts,
# and drops the database. Usage: benches/pgbench/run.sh [clients] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
clients=${1:-32}
secs=${2:-20}
db=mall_ceiling_$$
pg="-h 127.0.0.1 -U postgres"
psql $pg -qc "CREATE DATABASE $db"
trap 'psql $pg -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
MALL__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db" MALL__LOG__LEVEL=warn cargo run -q --release -p mall-http --bin mall -- migrate
psql $pg -q -d "$db" -f benches/pgbench/seed.sql
echo "== purchase (all the SQL of one purchase), $clients clients, ${secs}s"
pgbench $pg -n -f benches/pgbench/purchase.sql -c "$clients" -j 2 -T "$secs" "$db" | grep -E "tps|latency"
echo "== hot row (one product, every client), $clients clients, ${secs}s"
pgbench $pg -n -f benches/pgbench/hot.sql -c "$clients" -j 2 -T "$secs" "$db" | grep -E "tps|latency"

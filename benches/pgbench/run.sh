#!/usr/bin/env bash
# The database's own ceiling for the mall's SQL, on the local PostgreSQL: creates a scratch
# database, applies the mall's migrations, seeds it, runs the purchase and the hot-row scripts,
# and drops the database. Usage: benches/pgbench/run.sh [clients (at most 256)] [seconds]
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
# Prepared statements, as the mall's connections use them.
bench() { pgbench $pg -n -M prepared -f "benches/pgbench/$1" -c "$2" -j 2 -T "$secs" "$db" | grep -E "^(tps|latency)"; }
echo "== purchase (all the SQL of one purchase: three commits), $clients clients, ${secs}s"
bench purchase.sql "$clients"
echo "== hot row (one product, one unit per transaction, every client), $clients clients, ${secs}s"
bench hot.sql "$clients"
echo "== hot row batched (32 one-unit orders per transaction, as the placement desk), 4 clients, ${secs}s"
bench hot_batch.sql 4
echo "(hot row batched: orders per second = tps x 32)"

#!/usr/bin/env bash
# Before and after, against the database's own ceiling, on PostgreSQL: ROUNDS rounds run back to
# back, each interleaving the pgbench purchase script, the checkout scenario on this build and on
# another, the hot-row scripts, and the flash sale on both builds, so the machine's drift hits
# every figure alike. Build both first (the other, e.g., in a git worktree with its own target
# directory), then:
#   benches/compare.sh OTHER_BIN_DIR OTHER_CONFIG [rounds] [seconds]
#   e.g. benches/compare.sh /tmp/before-target/release /tmp/before/config.toml 3 20
set -euo pipefail
cd "$(dirname "$0")/.."
other_bin=${1:?usage: benches/compare.sh OTHER_BIN_DIR OTHER_CONFIG [rounds] [seconds]}
other_config=${2:?usage: benches/compare.sh OTHER_BIN_DIR OTHER_CONFIG [rounds] [seconds]}
rounds=${3:-3}
secs=${4:-20}
db=mall_compare_$$
pg="-h 127.0.0.1 -U postgres"
psql $pg -qc "CREATE DATABASE $db"
trap 'psql $pg -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
MALL__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db" MALL__LOG__LEVEL=warn target/release/mall migrate >/dev/null
psql $pg -q -d "$db" -f benches/pgbench/seed.sql
pgb() { pgbench $pg -n -M prepared -f "benches/pgbench/$1" -c "$2" -j 2 -T "$secs" "$db" 2>&1 | grep -E "^tps"; }
show="^  POST|postgres during|order_placement_batch_size_(sum|count)|FAIL"
checkout=(--scenario checkout --duration "$secs" --concurrency 32)
flash=(--scenario flash-sale --duration "$secs" --concurrency 32 --flash-stock 10000000 --no-flash-pay)
for round in $(seq 1 "$rounds"); do
    echo "### round $round"
    echo "pgbench purchase.sql, 32 clients: $(pgb purchase.sql 32)"
    echo "checkout, this build:"
    PGSTATS=1 benches/load.sh postgres "${checkout[@]}" 2>&1 | grep -E "$show" || true
    echo "checkout, the other build:"
    BIN_DIR=$other_bin MALL_CONFIG=$other_config PGSTATS=1 benches/load.sh postgres "${checkout[@]}" 2>&1 | grep -E "$show" || true
    echo "pgbench hot.sql, 32 clients: $(pgb hot.sql 32)"
    echo "pgbench hot_batch.sql, 4 clients (x32 orders): $(pgb hot_batch.sql 4)"
    echo "flash sale, this build:"
    PGSTATS=1 METRICS='order_placement_batch_size_(sum|count)' benches/load.sh postgres "${flash[@]}" 2>&1 | grep -E "$show" || true
    echo "flash sale, the other build:"
    BIN_DIR=$other_bin MALL_CONFIG=$other_config PGSTATS=1 benches/load.sh postgres "${flash[@]}" 2>&1 | grep -E "$show" || true
done

#!/usr/bin/env bash
# Before and after, against the database's own ceiling, on PostgreSQL: ROUNDS rounds run back to
# back, each interleaving the read path (`GET /api/v1/products/{id}` of one product, by wrk:
# benches/read.sh, with the bare actix-web route of http-ceiling as its ceiling when that is
# built), the cart scenario on this build and on another, the pgbench purchase scripts (the SQL
# the mall ran before issue 16, and the SQL it runs now), the
# checkout scenario on both builds, the hot-row scripts, and the flash sale on both builds, so
# the machine's drift hits every figure alike. Build both first (the other, e.g., in a git
# worktree with its own target directory; this one also with `--bin http-ceiling` for the read
# path's ceiling), then:
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
show_cart="^cart |^  [A-Z]+ /api/v1/cart|postgres during|FAIL"
cart=(--scenario cart --duration "$secs" --concurrency 32 --no-idempotency-keys)
ceiling_port=18991
# The bare HTTP route's requests/s: the read path's ceiling in the same round.
ceiling() {
    [ -x target/release/http-ceiling ] || { echo "not built"; return; }
    target/release/http-ceiling 127.0.0.1:$ceiling_port >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$ceiling_port/product" >/dev/null 2>&1 && break; sleep 0.1; done
    wrk -t2 -c64 -d"${secs}s" --latency "http://127.0.0.1:$ceiling_port/product" |
        awk '/^Requests\/sec:/ { r = $2 } $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 } END { print r " rps, p50 " p50 ", p99 " p99 }'
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}
checkout=(--scenario checkout --duration "$secs" --concurrency 32 --no-idempotency-keys)
flash=(--scenario flash-sale --duration "$secs" --concurrency 32 --flash-stock 10000000 --no-flash-pay --no-idempotency-keys)
for round in $(seq 1 "$rounds"); do
    echo "### round $round"
    echo "http-ceiling GET /product (wrk -t2 -c64): $(ceiling)"
    echo "read path, this build: $(benches/read.sh postgres "$secs" 2>&1 | tail -1)"
    echo "read path, the other build: $(BIN_DIR=$other_bin MALL_CONFIG=$other_config benches/read.sh postgres "$secs" 2>&1 | tail -1)"
    echo "cart, this build:"
    PGSTATS=1 benches/load.sh postgres "${cart[@]}" 2>&1 | grep -E "$show_cart" || true
    echo "cart, the other build:"
    BIN_DIR=$other_bin MALL_CONFIG=$other_config PGSTATS=1 benches/load.sh postgres "${cart[@]}" 2>&1 | grep -E "$show_cart" || true
    echo "pgbench purchase.sql, 32 clients: $(pgb purchase.sql 32)"
    echo "pgbench purchase-now.sql, 32 clients: $(pgb purchase-now.sql 32)"
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

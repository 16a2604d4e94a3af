#!/usr/bin/env bash
# One mall-load run against a fresh mall: makes a scratch database (SQLite file or PostgreSQL
# database), starts the release `mall` on it, runs `mall-load` with the arguments given, stops
# the mall and drops the database. Build first:
#   cargo build --release -p mall-http --bin mall -p mall-bench --bin mall-load
# Usage: benches/load.sh sqlite|postgres [mall-load arguments...]
#   e.g. benches/load.sh postgres --scenario checkout --duration 10 --concurrency 32
# BIN_DIR names another build of `mall` to run (default target/release), MALL_CONFIG its
# configuration file (default config.toml). Extra mall settings come from
# the environment as usual (MALL__SECTION__KEY). Set PROFILE=1 to
# record the mall with `perf record` (cpu-clock samples, DWARF call graphs) into
# /tmp/mall-perf.data for the length of the load; add PROFILE_SYSTEM=1 to sample every process
# on the machine instead (no call graphs: who uses the cores). METRICS=REGEX prints the mall's
# /metrics lines matching it after the run (e.g. METRICS=order_placement_batch). PGSTATS=1
# (PostgreSQL) prints the transactions, WAL flushes and WAL bytes the load cost the database.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:?usage: benches/load.sh sqlite|postgres [mall-load args...]}
shift
port=${PORT:-18900}
bin=${BIN_DIR:-target/release}
config=${MALL_CONFIG:-config.toml}
# shellcheck source=benches/scratch.sh
source benches/scratch.sh load
mall_pid=
cleanup() {
    if [ -n "${METRICS:-}" ] && [ -n "$mall_pid" ]; then
        curl -fs "http://127.0.0.1:$port/metrics" | grep -E "$METRICS" || true
    fi
    [ -n "$mall_pid" ] && kill "$mall_pid" 2>/dev/null && wait "$mall_pid" 2>/dev/null || true
    drop_scratch
}
trap cleanup EXIT

export MALL__SERVER__BIND=127.0.0.1:$port MALL__DATABASE__URL=$url
export MALL__RATE_LIMIT__ENABLED=false MALL__LOG__LEVEL=${MALL__LOG__LEVEL:-warn}
export MALL__BOOTSTRAP__ADMIN_EMAIL=admin@example.com MALL__BOOTSTRAP__ADMIN_PASSWORD=mall-load-dev-password
"$bin/mall" serve --config "$config" >"$scratch/mall.log" 2>&1 &
mall_pid=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

# What the database did during the load (PostgreSQL): transactions (every statement outside an
# explicit transaction is one), WAL flushes (fsyncs: a group commit flushes several commits at
# once) and WAL bytes, from pg_stat_database and pg_stat_wal.
pg_counters() {
    psql $pg -d "$db" -Atc "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'),
        wal_sync, wal_bytes FROM pg_stat_wal"
}

# Runs when mall-load starts driving the scenarios, and when it starts reading the state back.
load_started() {
    if [ "$backend" = postgres ] && [ "${PGSTATS:-0}" = 1 ]; then
        psql $pg -d "$db" -qAtc "SELECT pg_stat_force_next_flush()" >/dev/null 2>&1 || true
        pg_counters >"$scratch/pg.before"
    fi
    if [ "${PROFILE:-0}" = 1 ]; then
        # Profile the load only, not the seeding (password hashing) nor the invariant check.
        if [ "${PROFILE_SYSTEM:-0}" = 1 ]; then
            perf record -e cpu-clock -F 999 -a -o /tmp/mall-perf.data >/dev/null 2>&1 &
        else
            perf record -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$mall_pid" \
                -o /tmp/mall-perf.data >/dev/null 2>&1 &
        fi
        echo $! >"$scratch/perf.pid"
    fi
}
load_ended() {
    if [ -e "$scratch/perf.pid" ]; then
        kill -INT "$(cat "$scratch/perf.pid")" 2>/dev/null || true
    fi
    if [ -e "$scratch/pg.before" ]; then
        sleep 1 # statistics reach the views within a second
        pg_counters >"$scratch/pg.after"
        IFS='|' read -r x0 s0 b0 <"$scratch/pg.before"
        IFS='|' read -r x1 s1 b1 <"$scratch/pg.after"
        echo "postgres during the load: $((x1 - x0)) transactions, $((s1 - s0)) WAL flushes, $(((b1 - b0) / 1024)) KiB of WAL" >&2
    fi
}

target/release/mall-load --url "http://127.0.0.1:$port" "$@" 2> >(
    while IFS= read -r line; do
        printf '%s\n' "$line" >&2
        case "$line" in
            driving*) load_started ;;
            "reading the state back"*) load_ended ;;
        esac
    done
)
status=$?
sleep 1.5 # let the watcher above finish its last line
if [ -e "$scratch/perf.pid" ]; then
    while kill -0 "$(cat "$scratch/perf.pid")" 2>/dev/null; do sleep 0.2; done
fi
exit $status
